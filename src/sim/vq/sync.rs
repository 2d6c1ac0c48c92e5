//! Synchronised update (`quantizer.sync_nu`; Huh et al. 2023, "Straightening out the
//! straight-through estimator", `straight_through_approximation` in minyoungg/vqtorch): the
//! decoder sees z + sg(q − z) + νq − sg(νq), whose value is q; z receives the decoder's
//! gradient as with straight-through, and the selected code ν times it, so the code moves with
//! the encoder instead of only after it through the codebook loss.

use ndarray::{ArrayView2, ArrayViewMut2};

/// Adds ν·∂L/∂q_i to the gradient of each row's selected code.
pub(super) fn backward(
    nu: f32,
    assign: &[usize],
    g_q: ArrayView2<f32>,
    mut grad: ArrayViewMut2<f32>,
) {
    for (gi, &k) in g_q.outer_iter().zip(assign) {
        grad.row_mut(k).scaled_add(nu, &gi);
    }
}

//! How the decoder's gradient ∂L/∂q crosses the non-differentiable assignment to reach the
//! encoder output z (`quantizer.estimator`), and with IBQ the codes too.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::Ctx;
use crate::sim::config::family;

family! {
    /// `quantizer.estimator` with its scratch.
    pub(super) enum Estimator: Estimate(Some("quantizer.estimator"), "estimator", "gradient through the quantizer")
    build(&Ctx<'_>) {
        Ste(ste::Ste),
        Rotation(rotation::Rotation),
        Ibq(ibq::Ibq),
        Gumbel(gumbel::Gumbel),
    }
    fn sample(
        self: &mut Self,
        z: ArrayView2<f32>,
        codes: ArrayView2<f32>,
        assign: &mut [usize],
    ) -> bool;
    fn backward(
        self: &mut Self,
        z: ArrayView2<f32>,
        q: ArrayView2<f32>,
        assign: &[usize],
        g_q: ArrayView2<f32>,
        g_z: ArrayViewMut2<f32>,
        codebook: (ArrayView2<f32>, Option<ArrayViewMut2<f32>>),
    );
}

/// A gradient estimator.
pub(super) trait Estimate {
    /// The estimator for the codebook of `ctx`, its scratch allocated once.
    fn build(ctx: &Ctx) -> Self;

    /// In training, after the nearest-code search: an estimator that samples its codes
    /// replaces `assign` and returns true.
    fn sample(
        &mut self,
        _z: ArrayView2<f32>,
        _codes: ArrayView2<f32>,
        _assign: &mut [usize],
    ) -> bool {
        false
    }

    /// Writes the reconstruction's gradient with respect to z into `g_z`, from `g_q`; an
    /// estimator that also moves the codes adds their gradient to `codebook`'s second half
    /// (None when the codes do not learn by gradient).
    fn backward(
        &mut self,
        z: ArrayView2<f32>,
        q: ArrayView2<f32>,
        assign: &[usize],
        g_q: ArrayView2<f32>,
        g_z: ArrayViewMut2<f32>,
        codebook: (ArrayView2<f32>, Option<ArrayViewMut2<f32>>),
    );
}

//! Index backpropagation (Shi et al. 2024, "Taming scalable visual tokenizer for autoregressive
//! image generation"; `IndexPropagationQuantize` in TencentARC/SEED-Voken). The decoder sees
//! q = Σ_j o_j e_j with o = onehot − sg(p) + p and p = softmax_j(l_j) over all codes: its value
//! is the selected code, its gradient flows through the soft one-hot, so z and every code
//! receive the decoder's gradient. The reference's logits are dot products z·e_j; here
//! l_j = −‖z − e_j‖², whose argmax is the nearest code, so the forward pass stays the
//! harness's nearest-code lookup (with m = 2 a dot-product argmax could only ever select the
//! codes on the codebook's convex hull). Temperature 1, as in the reference.
//!
//! Backward of one row, g = ∂L/∂q: a_j = g·e_j, γ_j = ∂L/∂l_j = p_j(a_j − Σ_k p_k a_k);
//! ∂l_j/∂z = −2(z − e_j) and Σ_j γ_j = 0, so ∂L/∂z = 2 Σ_j γ_j e_j (no straight-through
//! term: z reaches q only through p); ∂L/∂e_j = onehot_j·g + 2γ_j(z − e_j).

use ndarray::{ArrayView2, ArrayViewMut2, Axis};

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Ibq {
    /// Scratch: one row's soft one-hot, (S).
    p: Vec<f32>,
}

impl Ibq {
    pub(super) fn new(s: usize) -> Ibq {
        Ibq { p: vec![0.0; s] }
    }

    /// Writes ∂L/∂z into `g_z` and adds ∂L/∂codes to `grad` (when the codes learn by gradient).
    pub(super) fn backward(
        &mut self,
        z: ArrayView2<f32>,
        assign: &[usize],
        g_q: ArrayView2<f32>,
        mut g_z: ArrayViewMut2<f32>,
        (codes, mut grad): (ArrayView2<f32>, Option<ArrayViewMut2<f32>>),
    ) {
        for (((zi, gi), mut out), &k) in z
            .outer_iter()
            .zip(g_q.outer_iter())
            .zip(g_z.outer_iter_mut())
            .zip(assign)
        {
            // p = softmax(−‖z − e‖²), shifted by the largest logit.
            for (pj, ej) in self.p.iter_mut().zip(codes.outer_iter()) {
                *pj = -zi
                    .iter()
                    .zip(ej)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f32>();
            }
            let max = self.p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0;
            for pj in self.p.iter_mut() {
                *pj = (*pj - max).exp();
                sum += *pj;
            }
            let mut mean_a = 0.0;
            for (pj, ej) in self.p.iter_mut().zip(codes.outer_iter()) {
                *pj /= sum;
                mean_a += *pj * gi.dot(&ej);
            }
            out.fill(0.0);
            for (j, (&pj, ej)) in self.p.iter().zip(codes.outer_iter()).enumerate() {
                let gamma = pj * (gi.dot(&ej) - mean_a);
                out.scaled_add(2.0 * gamma, &ej);
                if let Some(grad) = grad.as_mut() {
                    let mut row = grad.index_axis_mut(Axis(0), j);
                    row.scaled_add(2.0 * gamma, &zi);
                    row.scaled_add(-2.0 * gamma, &ej);
                }
            }
            if let Some(grad) = grad.as_mut() {
                grad.row_mut(k).scaled_add(1.0, &gi);
            }
        }
    }
}

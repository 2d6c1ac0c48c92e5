//! The rotation trick (Fifty et al. 2024, "Restructuring vector quantization with the rotation
//! trick"; `rotate_to` in lucidrains/vector-quantize-pytorch). The decoder sees
//! q̃ = sg(λR)·z with λ = ‖q‖/‖z‖ and R the rotation taking u = z/‖z‖ to v = q/‖q‖ in their
//! plane, R = I − 2wwᵀ + 2vuᵀ with w = (u + v)/‖u + v‖. Its value is q, so the forward pass is
//! unchanged; the gradient is ∂L/∂z = λRᵀ ∂L/∂q̃ = λ(g − 2(g·w)w + 2(g·v)u), which keeps the
//! angle between the gradient and z that the decoder's gradient had with q.

use ndarray::{ArrayView2, ArrayViewMut2, Zip};

use super::{Ctx, Estimate};
use crate::sim::config::Remedy;

pub(super) const REMEDY: Remedy = Remedy {
    word: "rotation",
    doc: "the rotation trick, λR z with R rotating z onto q",
    cite: "Fifty et al. 2024",
    keys: &[],
    rules: &[],
};

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Rotation;

impl Estimate for Rotation {
    fn build(_: &Ctx) -> Rotation {
        Rotation
    }

    fn backward(
        &mut self,
        z: ArrayView2<f32>,
        q: ArrayView2<f32>,
        _assign: &[usize],
        g_q: ArrayView2<f32>,
        g_z: ArrayViewMut2<f32>,
        _codebook: (ArrayView2<f32>, Option<ArrayViewMut2<f32>>),
    ) {
        backward(z, q, g_q, g_z);
    }
}

/// Backward of q̃ = sg(λR)·z, row by row. A row with z = 0 or q = 0 has no rotation and
/// passes its gradient straight through.
pub(super) fn backward(
    z: ArrayView2<f32>,
    q: ArrayView2<f32>,
    g_q: ArrayView2<f32>,
    mut g_z: ArrayViewMut2<f32>,
) {
    for (((zi, qi), gi), mut out) in z
        .outer_iter()
        .zip(q.outer_iter())
        .zip(g_q.outer_iter())
        .zip(g_z.outer_iter_mut())
    {
        let nz = zi.dot(&zi).sqrt();
        let nq = qi.dot(&qi).sqrt();
        if nz == 0.0 || nq == 0.0 {
            out.assign(&gi);
            continue;
        }
        // u·g, v·g and ‖u + v‖ from dot products of the raw rows, so nothing is allocated.
        let (gz, gq) = (gi.dot(&zi) / nz, gi.dot(&qi) / nq);
        let uv = zi.dot(&qi) / (nz * nq);
        let norm_w = (2.0 + 2.0 * uv).max(0.0).sqrt();
        // g·w, with w = 0 when z and q point in opposite directions.
        let gw = if norm_w > 0.0 {
            (gz + gq) / norm_w
        } else {
            0.0
        };
        let lambda = nq / nz;
        Zip::from(&mut out)
            .and(gi)
            .and(zi)
            .and(qi)
            .for_each(|o, &g, &a, &b| {
                let (u, v) = (a / nz, b / nq);
                let w = if norm_w > 0.0 { (u + v) / norm_w } else { 0.0 };
                *o = lambda * (g - 2.0 * gw * w + 2.0 * gq * u);
            });
    }
}

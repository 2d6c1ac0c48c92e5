//! Orthogonality regulariser of the codes (`quantizer.orthogonal_weight`; Shin et al. 2023,
//! eq. 2, as `orthogonal_loss_fn` in lucidrains/vector-quantize-pytorch):
//! L = w·(Σ_ij cos²(e_i, e_j) / S² − 1/S), zero when the codes are mutually orthogonal
//! (possible only for S ≤ m; otherwise it spreads their directions). It moves only the codes.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{Ctx, Regularise};
use crate::sim::config::key::{INCL, MAX_FLOAT};
use crate::sim::config::{Key, Remedy};

const WEIGHT: Key = Key::float(
    "quantizer.orthogonal_weight",
    0.0,
    ((0.0, INCL), (MAX_FLOAT, INCL)),
    "orthogonal weight",
    "weight of the orthogonality loss Σ cos²(e_i, e_j)/S² − 1/S of the codes (Shin et al. 2023); moves codes learned by gradient (update = \"loss\"); 0 = off",
);

pub(super) const REMEDY: Remedy = Remedy {
    word: "orthogonal",
    doc: "orthogonality loss of the codes",
    cite: "Shin et al. 2023",
    keys: &[WEIGHT],
    rules: &[],
};

/// Scratch for the gradient: code norms (S) and one code-sized sum (m).
#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Orthogonal {
    weight: f32,
    norms: Vec<f32>,
    sum: Vec<f32>,
}

impl Orthogonal {
    pub(super) fn new(weight: f32, s: usize, m: usize) -> Orthogonal {
        Orthogonal {
            weight,
            norms: vec![0.0; s],
            sum: vec![0.0; m],
        }
    }

}

impl Regularise for Orthogonal {
    fn build(c: &Ctx) -> Orthogonal {
        Orthogonal::new(c.q.params.float(&WEIGHT) as f32, c.s, c.m)
    }

    /// The loss; a zero-norm code has cosine 0 with every code, itself included.
    fn loss(&mut self, _u: ArrayView2<f32>, codes: ArrayView2<f32>) -> f32 {
        let s = codes.nrows();
        let mut total = 0.0;
        for a in codes.outer_iter() {
            let aa = a.dot(&a);
            for b in codes.outer_iter() {
                let n = (aa * b.dot(&b)).sqrt();
                if n > 0.0 {
                    let cos = a.dot(&b) / n;
                    total += cos * cos;
                }
            }
        }
        self.weight * (total / (s * s) as f32 - 1.0 / s as f32)
    }

    /// Adds ∂L/∂e_i = (4w/S²)(v_i − (û_i·v_i)û_i)/‖e_i‖, v_i = Σ_j cos(e_i, e_j) û_j, to the
    /// codes' gradient; the batch has none.
    fn backward(
        &mut self,
        _u: ArrayView2<f32>,
        codes: ArrayView2<f32>,
        _g_u: ArrayViewMut2<f32>,
        grad: Option<ArrayViewMut2<f32>>,
    ) {
        let Some(mut grad) = grad else {
            return;
        };
        let s = codes.nrows();
        let scale = 4.0 * self.weight / (s * s) as f32;
        for (n, e) in self.norms.iter_mut().zip(codes.outer_iter()) {
            *n = e.dot(&e).sqrt();
        }
        for (i, ei) in codes.outer_iter().enumerate() {
            let ni = self.norms[i];
            if ni == 0.0 {
                continue;
            }
            self.sum.fill(0.0);
            for (j, ej) in codes.outer_iter().enumerate() {
                let nj = self.norms[j];
                if nj == 0.0 {
                    continue;
                }
                let cos = ei.dot(&ej) / (ni * nj);
                for (acc, &x) in self.sum.iter_mut().zip(ej) {
                    *acc += cos * x / nj;
                }
            }
            // Project out the direction of e_i itself.
            let along = ei.iter().zip(&self.sum).map(|(x, v)| x * v).sum::<f32>() / ni;
            for ((g, &x), &v) in grad.row_mut(i).iter_mut().zip(ei).zip(&self.sum) {
                *g += scale * (v - along * x / ni) / ni;
            }
        }
    }
}

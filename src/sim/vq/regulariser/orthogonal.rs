//! Orthogonality regulariser of the codes (`quantizer.orthogonal_weight`; Shin et al. 2023,
//! eq. 2, as `orthogonal_loss_fn` in lucidrains/vector-quantize-pytorch):
//! L = w·(Σ_ij cos²(e_i, e_j) / S² − 1/S), zero when the codes are mutually orthogonal
//! (possible only for S ≤ m; otherwise it spreads their directions). It moves only the codes.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{Ctx, Regularise};
use crate::sim::vq::rows::{by_len, dot, fixed, in_registers};
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

/// Scratch: the codes' squared norms and norms (S), one code's pair terms (S), and one
/// code-sized sum (m).
#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Orthogonal {
    weight: f32,
    sq_norms: Vec<f32>,
    norms: Vec<f32>,
    terms: Vec<f32>,
    sum: Vec<f32>,
}

impl Orthogonal {
    pub(super) fn new(weight: f32, s: usize, m: usize) -> Orthogonal {
        Orthogonal {
            weight,
            sq_norms: vec![0.0; s],
            norms: vec![0.0; s],
            terms: vec![0.0; s],
            sum: vec![0.0; m],
        }
    }
}

/// cos²(a, b) of code a (squared norm `aa`) with every code b, into `terms`; 0 where a pair
/// has no direction. `M` is the codes' length when it is small (the loop then unrolls), 0
/// for any other length.
#[inline(always)]
fn cos_squared<const M: usize>(a: &[f32], aa: f32, rows: &[f32], sq: &[f32], terms: &mut [f32]) {
    let a = fixed::<M>(a);
    for (t, (b, &bb)) in terms.iter_mut().zip(rows.chunks_exact(a.len()).zip(sq)) {
        let n = (aa * bb).sqrt();
        let cos = dot(a, b) / n;
        *t = if n > 0.0 { cos * cos } else { 0.0 };
    }
}

/// Σ_j cos(e_i, e_j) e_j / ‖e_j‖ (v_i of `backward`) over the codes with a norm, in order of j,
/// into `sum`; `M` as in `cos_squared`, the sums then held in registers.
#[inline(always)]
fn pull<const M: usize>(ei: &[f32], ni: f32, rows: &[f32], norms: &[f32], sum: &mut [f32]) {
    let ei = fixed::<M>(ei);
    sum.fill(0.0);
    in_registers::<M>(sum, |sum| {
        for (ej, &nj) in rows.chunks_exact(ei.len()).zip(norms) {
            if nj == 0.0 {
                continue;
            }
            let cos = dot(ei, ej) / (ni * nj);
            for (acc, &x) in sum.iter_mut().zip(ej) {
                *acc += cos * x / nj;
            }
        }
    });
}

impl Regularise for Orthogonal {
    fn build(c: &Ctx) -> Orthogonal {
        Orthogonal::new(c.q.params.float(&WEIGHT) as f32, c.s, c.m)
    }

    /// The loss; a zero-norm code has cosine 0 with every code, itself included.
    fn loss(&mut self, _u: ArrayView2<f32>, codes: ArrayView2<f32>) -> f32 {
        let s = codes.nrows();
        let codes = codes.as_standard_layout();
        let rows = codes.as_slice().expect("standard layout");
        let m = codes.ncols().max(1);
        for (sq, e) in self.sq_norms.iter_mut().zip(rows.chunks_exact(m)) {
            *sq = dot(e, e);
        }
        // One code's terms in a pass of their own, then added in order: a term of a pair
        // without a direction is 0, which leaves the sum (never −0) as skipping it did.
        let mut total = 0.0;
        for (a, &aa) in rows.chunks_exact(m).zip(&self.sq_norms) {
            let terms = &mut self.terms[..];
            by_len!(m, cos_squared(a, aa, rows, &self.sq_norms, terms));
            for &t in &self.terms {
                total += t;
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
        let codes = codes.as_standard_layout();
        let rows = codes.as_slice().expect("standard layout");
        let m = codes.ncols().max(1);
        for (n, e) in self.norms.iter_mut().zip(rows.chunks_exact(m)) {
            *n = dot(e, e).sqrt();
        }
        for (i, ei) in rows.chunks_exact(m).enumerate() {
            let ni = self.norms[i];
            if ni == 0.0 {
                continue;
            }
            let sum = &mut self.sum[..];
            by_len!(m, pull(ei, ni, rows, &self.norms, sum));
            // Project out the direction of e_i itself.
            let along = ei.iter().zip(&self.sum).map(|(x, v)| x * v).sum::<f32>() / ni;
            for ((g, &x), &v) in grad.row_mut(i).iter_mut().zip(ei).zip(&self.sum) {
                *g += scale * (v - along * x / ni) / ni;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The loss and the gradient as ndarray's rows and dot products give them, pair by pair.
    fn by_rows(weight: f32, codes: &Array2<f32>) -> (f32, Array2<f32>) {
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
        let loss = weight * (total / (s * s) as f32 - 1.0 / s as f32);
        let scale = 4.0 * weight / (s * s) as f32;
        let norms: Vec<f32> = codes.outer_iter().map(|e| e.dot(&e).sqrt()).collect();
        let mut grad = Array2::from_elem(codes.raw_dim(), 0.25f32);
        for (i, ei) in codes.outer_iter().enumerate() {
            let ni = norms[i];
            if ni == 0.0 {
                continue;
            }
            let mut sum = vec![0.0f32; codes.ncols()];
            for (j, ej) in codes.outer_iter().enumerate() {
                let nj = norms[j];
                if nj == 0.0 {
                    continue;
                }
                let cos = ei.dot(&ej) / (ni * nj);
                for (acc, &x) in sum.iter_mut().zip(ej) {
                    *acc += cos * x / nj;
                }
            }
            let along = ei.iter().zip(&sum).map(|(x, v)| x * v).sum::<f32>() / ni;
            for ((g, &x), &v) in grad.row_mut(i).iter_mut().zip(ei).zip(&sum) {
                *g += scale * (v - along * x / ni) / ni;
            }
        }
        (loss, grad)
    }

    #[test]
    fn loss_and_gradient_are_the_pairwise_rows_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for (s, m) in [(1, 2), (7, 1), (64, 2), (300, 3), (50, 9), (40, 17)] {
            // Zero codes (no direction), repeated and opposite codes among random ones.
            let mut codes = Array2::from_shape_fn((s, m), |_| rng.gen_range(-2.0f32..2.0));
            for i in (0..s).step_by(5) {
                codes.row_mut(i).fill(0.0);
            }
            for i in (3..s).step_by(7) {
                let row = codes.row(i - 1).mapv(|v| -v);
                codes.row_mut(i).assign(&row);
            }
            let mut reg = Orthogonal::new(0.7, s, m);
            let (want_loss, want_grad) = by_rows(0.7, &codes);
            let loss = reg.loss(codes.view(), codes.view());
            assert_eq!(loss.to_bits(), want_loss.to_bits(), "S = {s}, m = {m}");
            let mut grad = Array2::from_elem(codes.raw_dim(), 0.25f32);
            let mut g_u = Array2::zeros((0, m));
            reg.backward(codes.view(), codes.view(), g_u.view_mut(), Some(grad.view_mut()));
            let bits = |a: &Array2<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&grad), bits(&want_grad), "S = {s}, m = {m}");
        }
    }
}

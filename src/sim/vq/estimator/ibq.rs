//! Index backpropagation (Shi et al. 2024, "Taming scalable visual tokenizer for autoregressive
//! image generation"; `IndexPropagationQuantize.forward` in TencentARC/SEED-Voken,
//! `src/IBQ/modules/vqvae/quantize.py` L429–466). The decoder sees q = Σ_j o_j e_j with
//! o = onehot − sg(p) + p and p = softmax_j(l_j) over all codes: its value is the selected
//! code, its gradient flows through the soft one-hot, so z and every code receive the
//! decoder's gradient. The reference's loss (L453) is
//!   mean((q − z)²) + mean((sg(e_k) − z)²) + β·mean((e_k − sg(z))²):
//! a "double quantization" term through the soft one-hot, whose value is the quantization
//! error and whose gradient reaches z directly and through p; commitment with weight 1; the
//! codebook term with weight β (VQ-VAE has them the other way round). vqsim does the same
//! (`Estimator::weights`).
//!
//! Two differences, both because vqsim's latents are 2-dimensional and unnormalised:
//! - Logits. The reference's are dot products z·e_j at temperature 1 and its code is their
//!   argmax. Here l_j = −‖z − e_j‖²/T, whose argmax is the nearest code, so the forward pass
//!   stays the harness's nearest-code lookup (with m = 2 a dot-product argmax could only ever
//!   select the codes on the codebook's convex hull).
//! - Temperature. Squared distances at this data's scale run from 0.1 to 100s, so at T = 1 the
//!   softmax is one-hot and the decoder's gradient never reaches z. Here T = sg(D), D the
//!   batch's mean margin between each row's nearest and second-nearest code (`vq::margin`):
//!   a point's two nearest codes are about one logit apart at any latent scale. T is a
//!   constant for the gradient.
//!
//! Backward of one row, with g = ∂L/∂q (decoder) + 2(q − z)/N (double quantization; N = n·m):
//! a_j = g·e_j, γ_j = ∂L/∂l_j = p_j(a_j − Σ_k p_k a_k); ∂l_j/∂z = −2(z − e_j)/T and
//! Σ_j γ_j = 0, so ∂L/∂z = (2/T) Σ_j γ_j e_j + 2(z − e_k)/N (the double quantization term's
//! direct part; z reaches q only through p); ∂L/∂e_j = onehot_j·g + (2/T)γ_j(z − e_j).

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{Ctx, Estimate, Weights};
use crate::sim::nearest::PointsByDim;
use crate::sim::vq::rows::{by_len, fixed, fixed_mut, in_registers, margin, max_of, sq_dists};
use crate::sim::config::{Check, RangeError, Remedy, Update};

pub(super) const REMEDY: Remedy = Remedy {
    word: "ibq",
    doc: "index backpropagation, decoder input (onehot − sg(p) + p)·E with p = softmax(−‖z − e‖²/D) over all codes (D: the batch's mean margin between nearest and second-nearest code), so z and every code get the decoder's gradient; SEED-Voken's loss: double quantization mean‖q − z‖², commitment 1, codebook β",
    cite: "Shi et al. 2024, SEED-Voken; its reference's logits are dot products at temperature 1, here squared distances at a temperature relative to the latents' scale, so the forward pass stays the nearest code",
    keys: &[],
    rules: &[gradient_codebook, no_sync],
};

/// IBQ's point is the gradient it gives every code, which an EMA codebook ignores.
fn gradient_codebook(c: &Check) -> Result<(), RangeError> {
    if c.cfg.quantizer.update != Update::Ema {
        return Ok(());
    }
    Err(RangeError {
        key: "quantizer.estimator".into(),
        value: "\"ibq\"".into(),
        allowed: "\"ste\" or \"rotation\" when quantizer.update = \"ema\" (IBQ's point is the gradient it gives every code, which an EMA codebook ignores)".into(),
    })
}

/// The synchronised update would add to what IBQ already gives the selected code.
fn no_sync(c: &Check) -> Result<(), RangeError> {
    let nu = c.cfg.quantizer.sync_nu;
    if nu == 0.0 {
        return Ok(());
    }
    Err(RangeError {
        key: "quantizer.sync_nu".into(),
        value: nu.to_string(),
        allowed: "only 0 with quantizer.estimator = \"ibq\" (IBQ already gives the selected code the decoder's whole gradient)".into(),
    })
}

/// Scratch, allocated once (the distances grow to the largest batch): the work is O(S·m) per
/// row, so it runs on plain slices.
#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Ibq {
    /// The batch's squared distances to the codes, (n, S) row-major.
    d2: Vec<f32>,
    /// The codes by dimension, for the distances.
    by_dim: PointsByDim,
    /// One row's soft one-hot p, (S).
    p: Vec<f32>,
    /// One row's a_j = g·e_j, (S).
    a: Vec<f32>,
    /// One row's z, g and ∂L/∂z, (m) each.
    zi: Vec<f32>,
    gi: Vec<f32>,
    out: Vec<f32>,
}

/// One row's logits l_j = −‖z − e_j‖²/T into `p` (from the squared distances `d2`) and
/// a_j = g·e_j into `a`.
#[inline(always)]
fn logits<const M: usize>(
    gi: &[f32],
    codes: &[f32],
    d2: &[f32],
    half_neg: f32,
    p: &mut [f32],
    a: &mut [f32],
) {
    let gi = fixed::<M>(gi);
    for (((pj, aj), ej), &d) in p.iter_mut().zip(a).zip(codes.chunks_exact(gi.len())).zip(d2) {
        *pj = half_neg * d;
        *aj = gi.iter().zip(fixed::<M>(ej)).map(|(x, y)| x * y).sum();
    }
}

/// Adds (2/T)γ_j e_j to `out` (∂L/∂z) and (2/T)γ_j(z − e_j) to code j's gradient, with
/// γ_j = p_j(a_j − ā).
#[inline(always)]
#[allow(clippy::too_many_arguments)] // one row's slices and its two scalars
fn pull<const M: usize>(
    zi: &[f32],
    codes: &[f32],
    p: &[f32],
    a: &[f32],
    mean_a: f32,
    two_over_t: f32,
    out: &mut [f32],
    mut grad: Option<&mut [f32]>,
) {
    let zi = fixed::<M>(zi);
    let m = zi.len();
    in_registers::<M>(out, |out| {
        for (j, ((pj, aj), ej)) in p.iter().zip(a).zip(codes.chunks_exact(m)).enumerate() {
            let c = two_over_t * pj * (aj - mean_a);
            let ej = fixed::<M>(ej);
            for (o, x) in out.iter_mut().zip(ej) {
                *o += c * x;
            }
            if let Some(grad) = grad.as_deref_mut() {
                for ((g, x), y) in fixed_mut::<M>(&mut grad[j * m..]).iter_mut().zip(zi).zip(ej) {
                    *g += c * (x - y);
                }
            }
        }
    });
}

impl Ibq {
    fn new(s: usize, m: usize) -> Ibq {
        Ibq {
            d2: Vec::new(),
            by_dim: PointsByDim::default(),
            p: vec![0.0; s],
            a: vec![0.0; s],
            zi: vec![0.0; m],
            gi: vec![0.0; m],
            out: vec![0.0; m],
        }
    }
}

impl Estimate for Ibq {
    fn build(c: &Ctx) -> Ibq {
        Ibq::new(c.s, c.m)
    }

    /// Writes ∂L/∂z into `g_z` and adds ∂L/∂codes to `grad` (when the codes learn by gradient).
    fn backward(
        &mut self,
        z: ArrayView2<f32>,
        _q: ArrayView2<f32>,
        assign: &[usize],
        g_q: ArrayView2<f32>,
        mut g_z: ArrayViewMut2<f32>,
        (codes, grad): (ArrayView2<f32>, Option<ArrayViewMut2<f32>>),
    ) {
        let (s, m) = (codes.nrows(), codes.ncols());
        let e = codes.as_slice().expect("the codebook is contiguous");
        let mut grad = grad.map(|g| g.into_slice().expect("the gradient is contiguous"));
        sq_dists(z, codes, &mut self.by_dim, &mut self.d2);
        let two_over_t = 2.0 / margin(&self.d2, s);
        let half_neg = -0.5 * two_over_t;
        let double = 2.0 / z.len() as f32;
        for (i, (&k, d2)) in assign.iter().zip(self.d2.chunks_exact(s)).enumerate() {
            let ek = &e[k * m..(k + 1) * m];
            for (d, (zd, gd)) in self.zi.iter_mut().zip(self.gi.iter_mut()).enumerate() {
                *zd = z[[i, d]];
                *gd = g_q[[i, d]] + double * (ek[d] - *zd);
            }
            let (zi, gi) = (&self.zi, &self.gi);
            // l_j = −‖z − e_j‖²/T, shifted by the largest logit; a_j = g·e_j.
            let (p, a) = (&mut self.p[..], &mut self.a[..]);
            by_len!(m, logits(gi, e, d2, half_neg, p, a));
            let max = max_of(&self.p);
            let mut sum = 0.0;
            for pj in self.p.iter_mut() {
                *pj = (*pj - max).exp();
                sum += *pj;
            }
            let mut mean_a = 0.0;
            for (pj, aj) in self.p.iter_mut().zip(&self.a) {
                *pj /= sum;
                mean_a += *pj * aj;
            }
            for (o, (x, y)) in self.out.iter_mut().zip(zi.iter().zip(ek)) {
                *o = double * (x - y);
            }
            let (p, a, out) = (&self.p[..], &self.a[..], &mut self.out[..]);
            let g = grad.as_deref_mut();
            by_len!(m, pull(zi, e, p, a, mean_a, two_over_t, out, g));
            if let Some(grad) = grad.as_deref_mut() {
                for (g, x) in grad[k * m..(k + 1) * m].iter_mut().zip(gi) {
                    *g += x;
                }
            }
            for (d, o) in self.out.iter().enumerate() {
                g_z[[i, d]] = *o;
            }
        }
    }

    /// SEED-Voken's: codebook β, commitment 1, double quantization 1.
    fn weights(&self, beta: f32) -> Weights {
        Weights {
            codebook: beta,
            commitment: 1.0,
            double: 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::vq::rows::tests::{bits, by_pairs, mixed};
    use ndarray::Array2;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// The backward pair by pair on ndarray's rows with iterator sums: the loops the kernels
    /// replaced, which the finite-difference check (at m = 2) holds to the gradient.
    fn by_rows(
        z: &Array2<f32>,
        assign: &[usize],
        g_q: &Array2<f32>,
        codes: &Array2<f32>,
        grad: &mut Array2<f32>,
    ) -> Array2<f32> {
        let (s, m) = codes.dim();
        let two_over_t = 2.0 / by_pairs(z, codes).1;
        let double = 2.0 / z.len() as f32;
        let mut g_z = Array2::zeros(z.raw_dim());
        for (i, &k) in assign.iter().enumerate() {
            let (zi, ek) = (z.row(i), codes.row(k));
            let gi: Vec<f32> = (0..m).map(|d| g_q[[i, d]] + double * (ek[d] - zi[d])).collect();
            let mut p = vec![0.0f32; s];
            let mut a = vec![0.0f32; s];
            let mut max = f32::NEG_INFINITY;
            for (j, ej) in codes.outer_iter().enumerate() {
                let d2: f32 = zi.iter().zip(ej).map(|(x, y)| (x - y) * (x - y)).sum();
                p[j] = -0.5 * two_over_t * d2;
                a[j] = gi.iter().zip(ej).map(|(x, y)| x * y).sum();
                max = max.max(p[j]);
            }
            let mut sum = 0.0;
            for pj in p.iter_mut() {
                *pj = (*pj - max).exp();
                sum += *pj;
            }
            let mut mean_a = 0.0;
            for (pj, aj) in p.iter_mut().zip(&a) {
                *pj /= sum;
                mean_a += *pj * aj;
            }
            let mut out: Vec<f32> = (0..m).map(|d| double * (zi[d] - ek[d])).collect();
            for (j, ej) in codes.outer_iter().enumerate() {
                let c = two_over_t * p[j] * (a[j] - mean_a);
                for d in 0..m {
                    out[d] += c * ej[d];
                    grad[[j, d]] += c * (zi[d] - ej[d]);
                }
            }
            for d in 0..m {
                grad[[k, d]] += gi[d];
                g_z[[i, d]] = out[d];
            }
        }
        g_z
    }

    #[test]
    fn backward_is_the_pairwise_rows_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for (n, s, m) in [(6, 1, 2), (9, 40, 1), (12, 64, 2), (7, 33, 3), (5, 20, 4), (8, 25, 6)] {
            let z = mixed(&mut rng, n, m);
            let mut codes = mixed(&mut rng, s, m);
            if s > 2 {
                // A repeated code: a tie at the nearest.
                let row = codes.row(0).to_owned();
                codes.row_mut(s - 1).assign(&row);
            }
            let g_q = mixed(&mut rng, n, m);
            let assign: Vec<usize> = (0..n).map(|i| i * 7 % s).collect();
            let mut want_grad = Array2::from_elem((s, m), 0.5f32);
            let want = by_rows(&z, &assign, &g_q, &codes, &mut want_grad);
            let mut ibq = Ibq::new(s, m);
            let mut g_z = Array2::zeros((n, m));
            let mut grad = Array2::from_elem((s, m), 0.5f32);
            let codebook = (codes.view(), Some(grad.view_mut()));
            ibq.backward(z.view(), z.view(), &assign, g_q.view(), g_z.view_mut(), codebook);
            assert_eq!(bits(&g_z), bits(&want), "n {n}, S {s}, m {m}");
            assert_eq!(bits(&grad), bits(&want_grad), "n {n}, S {s}, m {m}");
        }
    }
}

//! Code-usage entropy regulariser (`quantizer.entropy_weight`), MAGVIT-v2 style (Yu et al.
//! 2024; `entropy_aux_loss` of lucidrains' LFQ, `compute_entropy_loss` in SEED-Voken): with
//! soft assignments p_ij = softmax_j(−‖z_i − e_j‖²/(τ·D)), L = w·(mean_i H(p_i) − H(mean_i p_i)).
//! The first term makes each point confident, the second spreads the batch over the whole
//! codebook; both move the encoder and the codes. Signs and the per-sample minus batch form are
//! the references'.
//!
//! The scale. LFQ's and SEED-Voken's logits are dot products with codes of norm ~1 at
//! τ = 0.01 (LFQ's squared distances up to a per-point constant). On unnormalised latents the
//! same τ makes p one-hot once distances exceed ~0.1, its gradient vanishes and the loss is off
//! (vqsim's version 4 used τ = 0.01 on raw distances, 0.1–10 here). So τ is relative: D =
//! sg(mean_i (‖z_i − e_(2)‖² − ‖z_i − e_(1)‖²)), the batch's mean margin between the nearest
//! and second-nearest code (`vq::margin`), and τ = 1 puts a point's two nearest codes about
//! one logit apart at any latent scale. D is a constant for the gradient.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{Ctx, Regularise};
use crate::sim::nearest::PointsByDim;
use crate::sim::vq::rows::{by_len, fixed, fixed_mut, in_registers, margin, max_of, sq_dists};
use crate::sim::config::key::{EXCL, INCL, MAX_FLOAT};
use crate::sim::config::{Key, Remedy};

const WEIGHT: Key = Key::float(
    "quantizer.entropy_weight",
    0.0,
    ((0.0, INCL), (MAX_FLOAT, INCL)),
    "entropy weight",
    "weight of the code-usage entropy loss mean_i H(p_i) − H(mean_i p_i), p_i = softmax(−‖z_i − e‖²/(τD)) (MAGVIT-v2, Yu et al. 2024); 0 = off",
);
const TEMPERATURE: Key = Key::float(
    "quantizer.entropy_temperature",
    1.0,
    ((0.0, EXCL), (MAX_FLOAT, INCL)),
    "entropy τ",
    "temperature τ of the entropy loss's soft assignments, in units of D, the batch's mean margin between nearest and second-nearest code (squared distances), so that it means the same at any latent scale (lucidrains' 0.01 is for codes of norm ~1)",
);

pub(super) const REMEDY: Remedy = Remedy {
    word: "entropy",
    doc: "code-usage entropy loss",
    cite: "MAGVIT-v2, Yu et al. 2024",
    keys: &[WEIGHT, TEMPERATURE],
    rules: &[],
};

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Entropy {
    weight: f32,
    temperature: f32,
    /// Squared distances, then the soft assignments, of the last forward, (n, S) row-major;
    /// grows to the largest batch.
    p: Vec<f32>,
    /// ln p where p > 0, for the backward (n, S).
    ln_p: Vec<f32>,
    /// τ·D of the last forward.
    scale: f32,
    /// Each point's entropy H(p_i), (n).
    h: Vec<f32>,
    /// ln of the batch mean p̄, (S).
    log_mean: Vec<f32>,
    /// The codes by dimension, for the distances.
    by_dim: PointsByDim,
    /// One row's gradient, (m).
    row: Vec<f32>,
}

impl Entropy {
    pub(super) fn new(weight: f32, temperature: f32, s: usize, m: usize) -> Entropy {
        Entropy {
            weight,
            temperature,
            p: Vec::new(),
            ln_p: Vec::new(),
            scale: 1.0,
            h: Vec::new(),
            log_mean: vec![0.0; s],
            by_dim: PointsByDim::default(),
            row: vec![0.0; m],
        }
    }
}

/// Adds row i's gradient to `gi` (its ∂L/∂z_i) and, with `grad`, to the codes' (S·m):
/// −2·∂L/∂l_ik/(τD)·(z_i − e_k) for each code k with p_ik ≠ 0, `g_logit(k, p_ik)` giving
/// ∂L/∂l_ik.
#[inline(always)]
fn pull<const M: usize>(
    zi: &[f32],
    gi: &mut [f32],
    codes: &[f32],
    p: &[f32],
    mut grad: Option<&mut [f32]>,
    g_logit: impl Fn(usize, f32) -> f32,
    scale: f32,
) {
    let zi = fixed::<M>(zi);
    let m = zi.len();
    in_registers::<M>(gi, |gi| {
        for (k, (&pk, ek)) in p.iter().zip(codes.chunks_exact(m)).enumerate() {
            if pk == 0.0 {
                continue;
            }
            let c = -2.0 * g_logit(k, pk) / scale;
            let ek = fixed::<M>(ek);
            for ((g, &a), &b) in gi.iter_mut().zip(zi).zip(ek) {
                *g += c * (a - b);
            }
            if let Some(grad) = grad.as_deref_mut() {
                for ((g, &a), &b) in fixed_mut::<M>(&mut grad[k * m..]).iter_mut().zip(zi).zip(ek) {
                    *g -= c * (a - b);
                }
            }
        }
    });
}

impl Regularise for Entropy {
    fn build(c: &Ctx) -> Entropy {
        let p = &c.q.params;
        Entropy::new(p.float(&WEIGHT) as f32, p.float(&TEMPERATURE) as f32, c.s, c.m)
    }

    /// Soft assignments of the batch `z` to `codes`, kept for `backward`; returns the loss.
    fn loss(&mut self, z: ArrayView2<f32>, codes: ArrayView2<f32>) -> f32 {
        let (n, s) = (z.nrows(), codes.nrows());
        sq_dists(z, codes, &mut self.by_dim, &mut self.p);
        self.ln_p.resize(n * s, 0.0);
        self.h.resize(n, 0.0);
        self.scale = self.temperature * margin(&self.p, s);
        let mut mean_h = 0.0;
        self.log_mean.fill(0.0);
        let rows = self.p.chunks_exact_mut(s).zip(self.ln_p.chunks_exact_mut(s));
        for (i, (p, ln_p)) in rows.enumerate() {
            for pj in p.iter_mut() {
                *pj = -*pj / self.scale;
            }
            let max = max_of(p);
            let mut sum = 0.0;
            for pj in p.iter_mut() {
                *pj = (*pj - max).exp();
                sum += *pj;
            }
            let mut h = 0.0;
            for ((pj, ln), m) in p.iter_mut().zip(ln_p).zip(self.log_mean.iter_mut()) {
                *pj /= sum;
                if *pj > 0.0 {
                    *ln = pj.ln();
                    h -= *pj * *ln;
                }
                *m += *pj / n as f32;
            }
            self.h[i] = h;
            mean_h += h / n as f32;
        }
        let mut batch_h = 0.0;
        for m in self.log_mean.iter_mut() {
            if *m > 0.0 {
                batch_h -= *m * m.ln();
            }
            // A code far from the whole batch can have p_ik > 0 but p_ik/n rounding to 0 in
            // f32; ln 0 = −∞ would then make the gradient p_ik·(ln p̄_k − …) infinite. Its
            // true value is tiny (p̄_k ≥ p_ik/n), so the smallest normal float stands in.
            *m = m.max(f32::MIN_POSITIVE).ln();
        }
        self.weight * (mean_h - batch_h)
    }

    /// Adds the loss's gradient to `g_z` and, when the codes learn by gradient, to `g_codes`.
    /// ∂L/∂l_ik = (w/n)·p_ik·(ln p̄_k − Σ_j p_ij ln p̄_j − ln p_ik − H(p_i)) for the logits
    /// l_ik = −‖z_i − e_k‖²/(τD), and ∂l_ik/∂z_i = −2(z_i − e_k)/(τD) = −∂l_ik/∂e_k.
    fn backward(
        &mut self,
        z: ArrayView2<f32>,
        codes: ArrayView2<f32>,
        mut g_z: ArrayViewMut2<f32>,
        g_codes: Option<ArrayViewMut2<f32>>,
    ) {
        let (n, s, m) = (z.nrows(), codes.nrows(), codes.ncols());
        let scale = self.weight / n as f32;
        let (z, codes) = (z.as_standard_layout(), codes.as_standard_layout());
        let (z, e) = (z.as_slice().expect("standard layout"), codes.as_slice().expect("standard layout"));
        let mut grad = g_codes.map(|g| g.into_slice().expect("the gradient is contiguous"));
        for (i, mut gi) in g_z.outer_iter_mut().enumerate() {
            let p = &self.p[i * s..(i + 1) * s];
            let ln_p = &self.ln_p[i * s..(i + 1) * s];
            let cross: f32 = p
                .iter()
                .zip(&self.log_mean)
                .filter(|(&pj, _)| pj > 0.0)
                .map(|(pj, lm)| pj * lm)
                .sum();
            let (log_mean, h) = (&self.log_mean, self.h[i]);
            // ln p_ik as the forward took it; a NaN p (never kept there) takes its own.
            let g_logit = |k: usize, pk: f32| {
                let ln = if pk > 0.0 { ln_p[k] } else { pk.ln() };
                scale * pk * (log_mean[k] - cross - ln - h)
            };
            self.row.iter_mut().zip(&gi).for_each(|(r, &g)| *r = g);
            let zi = &z[i * m..(i + 1) * m];
            let row = &mut self.row[..];
            let grad = grad.as_deref_mut();
            by_len!(m, pull(zi, row, e, p, grad, g_logit, self.scale));
            gi.iter_mut().zip(&self.row).for_each(|(g, &r)| *g = r);
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

    /// The loss and its gradient pair by pair on ndarray's rows with iterator sums: the loops
    /// the kernels replaced, which the finite-difference check (at m = 2) holds to the gradient.
    fn by_rows(
        (weight, temperature): (f32, f32),
        z: &Array2<f32>,
        codes: &Array2<f32>,
        g_z: &mut Array2<f32>,
        grad: &mut Array2<f32>,
    ) -> f32 {
        let (n, s) = (z.nrows(), codes.nrows());
        let scale = temperature * by_pairs(z, codes).1;
        let mut p = Array2::<f32>::zeros((n, s));
        let mut h = vec![0.0f32; n];
        let mut log_mean = vec![0.0f32; s];
        let mut mean_h = 0.0;
        for (i, zi) in z.outer_iter().enumerate() {
            let mut row = p.row_mut(i);
            for (pj, ej) in row.iter_mut().zip(codes.outer_iter()) {
                let d2 = zi.iter().zip(ej).map(|(a, b)| (a - b) * (a - b)).sum::<f32>();
                *pj = -d2 / scale;
            }
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0;
            for pj in row.iter_mut() {
                *pj = (*pj - max).exp();
                sum += *pj;
            }
            for (pj, m) in row.iter_mut().zip(log_mean.iter_mut()) {
                *pj /= sum;
                if *pj > 0.0 {
                    h[i] -= *pj * pj.ln();
                }
                *m += *pj / n as f32;
            }
            mean_h += h[i] / n as f32;
        }
        let mut batch_h = 0.0;
        for m in log_mean.iter_mut() {
            if *m > 0.0 {
                batch_h -= *m * m.ln();
            }
            *m = m.max(f32::MIN_POSITIVE).ln();
        }
        let w = weight / n as f32;
        for (i, zi) in z.outer_iter().enumerate() {
            let cross: f32 = p
                .row(i)
                .iter()
                .zip(&log_mean)
                .filter(|(&pj, _)| pj > 0.0)
                .map(|(pj, lm)| pj * lm)
                .sum();
            for (k, ek) in codes.outer_iter().enumerate() {
                let pk = p[[i, k]];
                if pk == 0.0 {
                    continue;
                }
                let g_logit = w * pk * (log_mean[k] - cross - pk.ln() - h[i]);
                let c = -2.0 * g_logit / scale;
                for d in 0..zi.len() {
                    g_z[[i, d]] += c * (zi[d] - ek[d]);
                    grad[[k, d]] -= c * (zi[d] - ek[d]);
                }
            }
        }
        weight * (mean_h - batch_h)
    }

    #[test]
    fn loss_and_gradient_are_the_pairwise_rows_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let (weight, temperature) = (0.3, 0.8);
        // One regulariser through batches of every size, as a run's scratch sees them.
        for m in [1, 2, 3, 4, 6] {
            let mut reg = Entropy::new(weight, temperature, 30, m);
            for n in [9, 16, 5] {
                let z = mixed(&mut rng, n, m);
                let codes = mixed(&mut rng, 30, m);
                let mut want_g_z = Array2::from_elem((n, m), 0.25f32);
                let mut want_grad = Array2::from_elem((30, m), -0.5f32);
                let want = by_rows(
                    (weight, temperature),
                    &z,
                    &codes,
                    &mut want_g_z,
                    &mut want_grad,
                );
                let loss = reg.loss(z.view(), codes.view());
                let mut g_z = Array2::from_elem((n, m), 0.25f32);
                let mut grad = Array2::from_elem((30, m), -0.5f32);
                reg.backward(z.view(), codes.view(), g_z.view_mut(), Some(grad.view_mut()));
                assert_eq!(loss.to_bits(), want.to_bits(), "n {n}, m {m}");
                assert_eq!(bits(&g_z), bits(&want_g_z), "n {n}, m {m}");
                assert_eq!(bits(&grad), bits(&want_grad), "n {n}, m {m}");
            }
        }
    }
}

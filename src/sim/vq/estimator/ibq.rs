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

/// Per-row scratch, allocated once: the work is O(S·m) per row, so it runs on plain slices.
#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Ibq {
    /// One row's soft one-hot p, (S).
    p: Vec<f32>,
    /// One row's a_j = g·e_j, (S).
    a: Vec<f32>,
    /// One row's z, g and ∂L/∂z, (m) each.
    zi: Vec<f32>,
    gi: Vec<f32>,
    out: Vec<f32>,
}

impl Estimate for Ibq {
    fn build(c: &Ctx) -> Ibq {
        let (s, m) = (c.s, c.m);
        Ibq {
            p: vec![0.0; s],
            a: vec![0.0; s],
            zi: vec![0.0; m],
            gi: vec![0.0; m],
            out: vec![0.0; m],
        }
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
        let m = codes.ncols();
        let e = codes.as_slice().expect("the codebook is contiguous");
        let mut grad = grad.map(|g| g.into_slice().expect("the gradient is contiguous"));
        let two_over_t = 2.0 / crate::sim::vq::margin(z, codes);
        let double = 2.0 / z.len() as f32;
        for (i, &k) in assign.iter().enumerate() {
            let ek = &e[k * m..(k + 1) * m];
            for (d, (zd, gd)) in self.zi.iter_mut().zip(self.gi.iter_mut()).enumerate() {
                *zd = z[[i, d]];
                *gd = g_q[[i, d]] + double * (ek[d] - *zd);
            }
            let (zi, gi) = (&self.zi, &self.gi);
            // l_j = −‖z − e_j‖²/T, shifted by the largest logit; a_j = g·e_j.
            let mut max = f32::NEG_INFINITY;
            for ((pj, aj), ej) in self.p.iter_mut().zip(&mut self.a).zip(e.chunks_exact(m)) {
                *pj = -0.5 * two_over_t * sq_dist(zi, ej);
                *aj = gi.iter().zip(ej).map(|(x, y)| x * y).sum();
                max = max.max(*pj);
            }
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
            for (j, ((pj, aj), ej)) in self
                .p
                .iter()
                .zip(&self.a)
                .zip(e.chunks_exact(m))
                .enumerate()
            {
                let c = two_over_t * pj * (aj - mean_a);
                for (o, x) in self.out.iter_mut().zip(ej) {
                    *o += c * x;
                }
                if let Some(grad) = grad.as_deref_mut() {
                    for ((g, x), y) in grad[j * m..(j + 1) * m].iter_mut().zip(zi).zip(ej) {
                        *g += c * (x - y);
                    }
                }
            }
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

fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

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

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{Ctx, Estimate};
use crate::sim::config::{Check, RangeError, Remedy, Update};

pub(super) const REMEDY: Remedy = Remedy {
    word: "ibq",
    doc: "index backpropagation, decoder input (onehot − sg(p) + p)·E with p = softmax(−‖z − e‖²) over all codes, so z and every code get the decoder's gradient",
    cite: "Shi et al. 2024; its reference's logits are dot products, here squared distances so the forward pass stays the nearest code",
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
        for (i, &k) in assign.iter().enumerate() {
            for (d, (zd, gd)) in self.zi.iter_mut().zip(self.gi.iter_mut()).enumerate() {
                (*zd, *gd) = (z[[i, d]], g_q[[i, d]]);
            }
            let (zi, gi) = (&self.zi, &self.gi);
            // p = softmax(−‖z − e‖²), shifted by the largest logit; a_j = g·e_j.
            let mut max = f32::NEG_INFINITY;
            for ((pj, aj), ej) in self.p.iter_mut().zip(&mut self.a).zip(e.chunks_exact(m)) {
                *pj = -zi
                    .iter()
                    .zip(ej)
                    .map(|(x, y)| (x - y) * (x - y))
                    .sum::<f32>();
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
            self.out.fill(0.0);
            for (j, ((pj, aj), ej)) in self
                .p
                .iter()
                .zip(&self.a)
                .zip(e.chunks_exact(m))
                .enumerate()
            {
                let two_gamma = 2.0 * pj * (aj - mean_a);
                for (o, x) in self.out.iter_mut().zip(ej) {
                    *o += two_gamma * x;
                }
                if let Some(grad) = grad.as_deref_mut() {
                    for ((g, x), y) in grad[j * m..(j + 1) * m].iter_mut().zip(zi).zip(ej) {
                        *g += two_gamma * (x - y);
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
}

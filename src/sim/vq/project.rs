//! `quantizer.code_dim`: the lookup happens in a low-dimensional space reached through learned
//! projections, z (m) → W_in → u (code_dim) → nearest code e → W_out → decoder input (m)
//! (Yu et al. 2021, ViT-VQGAN "factorized codes"; `codebook_dim` with `project_in` /
//! `project_out` in lucidrains/vector-quantize-pytorch). Both maps are affine layers initialised
//! as PyTorch's `nn.Linear`. They belong to the quantizer and learn with its own Adam (same
//! rate as the networks'): created with the codebook, their Adam starts counting steps with
//! them, which the networks' Adam (already stepped through a deferred continuous phase) would
//! not.

use ndarray::{ArrayView2, ArrayViewMut2};
use rand::Rng;

use crate::sim::nn::{Adam, Linear};

#[derive(Debug, Clone)]
pub(super) struct Project {
    /// (m → code_dim)
    pub(super) w_in: Linear,
    /// (code_dim → m)
    pub(super) w_out: Linear,
    adam: Adam,
}

impl Project {
    pub(super) fn new(m: usize, code_dim: usize, lr: f32, rng: &mut impl Rng) -> Project {
        let w_in = Linear::new(m, code_dim, rng);
        let w_out = Linear::new(code_dim, m, rng);
        Project {
            w_in,
            w_out,
            adam: Adam::new(lr),
        }
    }

    /// u = z·W_in + b_in, (n, m) → (n, code_dim).
    pub(super) fn input(&self, z: ArrayView2<f32>, u: ArrayViewMut2<f32>) {
        self.w_in.forward(z, u);
    }

    /// The decoder's input W_out·e + b_out for lookup-space rows `e`, (n, code_dim) → (n, m).
    pub(super) fn output(&self, e: ArrayView2<f32>, q: ArrayViewMut2<f32>) {
        self.w_out.forward(e, q);
    }

    /// Clears both layers' gradients; each backward then accumulates one batch's.
    pub(super) fn zero_grad(&mut self) {
        self.w_in.zero_grad();
        self.w_out.zero_grad();
    }

    /// ∂L/∂e from the decoder's ∂L/∂q, collecting W_out's gradient (e, (n, code_dim), the
    /// rows the decoder received).
    pub(super) fn output_backward(
        &mut self,
        e: ArrayView2<f32>,
        g_q: ArrayView2<f32>,
        g_e: ArrayViewMut2<f32>,
    ) {
        self.w_out.backward(e, g_q, Some(g_e));
    }

    /// ∂L/∂z from ∂L/∂u, collecting W_in's gradient.
    pub(super) fn input_backward(
        &mut self,
        z: ArrayView2<f32>,
        g_u: ArrayView2<f32>,
        g_z: ArrayViewMut2<f32>,
    ) {
        self.w_in.backward(z, g_u, Some(g_z));
    }

    /// One Adam step of both layers along their gradients.
    pub(super) fn step(&mut self) {
        let Project { w_in, w_out, adam } = self;
        let params = [w_in, w_out].into_iter().flat_map(|l| {
            let Linear { w, b, gw, gb } = l;
            [
                (w.as_slice_mut().unwrap(), gw.as_slice().unwrap()),
                (b.as_slice_mut().unwrap(), gb.as_slice().unwrap()),
            ]
        });
        adam.step(params);
    }

    pub(super) fn all_finite(&self) -> bool {
        [&self.w_in, &self.w_out]
            .iter()
            .all(|l| l.w.iter().chain(&l.b).all(|v| v.is_finite()))
    }
}

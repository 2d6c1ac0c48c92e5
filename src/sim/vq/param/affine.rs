//! `parameterization = "affine"`: the learned affine reparameterisation of vqtorch's
//! `VectorQuant` (Huh et al. 2023, "Straightening out the straight-through estimator", §4;
//! minyoungg/vqtorch `vqtorch/nn/vq.py` L61–68 builds `AffineTransform(use_running_statistics=
//! False, lr_scale=affine_lr)`, `vqtorch/nn/affine.py` L35–37 and L91–92). Per dimension j,
//! E_kj = (1 + a·s_j)·P_kj + a·b_j: raw codes P and a scale s and shift b shared by every
//! code, s and b starting at 0 (E = P at step 0) and learned by the same optimizer as the
//! codes. a = `affine_lr` multiplies the parameters in the forward pass, so under Adam it makes
//! their steps a times larger. vqtorch's `VectorQuant` default is 0 (off); its README and
//! examples use 10 (`examples/test.py`), vqsim's default. A code that is never selected still
//! moves with s and b, which the selected codes' loss trains.
//!
//! Gradients, for G = ∂L/∂E: ∂L/∂P_kj = (1 + a·s_j)·G_kj, ∂L/∂s_j = a·Σ_k G_kj·P_kj,
//! ∂L/∂b_j = a·Σ_k G_kj.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis, Zip};

use super::{ByGradient, Ctx, Parameterize};
use crate::sim::config::key::{EXCL, INCL, MAX_FLOAT};
use crate::sim::config::{Key, Remedy};
use crate::sim::nn::Adam;

const AFFINE_LR: Key = Key::float(
    "quantizer.affine_lr",
    10.0,
    ((0.0, EXCL), (MAX_FLOAT, INCL)),
    "affine lr",
    "parameterization = \"affine\": multiplier a of the learned scale and shift, which makes their Adam steps a times larger (vqtorch's affine_lr; its README and examples: 10)",
);

pub(super) const REMEDY: Remedy = Remedy {
    word: "affine",
    doc: "raw codes times a learned per-dimension scale 1 + a·s plus a shift a·b, s = b = 0 at start, a = affine_lr; needs update = \"loss\" and restart = \"none\"",
    cite: "Huh et al. 2023, vqtorch's VectorQuant",
    keys: &[AFFINE_LR],
    rules: &[super::learned_by_loss_only],
};

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Affine {
    /// a: the parameters' multiplier (vqtorch's `affine_lr`).
    a: f32,
    /// Raw codes P, (S, c); scale s and shift b, (c) each.
    raw: Array2<f32>,
    s: Array1<f32>,
    b: Array1<f32>,
    /// Scratch: their gradients.
    g_raw: Array2<f32>,
    g_s: Array1<f32>,
    g_b: Array1<f32>,
    adam: Adam,
}

impl Affine {
    /// Raw codes at the initial `codes`, s = b = 0.
    pub(super) fn new(codes: ArrayView2<f32>, lr: f32, a: f32) -> Affine {
        let c = codes.ncols();
        Affine {
            a,
            raw: codes.to_owned(),
            s: Array1::zeros(c),
            b: Array1::zeros(c),
            g_raw: Array2::zeros(codes.raw_dim()),
            g_s: Array1::zeros(c),
            g_b: Array1::zeros(c),
            adam: Adam::new(lr),
        }
    }

    /// The gradients of P, s and b from `grad` = ∂L/∂E, an Adam step of all three, and E
    /// rewritten.
    pub(super) fn step(&mut self, grad: ArrayView2<f32>, codes: ArrayViewMut2<f32>) {
        self.backward(grad);
        let raw = self.raw.as_slice_mut().expect("contiguous");
        let s = self.s.as_slice_mut().expect("contiguous");
        let b = self.b.as_slice_mut().expect("contiguous");
        let g_raw = self.g_raw.as_slice().expect("contiguous");
        let g_s = self.g_s.as_slice().expect("contiguous");
        let g_b = self.g_b.as_slice().expect("contiguous");
        self.adam
            .step([(raw, g_raw), (s, g_s), (b, g_b)].into_iter());
        self.codes(codes);
    }

    fn backward(&mut self, grad: ArrayView2<f32>) {
        let a = self.a;
        for (j, ((g, p), mut gp)) in grad
            .axis_iter(Axis(1))
            .zip(self.raw.axis_iter(Axis(1)))
            .zip(self.g_raw.axis_iter_mut(Axis(1)))
            .enumerate()
        {
            let scale = 1.0 + a * self.s[j];
            Zip::from(&mut gp).and(&g).for_each(|o, &x| *o = scale * x);
            self.g_s[j] = a * g.iter().zip(&p).map(|(x, y)| x * y).sum::<f32>();
            self.g_b[j] = a * g.sum();
        }
    }

    /// E = (1 + a·s) ⊙ P + a·b.
    fn codes(&self, mut codes: ArrayViewMut2<f32>) {
        for (j, (mut e, p)) in codes
            .axis_iter_mut(Axis(1))
            .zip(self.raw.axis_iter(Axis(1)))
            .enumerate()
        {
            let (scale, shift) = (1.0 + self.a * self.s[j], self.a * self.b[j]);
            Zip::from(&mut e)
                .and(&p)
                .for_each(|o, &x| *o = scale * x + shift);
        }
    }

}

impl Parameterize for Affine {
    fn build(c: &Ctx) -> Affine {
        Affine::new(c.codes, c.lr, c.q.params.float(&AFFINE_LR) as f32)
    }

    fn update(&mut self, g: &mut ByGradient, codes: ArrayViewMut2<f32>, _u: ArrayView2<f32>) {
        self.step(g.grad.view(), codes);
    }

    fn all_finite(&self) -> bool {
        self.raw
            .iter()
            .chain(&self.s)
            .chain(&self.b)
            .all(|v| v.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn gradients_match_finite_differences() {
        // L = Σ G ⊙ E(P, s, b) for a fixed G, at a point where s and b are not 0.
        let raw = array![[0.5f32, -1.0], [2.0, 0.3], [-0.7, 1.1]];
        let g = array![[0.2f32, -0.4], [1.0, 0.5], [-0.3, 0.9]];
        let mut p = Affine::new(raw.view(), 1e-3, 10.0);
        p.s = array![0.03f32, -0.02];
        p.b = array![0.1f32, 0.05];
        p.backward(g.view());
        let loss = |q: &Affine| {
            let mut e = Array2::zeros((3, 2));
            q.codes(e.view_mut());
            (&g * &e).iter().map(|&v| v as f64).sum::<f64>()
        };
        let h = 1e-3;
        let numeric = |f: &dyn Fn(&mut Affine, f32)| {
            let (mut up, mut down) = (p.clone(), p.clone());
            f(&mut up, h);
            f(&mut down, -h);
            (loss(&up) - loss(&down)) / (2.0 * h as f64)
        };
        for j in 0..2 {
            let n = numeric(&|q: &mut Affine, d| q.s[j] += d);
            assert!(
                (n - p.g_s[j] as f64).abs() < 1e-3 * n.abs().max(1.0),
                "s {j}: {n} vs {}",
                p.g_s[j]
            );
            let n = numeric(&|q: &mut Affine, d| q.b[j] += d);
            assert!(
                (n - p.g_b[j] as f64).abs() < 1e-3 * n.abs().max(1.0),
                "b {j}: {n} vs {}",
                p.g_b[j]
            );
            for k in 0..3 {
                let n = numeric(&|q: &mut Affine, d| q.raw[[k, j]] += d);
                let a = p.g_raw[[k, j]] as f64;
                assert!(
                    (n - a).abs() < 1e-3 * n.abs().max(1.0),
                    "P {k},{j}: {n} vs {a}"
                );
            }
        }
    }

    #[test]
    fn starts_at_the_codes_and_moves_every_code_with_the_selected_ones() {
        let raw = array![[0.0f32, 1.0], [2.0, 3.0], [-1.0, 4.0]];
        let mut p = Affine::new(raw.view(), 1e-2, 10.0);
        let mut codes = raw.clone();
        p.codes(codes.view_mut());
        assert_eq!(codes, raw, "s = b = 0: E = P");
        // Only code 0 is selected (has a gradient); the shift moves codes 1 and 2 as well,
        // by a·lr = 0.1 per Adam step in each dimension (Adam's first step is ±lr).
        let mut grad = Array2::zeros((3, 2));
        grad.row_mut(0).assign(&array![1.0f32, -1.0]);
        p.step(grad.view(), codes.view_mut());
        for k in 1..3 {
            assert_ne!(codes.row(k), raw.row(k), "code {k}");
        }
        assert!(
            (p.b[0] + 0.01).abs() < 1e-6 && (p.b[1] - 0.01).abs() < 1e-6,
            "{}",
            p.b
        );
    }
}

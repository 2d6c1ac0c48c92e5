//! SimVQ (Zhu et al. 2024, "Addressing Representation Collapse in Vector Quantized Models with
//! One Linear Layer"; the authors' `SimVQ` in youngsheen/SimVQ,
//! `taming/modules/vqvae/quantize.py` L28–33 and L84): E = C·W + b with a frozen basis C (S, c)
//! drawn from N(0, 1/c) and one learned linear map, `nn.Linear(c, c)` with its bias and
//! PyTorch's initialisation (W and b uniform in ±1/√c). Every code moves with W and b, so the
//! codebook loss of the few selected codes moves the whole codebook and none is left behind.
//!
//! The codebook therefore starts where the authors' does, near the origin, whatever
//! `quantizer.init` says; the losses are VQ-VAE's (their configurations' `legacy: false`: β on
//! the commitment). lucidrains' `SimVQ` (vector-quantize-pytorch `sim_vq.py`) differs: no bias
//! (L62) and the rotation trick on by default (L45) with its own loss weights; vqsim follows
//! the authors. The rotation trick can still be combined (`quantizer.estimator`).

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis};
use ndarray_rand::rand_distr::{StandardNormal, Uniform};
use ndarray_rand::RandomExt;
use rand_chacha::ChaCha8Rng;

use super::{ByGradient, Ctx, Parameterize};
use crate::sim::config::Remedy;
use crate::sim::matmul::{matmul, Into};
use crate::sim::nn::Adam;
use crate::sim::rng::{stream, Stream};

pub(super) const REMEDY: Remedy = Remedy {
    word: "simvq",
    doc: "a frozen random basis C ~ N(0, 1/m) × a learned linear map W plus bias, initialised as nn.Linear (quantizer.init is not used); needs update = \"loss\" and restart = \"none\"",
    cite: "Zhu et al. 2024, the authors' code",
    keys: &[],
    rules: &[super::learned_by_loss_only],
};

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct SimVq {
    /// Frozen basis C, (S, c).
    basis: Array2<f32>,
    /// Learned map W, (c, c), and bias b, (c).
    w: Array2<f32>,
    b: Array1<f32>,
    /// Scratch: ∂L/∂W, (c, c), and ∂L/∂b, (c).
    gw: Array2<f32>,
    gb: Array1<f32>,
    adam: Adam,
}

impl SimVq {
    /// The authors' initialisation for `s` codes of dimension `c`, drawn from `rng`, and the
    /// codes it gives.
    pub(super) fn new(s: usize, c: usize, lr: f32, rng: &mut ChaCha8Rng) -> (SimVq, Array2<f32>) {
        let scale = 1.0 / (c as f32).sqrt();
        let basis = Array2::<f32>::random_using((s, c), StandardNormal, rng) * scale;
        let bound = Uniform::new_inclusive(-scale, scale);
        let w = Array2::random_using((c, c), bound, rng);
        let b = Array1::random_using(c, bound, rng);
        let p = SimVq {
            basis,
            w,
            b,
            gw: Array2::zeros((c, c)),
            gb: Array1::zeros(c),
            adam: Adam::new(lr),
        };
        let mut codes = Array2::zeros((s, c));
        p.codes(codes.view_mut());
        (p, codes)
    }

    /// E = C·W + b.
    fn codes(&self, mut codes: ArrayViewMut2<f32>) {
        matmul(
            codes.view_mut(),
            Into::Overwrite,
            self.basis.view(),
            self.w.view(),
        );
        codes += &self.b;
    }

    /// ∂L/∂W = Cᵀ·∂L/∂E and ∂L/∂b = Σ_k ∂L/∂E_k; an Adam step of both; E rewritten.
    pub(super) fn step(&mut self, grad: ArrayView2<f32>, codes: ArrayViewMut2<f32>) {
        matmul(self.gw.view_mut(), Into::Overwrite, self.basis.t(), grad);
        for (gb, col) in self.gb.iter_mut().zip(grad.axis_iter(Axis(1))) {
            *gb = col.sum();
        }
        let w = self.w.as_slice_mut().expect("contiguous");
        let b = self.b.as_slice_mut().expect("contiguous");
        let gw = self.gw.as_slice().expect("contiguous");
        let gb = self.gb.as_slice().expect("contiguous");
        self.adam.step([(w, gw), (b, gb)].into_iter());
        self.codes(codes);
    }

}

impl Parameterize for SimVq {
    /// Drawn from the run's codebook stream (no initial codebook was fitted for it).
    fn build(c: &Ctx) -> SimVq {
        SimVq::new(c.s, c.m, c.lr, &mut stream(c.seed, Stream::Codebook)).0
    }

    fn start(&self, codes: ArrayViewMut2<f32>) {
        self.codes(codes);
    }

    fn update(&mut self, g: &mut ByGradient, codes: ArrayViewMut2<f32>, _u: ArrayView2<f32>) {
        self.step(g.grad.view(), codes);
    }

    fn all_finite(&self) -> bool {
        self.w.iter().chain(&self.b).all(|v| v.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use rand::SeedableRng;

    fn with(basis: Array2<f32>, w: Array2<f32>, b: Array1<f32>) -> SimVq {
        let c = w.nrows();
        SimVq {
            basis,
            w,
            b,
            gw: Array2::zeros((c, c)),
            gb: Array1::zeros(c),
            adam: Adam::new(1e-3),
        }
    }

    #[test]
    fn gradients_of_w_and_b_match_finite_differences() {
        // L = Σ G ⊙ (C·W + b) for a fixed G, compared with central differences.
        let basis = array![[1.0f32, 2.0], [-0.5, 0.3], [0.7, -1.1]];
        let g = array![[0.2f32, -0.4], [1.0, 0.5], [-0.3, 0.9]];
        let mut p = with(
            basis.clone(),
            array![[0.9f32, 0.2], [-0.1, 1.3]],
            array![0.3f32, -0.2],
        );
        let mut codes = Array2::zeros((3, 2));
        let (w0, b0) = (p.w.clone(), p.b.clone());
        p.step(g.view(), codes.view_mut());
        let loss = |w: &Array2<f32>, b: &Array1<f32>| {
            (&g * &(basis.dot(w) + b))
                .iter()
                .map(|&v| v as f64)
                .sum::<f64>()
        };
        let h = 1e-2;
        for i in 0..2 {
            for j in 0..2 {
                let (mut a, mut m) = (w0.clone(), w0.clone());
                a[[i, j]] += h;
                m[[i, j]] -= h;
                let numeric = (loss(&a, &b0) - loss(&m, &b0)) / (2.0 * h as f64);
                assert!((numeric - p.gw[[i, j]] as f64).abs() < 1e-4, "W {i},{j}");
            }
            let (mut a, mut m) = (b0.clone(), b0.clone());
            a[i] += h;
            m[i] -= h;
            let numeric = (loss(&w0, &a) - loss(&w0, &m)) / (2.0 * h as f64);
            assert!((numeric - p.gb[i] as f64).abs() < 1e-4, "b {i}");
        }
        // The step wrote the new codes C·W + b.
        assert_eq!(codes, basis.dot(&p.w) + &p.b);
    }

    #[test]
    fn starts_from_the_authors_initialisation_and_moves_unselected_codes() {
        // S = 4000 codes in c = 4: the basis has variance 1/c, W and b are within ±1/√c.
        let (mut p, mut codes) = SimVq::new(4000, 4, 0.1, &mut ChaCha8Rng::seed_from_u64(1));
        let var = p.basis.iter().map(|v| v * v).sum::<f32>() / p.basis.len() as f32;
        assert!((var - 0.25).abs() < 0.01, "{var}");
        assert!(p.w.iter().chain(&p.b).all(|v| v.abs() <= 0.5));
        assert!(p.b.iter().any(|&v| v != 0.0), "a bias, as nn.Linear");
        assert_eq!(codes, p.basis.dot(&p.w) + &p.b);
        // Only code 0 has a gradient; W's and b's steps move every code.
        let mut grad = Array2::zeros((4000, 4));
        grad.row_mut(0).fill(1.0);
        let before = codes.clone();
        p.step(grad.view(), codes.view_mut());
        assert!(codes
            .outer_iter()
            .zip(before.outer_iter())
            .all(|(a, b)| a != b));
    }
}

//! SimVQ (Zhu et al. 2024, "Addressing Representation Collapse in Vector Quantized Models with
//! One Linear Layer"; `SimVQ` in lucidrains/vector-quantize-pytorch): E = C·W with a frozen
//! basis C (S, c) and one learned map W (c, c). Every code moves with W, so the codebook loss
//! of the few selected codes moves the whole codebook and none is left behind.
//!
//! The paper and lucidrains draw C from a Gaussian and W as `nn.Linear`; here C is the
//! initial codebook of `quantizer.init` (k-means, uniform or normal) and W starts at the
//! identity, so a run starts from the same codes as the direct parameterization and the arms
//! differ only in how the codes learn.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use super::{ByGradient, Ctx, Parameterize};
use crate::sim::config::Remedy;
use crate::sim::matmul::{matmul, Into};
use crate::sim::nn::Adam;

pub(super) const REMEDY: Remedy = Remedy {
    word: "simvq",
    doc: "frozen basis C (the init codebook) × learned map W, W = I at start; needs update = \"loss\" and restart = \"none\"",
    cite: "Zhu et al. 2024",
    keys: &[],
    rules: &[super::learned_by_loss_only],
};

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct SimVq {
    /// Frozen basis C, (S, c).
    basis: Array2<f32>,
    /// Learned map W, (c, c).
    w: Array2<f32>,
    /// Scratch: ∂L/∂W, (c, c).
    gw: Array2<f32>,
    adam: Adam,
}

impl SimVq {
    pub(super) fn new(codes: ArrayView2<f32>, lr: f32) -> SimVq {
        let c = codes.ncols();
        SimVq {
            basis: codes.to_owned(),
            w: Array2::eye(c),
            gw: Array2::zeros((c, c)),
            adam: Adam::new(lr),
        }
    }

    /// ∂L/∂W = Cᵀ·∂L/∂E; an Adam step of W; E = C·W.
    pub(super) fn step(&mut self, grad: ArrayView2<f32>, codes: ArrayViewMut2<f32>) {
        matmul(self.gw.view_mut(), Into::Overwrite, self.basis.t(), grad);
        let w = self.w.as_slice_mut().expect("contiguous");
        let gw = self.gw.as_slice().expect("contiguous");
        self.adam.step(std::iter::once((w, gw)));
        matmul(codes, Into::Overwrite, self.basis.view(), self.w.view());
    }

}

impl Parameterize for SimVq {
    fn build(c: &Ctx) -> SimVq {
        SimVq::new(c.codes, c.lr)
    }

    fn update(&mut self, g: &mut ByGradient, codes: ArrayViewMut2<f32>, _u: ArrayView2<f32>) {
        self.step(g.grad.view(), codes);
    }

    fn all_finite(&self) -> bool {
        self.w.iter().all(|v| v.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn gradient_of_w_matches_finite_differences() {
        // L = Σ G ⊙ (C·W) for a fixed G: ∂L/∂W = Cᵀ·G, compared with central differences.
        let basis = array![[1.0f32, 2.0], [-0.5, 0.3], [0.7, -1.1]];
        let g = array![[0.2f32, -0.4], [1.0, 0.5], [-0.3, 0.9]];
        let mut p = SimVq::new(basis.view(), 1e-3);
        p.w = array![[0.9f32, 0.2], [-0.1, 1.3]];
        matmul(p.gw.view_mut(), Into::Overwrite, p.basis.t(), g.view());
        let loss = |w: &Array2<f32>| (&g * &basis.dot(w)).iter().map(|&v| v as f64).sum::<f64>();
        for i in 0..2 {
            for j in 0..2 {
                let h = 1e-2;
                let (mut a, mut b) = (p.w.clone(), p.w.clone());
                a[[i, j]] += h;
                b[[i, j]] -= h;
                let numeric = (loss(&a) - loss(&b)) / (2.0 * h as f64);
                assert!((numeric - p.gw[[i, j]] as f64).abs() < 1e-4, "{i},{j}");
            }
        }
    }

    #[test]
    fn starts_at_the_initial_codes_and_moves_unselected_ones() {
        let basis = array![[1.0f32, 0.0], [0.0, 1.0], [2.0, 2.0]];
        let mut p = SimVq::new(basis.view(), 0.1);
        let mut codes = basis.clone();
        // Only code 0 has a gradient; W's step moves code 2 too.
        let grad = array![[1.0f32, 1.0], [0.0, 0.0], [0.0, 0.0]];
        p.step(grad.view(), codes.view_mut());
        assert_eq!(
            codes.row(1),
            basis.row(1),
            "code 1 is orthogonal to the step"
        );
        assert!(codes[[2, 0]] < 2.0 && codes[[0, 0]] < 1.0, "{codes}");
        assert_eq!(codes, basis.dot(&p.w));
    }
}

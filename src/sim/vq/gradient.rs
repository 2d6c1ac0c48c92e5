//! `update = "loss"`: the codebook learns from the codebook loss ‖sg(z) − q‖² with its own Adam.

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Zip};

use crate::sim::nn::Adam;

/// The codebook's gradient (one batch's, overwritten by each backward) and its optimizer.
#[derive(Debug, Clone)]
pub(super) struct ByGradient {
    /// ∂L/∂codes, (S, m).
    pub(super) grad: Array2<f32>,
    adam: Adam,
}

impl ByGradient {
    pub(super) fn new(shape: (usize, usize), lr: f32) -> ByGradient {
        ByGradient {
            grad: Array2::zeros(shape),
            adam: Adam::new(lr),
        }
    }

    /// The gradient of the codebook loss with weight `weight` for a batch: 2·weight·(q − z)/(n·m)
    /// added to each selected code.
    pub(super) fn backward(
        &mut self,
        z: ArrayView2<f32>,
        q: ArrayView2<f32>,
        assign: &[usize],
        weight: f32,
    ) {
        let scale = 2.0 * weight / z.len() as f32;
        self.grad.fill(0.0);
        for ((zi, qi), &k) in z.outer_iter().zip(q.outer_iter()).zip(assign) {
            Zip::from(self.grad.row_mut(k))
                .and(zi)
                .and(qi)
                .for_each(|g, &a, &b| {
                    *g += scale * (b - a);
                });
        }
    }

    /// One Adam step of `codes` along the last gradient.
    pub(super) fn step(&mut self, mut codes: ArrayViewMut2<f32>) {
        let codes = codes.as_slice_mut().expect("codebook is contiguous");
        let grad = self.grad.as_slice().expect("gradient is contiguous");
        self.adam.step(std::iter::once((codes, grad)));
    }
}

//! Fully connected layer y = x·W + b.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis, Zip};
use rand::Rng;

use crate::sim::matmul::{matmul, Into};

/// W is (fan_in, fan_out) so the batch (n, fan_in) multiplies from the left without a transpose.
#[derive(Debug, Clone)]
pub struct Linear {
    /// (fan_in, fan_out)
    pub w: Array2<f32>,
    /// (fan_out)
    pub b: Array1<f32>,
    /// dL/dW, same shape as `w`.
    pub gw: Array2<f32>,
    /// dL/db, same shape as `b`.
    pub gb: Array1<f32>,
}

impl Linear {
    /// PyTorch nn.Linear init: W and b uniform in ±1/sqrt(fan_in). The init scale sets the spread
    /// of an untrained encoder's outputs, which is what the experiments are about.
    pub fn new(fan_in: usize, fan_out: usize, rng: &mut impl Rng) -> Self {
        assert!(
            fan_in > 0 && fan_out > 0,
            "linear layer needs nonzero fan_in and fan_out"
        );
        let k = 1.0 / (fan_in as f32).sqrt();
        let w = Array2::from_shape_fn((fan_in, fan_out), |_| rng.gen_range(-k..k));
        let b = Array1::from_shape_fn(fan_out, |_| rng.gen_range(-k..k));
        Self {
            gw: Array2::zeros(w.raw_dim()),
            gb: Array1::zeros(b.raw_dim()),
            w,
            b,
        }
    }

    pub fn fan_in(&self) -> usize {
        self.w.nrows()
    }

    pub fn fan_out(&self) -> usize {
        self.w.ncols()
    }

    /// (n, fan_in) -> (n, fan_out), written into `y`.
    pub fn forward(&self, x: ArrayView2<f32>, mut y: ArrayViewMut2<f32>) {
        // Seed y with the bias so the product can accumulate onto it (beta = 1): one pass less.
        y.assign(
            &self
                .b
                .broadcast(y.raw_dim())
                .expect("bias width matches fan_out"),
        );
        matmul(y, Into::Add, x, self.w.view());
    }

    /// Accumulates (+=) gw = xᵀ·gy and gb = Σ gy; writes gx = gy·Wᵀ when asked.
    /// Accumulating (rather than overwriting) keeps a layer reused twice in one step correct.
    pub fn backward(
        &mut self,
        x: ArrayView2<f32>,
        gy: ArrayView2<f32>,
        gx: Option<ArrayViewMut2<f32>>,
    ) {
        matmul(self.gw.view_mut(), Into::Add, x.t(), gy);
        for row in gy.axis_iter(Axis(0)) {
            Zip::from(&mut self.gb)
                .and(&row)
                .for_each(|gb, &g| *gb += g);
        }
        if let Some(gx) = gx {
            matmul(gx, Into::Overwrite, gy, self.w.t());
        }
    }

    pub fn zero_grad(&mut self) {
        self.gw.fill(0.0);
        self.gb.fill(0.0);
    }
}

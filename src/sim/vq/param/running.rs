//! `parameterization = "affine_running"`: the affine reparameterisation from running statistics
//! (Huh et al. 2023, "Straightening out the straight-through estimator", §4;
//! `AffineTransform(use_running_statistics=True)` in minyoungg/vqtorch `vqtorch/nn/affine.py`
//! L26–33, L51–70, L88–89 — an option of that class that `VectorQuant` never selects; its
//! default is the learned `affine`): E = s ⊙ P + b per dimension, with s = √(var_z / (var_P +
//! 1e-8)) and b = mean_z − s ⊙ mean_P from running means and (biased) variances of the encoder
//! outputs z and of the raw codes P. The whole codebook follows the embeddings' spread and
//! centre even when only a few codes are selected.
//!
//! As in vqtorch the statistics start as (mean 0, var 1) for both, i.e. E = P, are copied from
//! the first batch, then averaged with momentum 0.1; s and b are constants for the gradient
//! (∂L/∂P = s ⊙ ∂L/∂E). vqtorch updates them at the start of a forward pass; here they are
//! updated after each step from that step's batch, one batch later for the embeddings.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis, Zip};

use super::{ByGradient, Ctx, Parameterize};
use crate::sim::config::Remedy;
use crate::sim::nn::Adam;

pub(super) const REMEDY: Remedy = Remedy {
    word: "affine_running",
    doc: "raw codes scaled and shifted so their running mean/std match the inputs', momentum 0.1; needs update = \"loss\" and restart = \"none\"",
    cite: "vqtorch's AffineTransform(use_running_statistics=True), an option its VectorQuant does not use",
    keys: &[],
    rules: &[super::learned_by_loss_only],
};

/// Weight of a new batch in the running statistics (vqtorch's default).
const MOMENTUM: f32 = 0.1;
/// Keeps the scale finite when the raw codes have no spread in a dimension (vqtorch).
const VAR_EPS: f32 = 1e-8;

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Running {
    /// Raw codes P, (S, c).
    raw: Array2<f32>,
    /// Scratch: ∂L/∂P, (S, c).
    grad: Array2<f32>,
    adam: Adam,
    /// Running mean and variance of the inputs and of the raw codes, (c) each.
    z_mean: Array1<f32>,
    z_var: Array1<f32>,
    p_mean: Array1<f32>,
    p_var: Array1<f32>,
    /// False until the first batch has set the statistics.
    seen: bool,
    /// Scratch: one batch's mean and variance, (c).
    mean: Array1<f32>,
    var: Array1<f32>,
}

impl Running {
    pub(super) fn new(codes: ArrayView2<f32>, lr: f32) -> Running {
        let c = codes.ncols();
        Running {
            raw: codes.to_owned(),
            grad: Array2::zeros(codes.raw_dim()),
            adam: Adam::new(lr),
            z_mean: Array1::zeros(c),
            z_var: Array1::ones(c),
            p_mean: Array1::zeros(c),
            p_var: Array1::ones(c),
            seen: false,
            mean: Array1::zeros(c),
            var: Array1::zeros(c),
        }
    }

    /// Scale s and shift b of dimension j.
    fn affine(&self, j: usize) -> (f32, f32) {
        let s = (self.z_var[j] / (self.p_var[j] + VAR_EPS)).sqrt();
        (s, self.z_mean[j] - s * self.p_mean[j])
    }

    /// An Adam step of P along s ⊙ ∂L/∂E, the statistics updated with the batch `u` (n, c)
    /// and the new P, then E = s ⊙ P + b.
    pub(super) fn step(
        &mut self,
        grad: ArrayView2<f32>,
        mut codes: ArrayViewMut2<f32>,
        u: ArrayView2<f32>,
    ) {
        for j in 0..grad.ncols() {
            let (s, _) = self.affine(j);
            Zip::from(self.grad.column_mut(j))
                .and(grad.column(j))
                .for_each(|p, &g| *p = s * g);
        }
        let raw = self.raw.as_slice_mut().expect("contiguous");
        let g = self.grad.as_slice().expect("contiguous");
        self.adam.step(std::iter::once((raw, g)));
        self.observe(u);
        for (j, mut col) in codes.axis_iter_mut(Axis(1)).enumerate() {
            let (s, b) = self.affine(j);
            Zip::from(&mut col)
                .and(self.raw.column(j))
                .for_each(|e, &p| *e = s * p + b);
        }
    }

    /// Folds the batch `u` and the current raw codes into the running statistics.
    fn observe(&mut self, u: ArrayView2<f32>) {
        let first = !self.seen;
        self.seen = true;
        moments(u, &mut self.mean, &mut self.var);
        blend(&mut self.z_mean, &self.mean, first);
        blend(&mut self.z_var, &self.var, first);
        moments(self.raw.view(), &mut self.mean, &mut self.var);
        blend(&mut self.p_mean, &self.mean, first);
        blend(&mut self.p_var, &self.var, first);
    }

}

impl Parameterize for Running {
    fn build(c: &Ctx) -> Running {
        Running::new(c.codes, c.lr)
    }

    fn update(&mut self, g: &mut ByGradient, codes: ArrayViewMut2<f32>, u: ArrayView2<f32>) {
        self.step(g.grad.view(), codes, u);
    }

    fn all_finite(&self) -> bool {
        self.raw.iter().all(|v| v.is_finite())
    }
}

/// Per-column mean and biased variance of `x` (n, c) into `mean` and `var`.
fn moments(x: ArrayView2<f32>, mean: &mut Array1<f32>, var: &mut Array1<f32>) {
    let n = x.nrows() as f32;
    for (j, col) in x.axis_iter(Axis(1)).enumerate() {
        let m = col.sum() / n;
        mean[j] = m;
        var[j] = col.iter().map(|v| (v - m) * (v - m)).sum::<f32>() / n;
    }
}

/// running ← batch on the first batch, else (1 − momentum)·running + momentum·batch.
fn blend(running: &mut Array1<f32>, batch: &Array1<f32>, first: bool) {
    Zip::from(running).and(batch).for_each(|r, &b| {
        *r = if first {
            b
        } else {
            (1.0 - MOMENTUM) * *r + MOMENTUM * b
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// A step with a zero gradient leaves P alone (Adam's update is 0), so only the statistics
    /// move the codes.
    fn step_without_gradient(a: &mut Running, codes: &mut Array2<f32>, u: ArrayView2<f32>) {
        let zero = Array2::zeros(codes.raw_dim());
        a.step(zero.view(), codes.view_mut(), u);
    }

    #[test]
    fn running_statistics_follow_the_vqtorch_rule_on_a_hand_made_batch() {
        // Raw codes in one dimension: 0 and 2 (mean 1, var 1); second dimension 1 and 1.
        let raw = array![[0.0f32, 1.0], [2.0, 1.0]];
        let mut a = Running::new(raw.view(), 1e-3);
        let mut codes = raw.clone();
        // Batch 1: first dim 4, 8 (mean 6, var 4); second 0, 0 (mean 0, var 0).
        step_without_gradient(&mut a, &mut codes, array![[4.0f32, 0.0], [8.0, 0.0]].view());
        assert_eq!(a.z_mean, array![6.0f32, 0.0]);
        assert_eq!(a.z_var, array![4.0f32, 0.0]);
        assert_eq!(a.p_mean, array![1.0f32, 1.0]);
        assert_eq!(a.p_var, array![1.0f32, 0.0]);
        // s = √(4/1) = 2, b = 6 − 2·1 = 4: codes 4 and 8, the batch's spread and centre. In
        // the second dimension s = 0 and b = 0.
        assert_eq!(codes.column(0), array![4.0f32, 8.0]);
        assert_eq!(codes.column(1), array![0.0f32, 0.0]);
        // Batch 2: first dim 0, 0 (mean 0, var 0): z_mean = 0.9·6 = 5.4, z_var = 0.9·4 = 3.6.
        step_without_gradient(&mut a, &mut codes, array![[0.0f32, 0.0], [0.0, 0.0]].view());
        assert!((a.z_mean[0] - 5.4).abs() < 1e-6 && (a.z_var[0] - 3.6).abs() < 1e-6);
        assert_eq!(a.p_mean[0], 1.0);
    }

    #[test]
    fn gradient_of_raw_codes_is_scaled_by_s() {
        // L = Σ G ⊙ E with E = s ⊙ P + b (s, b frozen): ∂L/∂P = s ⊙ G, checked by differences.
        let raw = array![[0.0f32, 1.0], [2.0, 3.0]];
        let mut a = Running::new(raw.view(), 1e-3);
        let mut codes = raw.clone();
        step_without_gradient(&mut a, &mut codes, array![[4.0f32, 1.0], [8.0, 0.0]].view());
        let g = array![[0.3f32, -1.0], [0.5, 2.0]];
        let e_of = |p: &Array2<f32>| {
            let mut e = p.clone();
            for j in 0..2 {
                let (s, b) = a.affine(j);
                e.column_mut(j).mapv_inplace(|v| s * v + b);
            }
            (&g * &e).iter().map(|&v| v as f64).sum::<f64>()
        };
        for (k, j) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            let h = 1e-2;
            let (mut p, mut m) = (a.raw.clone(), a.raw.clone());
            p[[k, j]] += h;
            m[[k, j]] -= h;
            let numeric = (e_of(&p) - e_of(&m)) / (2.0 * h as f64);
            let analytic = a.affine(j).0 * g[[k, j]];
            assert!(
                (numeric - analytic as f64).abs() < 1e-3,
                "{k},{j}: {analytic} vs {numeric}"
            );
        }
        // And `step` hands Adam exactly s ⊙ G, with the s the gradient was computed under.
        let s: Vec<f32> = (0..2).map(|j| a.affine(j).0).collect();
        a.step(
            g.view(),
            codes.view_mut(),
            array![[4.0f32, 1.0], [8.0, 0.0]].view(),
        );
        for ((k, j), &v) in a.grad.indexed_iter() {
            assert_eq!(v, s[j] * g[[k, j]]);
        }
    }
}

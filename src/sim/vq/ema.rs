//! `update = "ema"`: exponential moving averages of the assigned embeddings replace the
//! codebook loss (VQ-VAE, van den Oord et al. 2017, appendix A.1).

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Zip};

/// Laplace smoothing of the EMA cluster sizes, so that an unused code never divides by zero.
const EMA_EPSILON: f32 = 1e-5;

/// Exponential moving averages of each code's cluster size N_k and embedding sum m_k.
#[derive(Debug, Clone)]
pub(super) struct Ema {
    decay: f32,
    size: Array1<f32>,
    sum: Array2<f32>,
    // Per-step scratch: this batch's counts and sums.
    batch_size: Array1<f32>,
    batch_sum: Array2<f32>,
}

impl Ema {
    /// Averages that start at the initial `codes`, each standing for one point.
    pub(super) fn new(codes: ArrayView2<f32>, decay: f32) -> Ema {
        let (s, m) = codes.dim();
        Ema {
            decay,
            size: Array1::ones(s),
            sum: codes.to_owned(),
            batch_size: Array1::zeros(s),
            batch_sum: Array2::zeros((s, m)),
        }
    }

    /// N_k ← γN_k + (1−γ)n_k, m_k ← γm_k + (1−γ)Σ_{i→k} z_i, e_k = m_k / Ñ_k with Laplace
    /// smoothed Ñ_k = (N_k + ε)/(N + Sε)·N.
    pub(super) fn update(
        &mut self,
        mut codes: ArrayViewMut2<f32>,
        z: ArrayView2<f32>,
        assign: &[usize],
    ) {
        self.batch_size.fill(0.0);
        self.batch_sum.fill(0.0);
        for (zi, &k) in z.outer_iter().zip(assign) {
            self.batch_size[k] += 1.0;
            let mut row = self.batch_sum.row_mut(k);
            row += &zi;
        }
        let g = self.decay;
        Zip::from(&mut self.size)
            .and(&self.batch_size)
            .for_each(|n, &b| *n = g * *n + (1.0 - g) * b);
        Zip::from(&mut self.sum)
            .and(&self.batch_sum)
            .for_each(|s, &b| *s = g * *s + (1.0 - g) * b);
        let total: f32 = self.size.sum();
        let s = self.size.len() as f32;
        for ((mut code, sum), &n) in codes
            .outer_iter_mut()
            .zip(self.sum.outer_iter())
            .zip(&self.size)
        {
            let smoothed = (n + EMA_EPSILON) / (total + s * EMA_EPSILON) * total;
            Zip::from(&mut code)
                .and(sum)
                .for_each(|e, &m| *e = m / smoothed);
        }
    }

    /// Restarts the averages of code `k` at `code`, standing for one point as at the start.
    pub(super) fn reset(&mut self, k: usize, code: ArrayView1<f32>) {
        self.size[k] = 1.0;
        self.sum.row_mut(k).assign(&code);
    }
}

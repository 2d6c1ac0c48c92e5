//! The vector quantizer: a codebook, nearest-code assignment, its losses and its EMA update.
//!
//! Forward: q(z) = e_k with k = argmin_j ‖z − e_j‖. The decoder sees q(z); the encoder receives
//! the decoder's gradient unchanged through the straight-through estimator z + sg(q − z).
//! Loss = recon + ‖sg(z) − q‖² (codebook loss, moves codes) + β‖z − sg(q)‖² (commitment, moves
//! the encoder), each a mean over batch × dims. With `update = "ema"` the codebook loss is
//! replaced by exponential moving averages of the assigned embeddings (VQ-VAE, appendix A.1).

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis, Zip};
use ndarray_rand::rand_distr::{Normal, Uniform};
use ndarray_rand::RandomExt;
use rand_chacha::ChaCha8Rng;

use crate::sim::config::{Init, QuantizerConfig, Update};
use crate::sim::kmeans::kmeans;
use crate::sim::nearest::{self, nearest_with};
/// Laplace smoothing of the EMA cluster sizes, so that an unused code never divides by zero.
const EMA_EPSILON: f32 = 1e-5;

#[derive(Debug, thiserror::Error)]
#[error("k-means codebook init failed: {0}")]
pub struct InitError(String);

/// The initial codebook, (S, m). `z` holds the current encoder outputs of the whole data set
/// (only `kmeans` looks at them).
pub fn init_codebook(
    cfg: &QuantizerConfig,
    z: ArrayView2<f32>,
    rng: &mut ChaCha8Rng,
) -> Result<Array2<f32>, InitError> {
    let (s, m) = (cfg.codebook_size, z.ncols());
    Ok(match cfg.init {
        Init::Uniform => {
            let a = 1.0 / s as f32;
            Array2::random_using((s, m), Uniform::new_inclusive(-a, a), rng)
        }
        Init::Normal => {
            let normal =
                Normal::new(0.0, cfg.init_std as f32).map_err(|e| InitError(e.to_string()))?;
            Array2::random_using((s, m), normal, rng)
        }
        Init::Kmeans => kmeans(z, s, rng).map_err(|e| InitError(e.to_string()))?,
    })
}

/// Exponential moving averages of each code's cluster size N_k and embedding sum m_k.
#[derive(Debug, Clone)]
struct Ema {
    decay: f32,
    size: Array1<f32>,
    sum: Array2<f32>,
    // Per-step scratch: this batch's counts and sums.
    batch_size: Array1<f32>,
    batch_sum: Array2<f32>,
}

/// Codebook (S, m) with its gradient and, for `update = "ema"`, its running statistics.
#[derive(Debug, Clone)]
pub struct Quantizer {
    pub codes: Array2<f32>,
    pub grad: Array2<f32>,
    pub beta: f32,
    ema: Option<Ema>,
}

impl Quantizer {
    pub fn new(cfg: &QuantizerConfig, codes: Array2<f32>) -> Quantizer {
        let (s, m) = codes.dim();
        let ema = (cfg.update == Update::Ema).then(|| Ema {
            decay: cfg.ema_decay as f32,
            // Start the averages at the initial codes, each standing for one point.
            size: Array1::ones(s),
            sum: codes.clone(),
            batch_size: Array1::zeros(s),
            batch_sum: Array2::zeros((s, m)),
        });
        Quantizer {
            grad: Array2::zeros((s, m)),
            codes,
            beta: cfg.beta as f32,
            ema,
        }
    }

    /// Whether the codebook learns by gradient (and so needs an optimizer step).
    pub fn learns_by_gradient(&self) -> bool {
        self.ema.is_none()
    }

    /// Nearest code of each row of `z` into `assign`, and the codes themselves into `q`.
    /// `scratch` holds the search's buffers between calls.
    pub fn quantize(
        &self,
        z: ArrayView2<f32>,
        assign: &mut [usize],
        mut q: ArrayViewMut2<f32>,
        scratch: &mut nearest::Scratch,
    ) {
        nearest_with(z, self.codes.view(), assign, scratch);
        for (mut row, &k) in q.axis_iter_mut(Axis(0)).zip(assign.iter()) {
            row.assign(&self.codes.row(k));
        }
    }

    /// The two VQ terms of the loss for a batch: (codebook loss ‖sg(z) − q‖², commitment
    /// β‖z − sg(q)‖²), means over batch × dims. Both share the value mean‖z − q‖²; they differ
    /// only in where their gradient goes.
    pub fn losses(&self, z: ArrayView2<f32>, q: ArrayView2<f32>) -> (f32, f32) {
        let sq: f32 = Zip::from(z)
            .and(q)
            .fold(0.0, |acc, &a, &b| acc + (a - b) * (a - b));
        let mean = sq / z.len() as f32;
        let codebook = if self.learns_by_gradient() { mean } else { 0.0 };
        (codebook, self.beta * mean)
    }

    /// Backward of the VQ bottleneck. `g_q` holds ∂recon/∂q from the decoder; the
    /// straight-through estimator passes it to z as it is, and the commitment term adds
    /// 2β(z − q)/(n·m). The codebook loss adds 2(q − z)/(n·m) to the gradient of each selected
    /// code, into `self.grad` (overwritten: one batch's gradient).
    pub fn backward(
        &mut self,
        z: ArrayView2<f32>,
        q: ArrayView2<f32>,
        assign: &[usize],
        g_q: ArrayView2<f32>,
        mut g_z: ArrayViewMut2<f32>,
    ) {
        let scale = 2.0 / z.len() as f32;
        let commit = self.beta * scale;
        Zip::from(&mut g_z)
            .and(g_q)
            .and(z)
            .and(q)
            .for_each(|gz, &gq, &a, &b| {
                *gz = gq + commit * (a - b);
            });
        if self.learns_by_gradient() {
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
    }

    /// EMA codebook update from a batch (no-op for `update = "loss"`):
    /// N_k ← γN_k + (1−γ)n_k, m_k ← γm_k + (1−γ)Σ_{i→k} z_i, e_k = m_k / Ñ_k with Laplace
    /// smoothed Ñ_k = (N_k + ε)/(N + Sε)·N.
    pub fn ema_update(&mut self, z: ArrayView2<f32>, assign: &[usize]) {
        let Some(ema) = self.ema.as_mut() else { return };
        ema.batch_size.fill(0.0);
        ema.batch_sum.fill(0.0);
        for (zi, &k) in z.outer_iter().zip(assign) {
            ema.batch_size[k] += 1.0;
            let mut row = ema.batch_sum.row_mut(k);
            row += &zi;
        }
        let g = ema.decay;
        Zip::from(&mut ema.size)
            .and(&ema.batch_size)
            .for_each(|n, &b| *n = g * *n + (1.0 - g) * b);
        Zip::from(&mut ema.sum)
            .and(&ema.batch_sum)
            .for_each(|s, &b| *s = g * *s + (1.0 - g) * b);
        let total: f32 = ema.size.sum();
        let s = ema.size.len() as f32;
        for ((mut code, sum), &n) in self
            .codes
            .outer_iter_mut()
            .zip(ema.sum.outer_iter())
            .zip(&ema.size)
        {
            let smoothed = (n + EMA_EPSILON) / (total + s * EMA_EPSILON) * total;
            Zip::from(&mut code)
                .and(sum)
                .for_each(|e, &m| *e = m / smoothed);
        }
    }

    pub fn all_finite(&self) -> bool {
        self.codes.iter().all(|v| v.is_finite())
    }
}

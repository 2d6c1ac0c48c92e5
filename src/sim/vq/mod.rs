//! The vector quantizer: it owns its codebook, the codebook's optimizer or EMA state, the
//! assignment and the gradient estimator. Training calls it through a few hooks — `quantize`,
//! `loss`, `backward`, `after_step` — and never reaches into its fields.
//!
//! Forward: q(z) = e_k with k = argmin_j ‖z − e_j‖. The decoder sees q(z); the encoder receives
//! the decoder's gradient unchanged through the straight-through estimator z + sg(q − z).
//! Loss = recon + ‖sg(z) − q‖² (codebook loss, moves codes) + β‖z − sg(q)‖² (commitment, moves
//! the encoder), each a mean over batch × dims. With `update = "ema"` the codebook loss is
//! replaced by exponential moving averages of the assigned embeddings (VQ-VAE, appendix A.1).
//!
//! Each choice is an enum matched in one place; a variant lives in its own file.

mod ema;
mod gradient;
mod init;

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis, Zip};

use crate::sim::config::{RunConfig, Update};
use crate::sim::nearest::{self, nearest_with};
use crate::sim::rng::{stream, Stream};

use init::init_codebook;
pub use init::InitError;

/// How the codebook learns (`quantizer.update`).
#[derive(Debug, Clone)]
enum Learner {
    Gradient(gradient::ByGradient),
    Ema(ema::Ema),
}

/// A codebook (S, m) with the state that trains it.
#[derive(Debug, Clone)]
pub struct Quantizer {
    codes: Array2<f32>,
    beta: f32,
    learner: Learner,
}

impl Quantizer {
    /// The quantizer a run starts with: codebook initialised from `z`, the current encoder
    /// outputs of the whole data set, with the run's codebook stream of `seed`.
    pub fn init(cfg: &RunConfig, z: ArrayView2<f32>, seed: u64) -> Result<Quantizer, InitError> {
        let codes = init_codebook(&cfg.quantizer, z, &mut stream(seed, Stream::Codebook))?;
        Ok(Quantizer::new(cfg, codes))
    }

    /// A quantizer starting from the given codebook, (S, m).
    pub fn new(cfg: &RunConfig, codes: Array2<f32>) -> Quantizer {
        let q = &cfg.quantizer;
        let learner = match q.update {
            Update::Loss => {
                Learner::Gradient(gradient::ByGradient::new(codes.dim(), cfg.train.lr as f32))
            }
            Update::Ema => Learner::Ema(ema::Ema::new(codes.view(), q.ema_decay as f32)),
        };
        Quantizer {
            codes,
            beta: q.beta as f32,
            learner,
        }
    }

    /// The codebook the assignment uses, (S, m).
    pub fn codebook(&self) -> ArrayView2<'_, f32> {
        self.codes.view()
    }

    /// ∂L/∂codes of the last `backward`; None when the codebook does not learn by gradient.
    pub fn codebook_grad(&self) -> Option<ArrayView2<'_, f32>> {
        match &self.learner {
            Learner::Gradient(g) => Some(g.grad.view()),
            Learner::Ema(_) => None,
        }
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

    /// The VQ terms of the loss for a batch: codebook loss ‖sg(z) − q‖² (when the codebook
    /// learns by gradient) plus commitment β‖z − sg(q)‖², means over batch × dims. Both share
    /// the value mean‖z − q‖²; they differ only in where their gradient goes.
    pub fn loss(&self, z: ArrayView2<f32>, q: ArrayView2<f32>) -> f32 {
        let sq: f32 = Zip::from(z)
            .and(q)
            .fold(0.0, |acc, &a, &b| acc + (a - b) * (a - b));
        let mean = sq / z.len() as f32;
        let codebook = match self.learner {
            Learner::Gradient(_) => mean,
            Learner::Ema(_) => 0.0,
        };
        codebook + self.beta * mean
    }

    /// Backward of the VQ bottleneck. `g_q` holds ∂recon/∂q from the decoder; the
    /// straight-through estimator passes it to z as it is, and the commitment term adds
    /// 2β(z − q)/(n·m). The codebook loss's gradient goes to the codebook's own state.
    pub fn backward(
        &mut self,
        z: ArrayView2<f32>,
        q: ArrayView2<f32>,
        assign: &[usize],
        g_q: ArrayView2<f32>,
        mut g_z: ArrayViewMut2<f32>,
    ) {
        let commit = self.beta * (2.0 / z.len() as f32);
        Zip::from(&mut g_z)
            .and(g_q)
            .and(z)
            .and(q)
            .for_each(|gz, &gq, &a, &b| {
                *gz = gq + commit * (a - b);
            });
        match &mut self.learner {
            Learner::Gradient(g) => g.backward(z, q, assign),
            Learner::Ema(_) => {}
        }
    }

    /// The codebook's update after a training step on the batch `z` with assignments
    /// `assign`: an Adam step along the last gradient, or the EMA update.
    pub fn after_step(&mut self, z: ArrayView2<f32>, assign: &[usize]) {
        match &mut self.learner {
            Learner::Gradient(g) => g.step(self.codes.view_mut()),
            Learner::Ema(ema) => ema.update(self.codes.view_mut(), z, assign),
        }
    }

    pub fn all_finite(&self) -> bool {
        self.codes.iter().all(|v| v.is_finite())
    }
}

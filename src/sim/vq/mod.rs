//! The vector quantizer: it owns its codebook, the codebook's optimizer or EMA state, the
//! assignment, the gradient estimator and its dead-code restarts. Training calls it through a
//! few hooks — `quantize`, `loss`, `backward`, `after_step`, `after_epoch` — and never reaches
//! into its fields.
//!
//! Forward: q(z) = e_k with k = argmin_j ‖z − e_j‖. The decoder sees q(z); the encoder receives
//! the decoder's gradient unchanged through the straight-through estimator z + sg(q − z).
//! Loss = recon + ‖sg(z) − q‖² (codebook loss, moves codes) + β‖z − sg(q)‖² (commitment, moves
//! the encoder), each a mean over batch × dims. With `update = "ema"` the codebook loss is
//! replaced by exponential moving averages of the assigned embeddings (VQ-VAE, appendix A.1).
//!
//! Each choice is an enum matched in one place; a variant lives in its own file.

mod ema;
mod entropy;
mod estimator;
pub mod fsq;
mod gradient;
mod init;
mod orthogonal;
mod restart;
mod sync;

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis, Zip};
use rand_chacha::ChaCha8Rng;

use crate::sim::config::{QuantizerKind, RunConfig, Update};
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

/// The largest batch a run feeds the quantizer: a batch never holds more than the data set.
fn max_batch(cfg: &RunConfig) -> usize {
    cfg.train
        .batch_size
        .min(cfg.data.modes * cfg.data.points_per_mode)
}

impl Learner {
    /// Restarts the state of code `k`, which has just been moved to `codes[k]`.
    fn reset(&mut self, k: usize, codes: ArrayView2<f32>) {
        match self {
            Learner::Gradient(_) => {}
            Learner::Ema(ema) => ema.reset(k, codes.row(k)),
        }
    }
}

/// What the bottleneck is (`quantizer.kind`).
#[derive(Debug, Clone)]
enum Kind {
    /// A learned codebook, nearest-code assignment: everything below.
    Vq,
    /// A fixed grid reached by rounding; the codebook, its state and its losses stay idle.
    Fsq(fsq::Fsq),
}

/// A codebook (S, m) with the state that trains it.
#[derive(Debug, Clone)]
pub struct Quantizer {
    codes: Array2<f32>,
    kind: Kind,
    beta: f32,
    learner: Learner,
    estimator: estimator::Estimator,
    /// ν of the synchronised update (0 = off).
    sync_nu: f32,
    /// The entropy regulariser, when its weight is not 0.
    entropy: Option<entropy::Entropy>,
    /// The orthogonality regulariser, when its weight is not 0.
    orthogonal: Option<orthogonal::Orthogonal>,
    restart: restart::Restart,
    /// The run's restart stream.
    rng: ChaCha8Rng,
    /// Scratch: codes restarted by the last step, (≤ S).
    restarted: Vec<usize>,
    /// Codes restarted since the last `after_epoch`.
    restarts: usize,
}

impl Quantizer {
    /// The quantizer a run starts with: codebook initialised from `z`, the current encoder
    /// outputs of the whole data set, with the run's codebook stream of `seed`.
    /// FSQ's grid needs neither.
    pub fn init(cfg: &RunConfig, z: ArrayView2<f32>, seed: u64) -> Result<Quantizer, InitError> {
        let codes = match kind(cfg) {
            Kind::Fsq(f) => f.grid(z.ncols()),
            Kind::Vq => init_codebook(&cfg.quantizer, z, &mut stream(seed, Stream::Codebook))?,
        };
        Ok(Quantizer::new(cfg, codes, stream(seed, Stream::Restart)))
    }

    /// A quantizer starting from the given codebook, (S, m) (FSQ: its grid); `rng` drives its
    /// restarts.
    pub fn new(cfg: &RunConfig, codes: Array2<f32>, rng: ChaCha8Rng) -> Quantizer {
        let q = &cfg.quantizer;
        let learner = match q.update {
            Update::Loss => {
                Learner::Gradient(gradient::ByGradient::new(codes.dim(), cfg.train.lr as f32))
            }
            Update::Ema => Learner::Ema(ema::Ema::new(codes.view(), q.ema_decay as f32)),
        };
        let (s, m) = codes.dim();
        Quantizer {
            codes,
            kind: kind(cfg),
            beta: q.beta as f32,
            learner,
            estimator: estimator::Estimator::new(q.estimator, (s, m)),
            sync_nu: q.sync_nu as f32,
            entropy: (q.entropy_weight > 0.0).then(|| {
                entropy::Entropy::new(q.entropy_weight as f32, q.entropy_temperature as f32, s)
            }),
            orthogonal: (q.orthogonal_weight > 0.0)
                .then(|| orthogonal::Orthogonal::new(q.orthogonal_weight as f32, s, m)),
            restart: restart::Restart::new(q, s, m, max_batch(cfg)),
            rng,
            restarted: Vec::with_capacity(s),
            restarts: 0,
        }
    }

    /// The codebook the assignment uses, (S, m).
    pub fn codebook(&self) -> ArrayView2<'_, f32> {
        self.codes.view()
    }

    /// ∂L/∂codes of the last `backward`; None when the codebook does not learn by gradient.
    pub fn codebook_grad(&self) -> Option<ArrayView2<'_, f32>> {
        match (&self.kind, &self.learner) {
            (Kind::Vq, Learner::Gradient(g)) => Some(g.grad.view()),
            _ => None,
        }
    }

    /// The encoder outputs `z` as the metrics and snapshots see them: in the space where the
    /// codes live, so that each one's nearest code is its code (FSQ: bounded, in grid units).
    pub fn embedded(&self, z: Array2<f32>) -> Array2<f32> {
        match &self.kind {
            Kind::Vq => z,
            Kind::Fsq(f) => f.embed(z),
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
        if let Kind::Fsq(f) = &self.kind {
            return f.quantize(z, assign, q);
        }
        nearest_with(z, self.codes.view(), assign, scratch);
        for (mut row, &k) in q.axis_iter_mut(Axis(0)).zip(assign.iter()) {
            row.assign(&self.codes.row(k));
        }
    }

    /// The VQ terms of the loss for a batch: codebook loss ‖sg(z) − q‖² (when the codebook
    /// learns by gradient) plus commitment β‖z − sg(q)‖², means over batch × dims (both share
    /// the value mean‖z − q‖²; they differ only in where their gradient goes), plus the
    /// regularisers that are on. Keeps what `backward` needs of the regularisers.
    pub fn loss(&mut self, z: ArrayView2<f32>, q: ArrayView2<f32>) -> f32 {
        if let Kind::Fsq(_) = self.kind {
            return 0.0;
        }
        let sq: f32 = Zip::from(z)
            .and(q)
            .fold(0.0, |acc, &a, &b| acc + (a - b) * (a - b));
        let mean = sq / z.len() as f32;
        let codebook = match self.learner {
            Learner::Gradient(_) => mean,
            Learner::Ema(_) => 0.0,
        };
        let codes = self.codes.view();
        let entropy = self.entropy.as_mut().map_or(0.0, |e| e.forward(z, codes));
        let orthogonal = self.orthogonal.as_ref().map_or(0.0, |o| o.loss(codes));
        codebook + self.beta * mean + entropy + orthogonal
    }

    /// Backward of the VQ bottleneck, after `loss` on the same batch. `g_q` holds ∂recon/∂q
    /// from the decoder; the estimator carries it to z (straight-through: unchanged; IBQ
    /// also to every code), the synchronised update passes ν of it to the selected codes, the
    /// commitment term adds 2β(z − q)/(n·m), and the regularisers add theirs. The codebook
    /// loss's gradient goes to the codebook's own state.
    pub fn backward(
        &mut self,
        z: ArrayView2<f32>,
        q: ArrayView2<f32>,
        assign: &[usize],
        g_q: ArrayView2<f32>,
        mut g_z: ArrayViewMut2<f32>,
    ) {
        if let Kind::Fsq(f) = &self.kind {
            return f.backward(z, g_q, g_z);
        }
        let mut grad = match &mut self.learner {
            Learner::Gradient(g) => {
                g.backward(z, q, assign);
                Some(g.grad.view_mut())
            }
            Learner::Ema(_) => None,
        };
        let codebook = (self.codes.view(), grad.as_mut().map(|g| g.view_mut()));
        self.estimator
            .backward(z, q, assign, g_q, g_z.view_mut(), codebook);
        if let Some(grad) = grad.as_mut().filter(|_| self.sync_nu > 0.0) {
            sync::backward(self.sync_nu, assign, g_q, grad.view_mut());
        }
        let commit = self.beta * (2.0 / z.len() as f32);
        Zip::from(&mut g_z).and(z).and(q).for_each(|gz, &a, &b| {
            *gz += commit * (a - b);
        });
        if let Some(e) = &self.entropy {
            let grad = grad.as_mut().map(|g| g.view_mut());
            e.backward(z, self.codes.view(), g_z.view_mut(), grad);
        }
        if let (Some(o), Some(grad)) = (&mut self.orthogonal, grad) {
            o.backward(self.codes.view(), grad);
        }
    }

    /// The codebook's update after a training step on the batch `z` with assignments
    /// `assign`: an Adam step along the last gradient, or the EMA update; then dead-code
    /// restarts.
    pub fn after_step(&mut self, z: ArrayView2<f32>, assign: &[usize]) {
        if let Kind::Fsq(_) = self.kind {
            return;
        }
        match &mut self.learner {
            Learner::Gradient(g) => g.step(self.codes.view_mut()),
            Learner::Ema(ema) => ema.update(self.codes.view_mut(), z, assign),
        }
        self.restart.after_step(
            self.codes.view_mut(),
            z,
            assign,
            &mut self.rng,
            &mut self.restarted,
        );
        for &k in &self.restarted {
            self.learner.reset(k, self.codes.view());
        }
        self.restarts += self.restarted.len();
    }

    /// The end of quantized epoch `epoch` (1-based): periodic re-initialisation. Returns the
    /// codes restarted during the epoch (a re-initialisation counts every code).
    pub fn after_epoch(&mut self, epoch: usize) -> usize {
        if self
            .restart
            .after_epoch(epoch, self.codes.view_mut(), &mut self.rng)
        {
            for k in 0..self.codes.nrows() {
                self.learner.reset(k, self.codes.view());
            }
            self.restarts += self.codes.nrows();
        }
        std::mem::take(&mut self.restarts)
    }

    pub fn all_finite(&self) -> bool {
        self.codes.iter().all(|v| v.is_finite())
    }
}

/// The bottleneck `cfg` asks for; validation made FSQ's levels exist.
fn kind(cfg: &RunConfig) -> Kind {
    match cfg.quantizer.kind {
        QuantizerKind::Vq => Kind::Vq,
        QuantizerKind::Fsq => {
            let levels = fsq::levels(cfg.quantizer.codebook_size, cfg.model.latent_dim)
                .expect("validated: codebook_size = L^latent_dim with L ≥ 3");
            Kind::Fsq(fsq::Fsq::new(levels))
        }
    }
}

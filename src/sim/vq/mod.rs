//! The vector quantizer: it owns its codebook, the codebook's optimizer or EMA state, the
//! assignment, the gradient estimator and its dead-code restarts. Training calls it through a
//! few hooks — `quantize`, `loss`, `backward`, `after_step`, `after_epoch` — and never reaches
//! into its fields.
//!
//! Forward: q(z) = e_k with k = argmin_j ‖z − e_j‖. The decoder sees q(z); the encoder receives
//! the decoder's gradient unchanged through the straight-through estimator z + sg(q − z).
//! Loss = recon + ‖sg(z) − q‖² (codebook loss, moves codes) + β‖z − sg(q)‖² (commitment, moves
//! the encoder), each a mean over batch × dims (IBQ weighs them as its reference does and adds
//! its double quantization term: `estimator::Weights`). With `update = "ema"` the codebook loss
//! is replaced by exponential moving averages of the assigned embeddings (VQ-VAE, appendix A.1).
//! With `residual_levels` = L > 1 the quantizer is residual (`residual.rs`): this quantizer is
//! its first level and owns the others; an assignment then holds L codes per row, level-major
//! (level l's of the n rows at l·n..(l+1)·n), and the decoder sees the sum of the L codes.
//!
//! The remedies come in families — restart rules, estimators, parameterizations, kinds,
//! regularisers — each remedy one file declaring itself (`crate::sim::config::Remedy`), each
//! family one `family!` list; `FAMILIES` is the registry the key table reads.

mod distance;
mod ema;
mod estimator;
mod gradient;
mod init;
mod kind;
mod lookup;
mod param;
mod project;
mod regulariser;
mod residual;
mod restart;
mod rows;
mod sync;
#[cfg(test)]
mod tests;

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Axis, Zip};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::sim::checked::ValidRun;
use crate::sim::config::{Family, QuantizerConfig, Update};
use crate::sim::kdtree::KdTree;
use crate::sim::nearest::{self, nearest_with};
use crate::sim::rng::{stream, Stream};

use estimator::Estimator;
use init::init_codebook;

/// Rows per task of `Quantizer::quantize_all`.
const QUANTIZE_TASK: usize = 1024;
pub use init::InitError;
use kind::Kind;
pub use kind::{levels, MAX_LEVELS};
use param::Param;
use regulariser::Regulariser;
use restart::Restart;

/// The families of remedies; each lists its remedies in registry order.
pub const RESTART: &Family = &Restart::FAMILY;
pub const ESTIMATOR: &Family = &Estimator::FAMILY;
pub const REGULARISER: &Family = &Regulariser::FAMILY;
pub const PARAMETERIZATION: &Family = &Param::FAMILY;
pub const KIND: &Family = &Kind::FAMILY;
/// The registry: every family, in the key table's order of their keys.
pub const FAMILIES: [&Family; 5] = [RESTART, ESTIMATOR, REGULARISER, PARAMETERIZATION, KIND];

/// What a remedy's constructor sees: the configuration and the codebook it will serve.
pub(crate) struct Ctx<'a> {
    pub q: &'a QuantizerConfig,
    /// Codes S and their dimension in the lookup space.
    pub s: usize,
    pub m: usize,
    /// The largest batch a step sees: scratch sized for it keeps the step allocation-free.
    pub batch: usize,
    /// Quantized epochs of the run.
    pub epochs: usize,
    /// The codebook optimizer's learning rate (train.lr × lr_scale).
    pub lr: f32,
    /// The run's seed, for a remedy that draws its own initial state.
    pub seed: u64,
    /// The initial codebook, (S, m).
    pub codes: ArrayView2<'a, f32>,
}

impl<'a> Ctx<'a> {
    /// The context of a run of `cfg` with seed `seed`, for the codebook `codes`.
    fn new(cfg: &'a ValidRun, codes: ArrayView2<'a, f32>, seed: u64) -> Ctx<'a> {
        let q = &cfg.quantizer;
        let (s, m) = codes.dim();
        Ctx {
            q,
            s,
            m,
            batch: max_batch(cfg),
            epochs: cfg.train.epochs,
            // The codebook's own optimizer (Łańcucki et al. 2020 raise its rate).
            lr: (cfg.train.lr * q.lr_scale) as f32,
            seed,
            codes,
        }
    }
}

/// How the codebook learns (`quantizer.update`).
#[derive(Debug, Clone)]
enum Learner {
    Gradient(gradient::ByGradient),
    Ema(ema::Ema),
}

/// The largest batch a run feeds the quantizer: a batch never holds more than the data set.
fn max_batch(cfg: &ValidRun) -> usize {
    cfg.train.batch_size.min(cfg.points())
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

/// Buffers a search reuses between calls: the nearest-code search's, the batch's
/// lookup-space inputs (used only when the lookup space is not the latent space), and a
/// residual quantizer's residual and level codes.
#[derive(Debug, Clone, Default)]
pub struct Scratch {
    search: nearest::Scratch,
    inputs: Vec<f32>,
    residual: Vec<f32>,
    code: Vec<f32>,
}

/// A codebook (S, c) in the lookup space, with the state that trains it. Without `code_dim`
/// and cosine distance (the defaults) the lookup space is the latent space (c = m).
#[derive(Debug, Clone)]
pub struct Quantizer {
    /// The codes E, (S, c); with `parameterization = "direct"` the learned parameters.
    codes: Array2<f32>,
    param: param::Param,
    lookup: lookup::Lookup,
    kind: Kind,
    /// Whether `kind` quantizes by itself (a fixed grid): the codebook, its state and its
    /// losses stay idle.
    fixed: bool,
    beta: f32,
    learner: Learner,
    estimator: Estimator,
    /// ν of the synchronised update (0 = off).
    sync_nu: f32,
    /// The regularisers that are on.
    regularisers: Vec<Regulariser>,
    restart: Restart,
    /// The run's restart stream.
    rng: ChaCha8Rng,
    /// Scratch: codes restarted by the last step, (≤ S).
    restarted: Vec<usize>,
    /// Codes restarted since the last `after_epoch`.
    restarts: usize,
    /// The codebook as the decoder first received it, (S, m): where `code_travel` starts.
    start: Array2<f32>,
    /// Levels 2..L of a residual quantizer; None with one level.
    residual: Option<residual::Residual>,
}

impl Quantizer {
    /// The quantizer a run starts with: codebook initialised from `z`, the current encoder
    /// outputs of the whole data set (seen through the lookup, whose projections come from
    /// the run's projection stream), with the run's codebook stream of `seed`. FSQ's grid
    /// needs neither.
    pub fn init(cfg: &ValidRun, z: ArrayView2<f32>, seed: u64) -> Result<Quantizer, InitError> {
        let lookup = Quantizer::lookup(cfg, &mut stream(seed, Stream::Projection));
        let codes = if let Some(grid) = kind(cfg).grid(z.ncols()) {
            grid
        } else if param::draws_its_codes(&cfg.quantizer.parameterization) {
            Array2::zeros((cfg.quantizer.codebook_size, lookup.c))
        } else if lookup.is_identity() {
            init_codebook(&cfg.quantizer, z, &mut stream(seed, Stream::Codebook))?
        } else {
            let u = lookup.inputs(z);
            init_codebook(
                &cfg.quantizer,
                u.view(),
                &mut stream(seed, Stream::Codebook),
            )?
        };
        let mut vq =
            Quantizer::with_lookup(cfg, lookup, codes, stream(seed, Stream::Restart), seed);
        if levels(&cfg.quantizer) > 1 {
            vq.residual = Some(residual::Residual::init(cfg, &vq, z, seed)?);
        }
        Ok(vq)
    }

    /// A quantizer starting from the given codebook, (S, c) in the lookup space (FSQ: its
    /// grid; SimVQ: its own, drawn from the codebook stream of seed 0); `rng` drives its
    /// restarts. Projections, if any, come from the projection stream of seed 0.
    pub fn new(cfg: &ValidRun, codes: Array2<f32>, rng: ChaCha8Rng) -> Quantizer {
        Quantizer::from_levels(cfg, vec![codes], rng)
    }

    /// `new` for a residual quantizer: one codebook per level, (S, m) each, in level order.
    pub fn from_levels(
        cfg: &ValidRun,
        mut codebooks: Vec<Array2<f32>>,
        rng: ChaCha8Rng,
    ) -> Quantizer {
        assert_eq!(
            codebooks.len(),
            levels(&cfg.quantizer),
            "one codebook per residual level"
        );
        let rest = codebooks.split_off(1);
        let first = codebooks.pop().expect("at least one level");
        let lookup = Quantizer::lookup(cfg, &mut stream(0, Stream::Projection));
        let mut vq = Quantizer::with_lookup(cfg, lookup, first, rng, 0);
        if !rest.is_empty() {
            let rest = rest
                .into_iter()
                .map(|c| Quantizer::new_level(cfg, c, 0))
                .collect();
            vq.residual = Some(residual::Residual::new(cfg, rest));
        }
        vq
    }

    /// Level 2 or later of a residual quantizer of the run with seed `seed`, starting from
    /// `codes`. Validation left it the identity lookup and no restarts, so neither stream is
    /// drawn from.
    fn new_level(cfg: &ValidRun, codes: Array2<f32>, seed: u64) -> Quantizer {
        let lookup = Quantizer::lookup(cfg, &mut stream(seed, Stream::Projection));
        Quantizer::with_lookup(cfg, lookup, codes, stream(seed, Stream::Restart), seed)
    }

    fn lookup(cfg: &ValidRun, rng: &mut ChaCha8Rng) -> lookup::Lookup {
        let q = &cfg.quantizer;
        lookup::Lookup::new(
            q,
            q.codebook_size,
            cfg.model.latent_dim,
            cfg.train.lr as f32,
            rng,
        )
    }

    /// `rng` drives the restarts; `seed` is the run's, for a parameterization that draws its
    /// own codes.
    fn with_lookup(
        cfg: &ValidRun,
        mut lookup: lookup::Lookup,
        mut codes: Array2<f32>,
        rng: ChaCha8Rng,
        seed: u64,
    ) -> Quantizer {
        let q = &cfg.quantizer;
        let s = codes.nrows();
        let chosen = cfg.chosen();
        let param = Param::BUILD[chosen.parameterization](&Ctx::new(cfg, codes.view(), seed));
        param.start(codes.view_mut());
        let ctx = Ctx::new(cfg, codes.view(), seed);
        let lr = ctx.lr;
        let learner = match q.update {
            Update::Loss => Learner::Gradient(gradient::ByGradient::new(codes.dim(), lr)),
            Update::Ema => Learner::Ema(ema::Ema::new(codes.view(), q.ema_decay as f32)),
        };
        lookup.refresh(codes.view());
        let start = lookup.decoded(codes.view()).to_owned();
        let kind = kind(cfg);
        let fixed = kind.fixed();
        let estimator = Estimator::BUILD[chosen.estimator](&ctx);
        let regularisers = Regulariser::chosen(&ctx);
        let restart = Restart::BUILD[chosen.restart](&ctx);
        Quantizer {
            param,
            lookup,
            codes,
            kind,
            fixed,
            beta: q.beta as f32,
            learner,
            estimator,
            sync_nu: q.sync_nu as f32,
            regularisers,
            restart,
            rng,
            restarted: Vec::with_capacity(s),
            restarts: 0,
            start,
            residual: None,
        }
    }

    /// The residual levels L (1: one codebook).
    pub fn levels(&self) -> usize {
        1 + self.residual.as_ref().map_or(0, |r| r.levels.len())
    }

    /// Level `l` (0-based) of a residual quantizer, as a one-level quantizer whose `codebook`
    /// and `codebook_grad` are that level's; level 0 is this quantizer.
    pub fn level(&self, l: usize) -> &Quantizer {
        match (l, &self.residual) {
            (0, _) => self,
            (_, Some(r)) => &r.levels[l - 1],
            (_, None) => panic!("a one-level quantizer has no level {l}"),
        }
    }

    /// Runs `f` on the residual levels and this quantizer as their first level, if there are
    /// levels: lent out of `self` (no allocation) for the length of the call.
    fn with_residual<T>(
        &mut self,
        f: impl FnOnce(&mut residual::Residual, &mut Quantizer) -> T,
    ) -> Option<T> {
        let mut residual = self.residual.take()?;
        let out = f(&mut residual, self);
        self.residual = Some(residual);
        Some(out)
    }

    /// Whether `quantize_all` gives each row of `embedded(z)` its nearest row of `codebook()`
    /// by `sq_dist` (first level): a learned codebook searched in the latent space itself,
    /// not through cosine or a projection. The metrics then take those distances from it.
    pub fn assigns_nearest_code(&self) -> bool {
        !self.kind.fixed() && self.lookup.is_identity()
    }

    /// The codebook as the decoder first received it, (S, m).
    pub fn start(&self) -> ArrayView2<'_, f32> {
        self.start.view()
    }

    /// The codebook as the decoder receives it, (S, m): what the metrics measure (a residual
    /// quantizer's first level).
    pub fn codebook(&self) -> ArrayView2<'_, f32> {
        self.lookup.decoded(self.codes.view())
    }

    /// ∂L/∂E of the last `backward` (lookup space, before any parameterization); None when
    /// the codebook does not learn by gradient.
    pub fn codebook_grad(&self) -> Option<ArrayView2<'_, f32>> {
        match &self.learner {
            Learner::Gradient(g) if !self.fixed => Some(g.grad.view()),
            _ => None,
        }
    }

    /// The encoder outputs `z` as the metrics and snapshots see them: in the space where the
    /// codes live, so that each one's nearest code is its code (FSQ: bounded, in grid units).
    pub fn embedded(&self, z: Array2<f32>) -> Array2<f32> {
        self.kind.embed(z)
    }

    /// Nearest code (in the lookup space) of each row of `z` into `assign` (L codes per row,
    /// level-major, for L residual levels), and what the decoder receives for it into `q`.
    /// `scratch` holds the search's buffers between calls.
    pub fn quantize(
        &self,
        z: ArrayView2<f32>,
        assign: &mut [usize],
        mut q: ArrayViewMut2<f32>,
        scratch: &mut Scratch,
    ) {
        let (first, rest) = assign.split_at_mut(z.nrows());
        self.quantize_level(z, first, q.view_mut(), scratch, None);
        if let Some(r) = &self.residual {
            r.quantize(z, rest, q, scratch);
        }
    }

    /// `quantize` of this level alone, searching `tree` (over the lookup table) when there is
    /// one.
    fn quantize_level(
        &self,
        z: ArrayView2<f32>,
        assign: &mut [usize],
        mut q: ArrayViewMut2<f32>,
        scratch: &mut Scratch,
        tree: Option<&KdTree>,
    ) {
        if self.kind.quantize(z, assign, q.view_mut()) {
            return;
        }
        let table = self.lookup.table(self.codes.view());
        let search = |u: ArrayView2<f32>, assign: &mut [usize], s: &mut nearest::Scratch| match tree
        {
            Some(tree) => {
                for (row, a) in u.rows().into_iter().zip(assign) {
                    *a = tree.nearest(row.as_slice().expect("standard layout"));
                }
            }
            None => nearest_with(u, table, assign, s),
        };
        if self.lookup.is_identity() {
            search(z.as_standard_layout().view(), assign, &mut scratch.search);
        } else {
            let c = self.lookup.c;
            scratch.inputs.resize(z.nrows() * c, 0.0);
            let mut u = ArrayViewMut2::from_shape((z.nrows(), c), &mut scratch.inputs[..])
                .expect("sized above");
            self.lookup.input(z, u.view_mut());
            search(u.view(), assign, &mut scratch.search);
        }
        gather(self.codebook(), assign, q);
    }

    /// In training, after `quantize` on the same batch: an estimator that samples its codes
    /// (Gumbel) puts them in place of the nearest ones, in `assign` and `q`.
    pub fn sample(&mut self, z: ArrayView2<f32>, assign: &mut [usize], q: ArrayViewMut2<f32>) {
        let table = self.lookup.table(self.codes.view());
        if self.estimator.sample(z, table, assign) {
            gather(self.codebook(), assign, q);
        }
    }

    /// `quantize` of many rows (a whole data set), in tasks of `QUANTIZE_TASK` rows on rayon's
    /// threads; each row's code is its own, so any split gives the same.
    pub fn quantize_all(
        &self,
        z: ArrayView2<f32>,
        assign: &mut [usize],
        mut q: ArrayViewMut2<f32>,
    ) {
        let (first, rest) = assign.split_at_mut(z.nrows());
        self.quantize_all_level(z, first, q.view_mut());
        if let Some(r) = &self.residual {
            r.quantize_all(z, rest, q);
        }
    }

    /// `quantize_all` of this level alone.
    fn quantize_all_level(
        &self,
        z: ArrayView2<f32>,
        assign: &mut [usize],
        mut q: ArrayViewMut2<f32>,
    ) {
        let width = q.ncols();
        assert!(width > 0, "the decoder takes at least one input");
        // A whole data set against many codes in few dimensions: one exact tree serves every
        // task (None, and each task scans, otherwise).
        let tree = if self.kind.fixed() {
            None
        } else {
            KdTree::new(self.lookup.table(self.codes.view()))
        };
        let qs = q.as_slice_mut().expect("standard layout");
        assign
            .par_chunks_mut(QUANTIZE_TASK)
            .zip(qs.par_chunks_mut(QUANTIZE_TASK * width))
            .enumerate()
            .for_each_init(Scratch::default, |scratch, (t, (a, qt))| {
                let start = t * QUANTIZE_TASK;
                let rows = a.len();
                let qt = ArrayViewMut2::from_shape((rows, width), qt).expect("rows of q");
                let zt = z.slice(s![start..start + rows, ..]);
                self.quantize_level(zt, a, qt, scratch, tree.as_ref());
            });
    }

    /// The VQ terms of the loss for a batch (`assign` from `quantize`): codebook loss
    /// ‖sg(û) − ê‖² (when the codebook learns by gradient) plus commitment β‖û − sg(ê)‖²,
    /// means over batch × lookup dims (both share the value mean‖û − ê‖²; they differ only in
    /// where their gradient goes; IBQ's weights are its own), plus the regularisers that are on. û = z and ê = q without a
    /// lookup of its own. Keeps what `backward` needs. A residual quantizer sums its levels'.
    pub fn loss(&mut self, z: ArrayView2<f32>, q: ArrayView2<f32>, assign: &[usize]) -> f32 {
        self.with_residual(|r, first| r.loss(first, z, assign))
            .unwrap_or_else(|| self.loss_level(z, q, assign))
    }

    /// `loss` of this level alone, whose codes for `z` are `q`.
    fn loss_level(&mut self, z: ArrayView2<f32>, q: ArrayView2<f32>, assign: &[usize]) -> f32 {
        if self.fixed {
            return self.kind.loss(z);
        }
        if !self.lookup.is_identity() {
            self.lookup.forward(z, assign, self.codes.view());
        }
        let table = self.lookup.table(self.codes.view());
        let (u, e) = if self.lookup.is_identity() {
            (z.view(), q.view())
        } else {
            self.lookup.batch()
        };
        let sq: f32 = Zip::from(u)
            .and(e)
            .fold(0.0, |acc, &a, &b| acc + (a - b) * (a - b));
        let mean = sq / u.len() as f32;
        let w = self.estimator.weights(self.beta);
        let codebook = match self.learner {
            Learner::Gradient(_) => w.codebook,
            Learner::Ema(_) => 0.0,
        };
        let mut total = codebook * mean + w.commitment * mean + w.double * mean;
        for r in &mut self.regularisers {
            total += r.loss(u, table);
        }
        total
    }

    /// Backward of the VQ bottleneck, after `loss` on the same batch. `g_q` holds ∂recon/∂q
    /// from the decoder; W_out (if any) carries it to ê, the estimator carries it to û
    /// (straight-through: unchanged; IBQ also to every code), the synchronised update passes
    /// ν of it to the selected codes, the commitment term adds 2β(û − ê)/(n·c) (IBQ: β = 1), the
    /// regularisers add theirs, and the normalisation and W_in (if any) carry it to z. The
    /// codebook loss's gradient goes to the codebook's own state. A residual quantizer passes
    /// `g_q` through once and adds each level's commitment (`residual.rs`).
    pub fn backward(
        &mut self,
        z: ArrayView2<f32>,
        q: ArrayView2<f32>,
        assign: &[usize],
        g_q: ArrayView2<f32>,
        mut g_z: ArrayViewMut2<f32>,
    ) {
        let residual =
            self.with_residual(|r, first| r.backward(first, z, assign, g_q, g_z.view_mut()));
        if residual.is_none() {
            self.backward_level(z, q, assign, g_q, g_z);
        }
    }

    /// `backward` of this level alone, whose codes for `z` are `q`.
    fn backward_level(
        &mut self,
        z: ArrayView2<f32>,
        q: ArrayView2<f32>,
        assign: &[usize],
        g_q: ArrayView2<f32>,
        mut g_z: ArrayViewMut2<f32>,
    ) {
        if self.kind.backward(z, g_q, g_z.view_mut()) {
            return;
        }
        let mut grad = match &mut self.learner {
            Learner::Gradient(g) => Some(g),
            Learner::Ema(_) => None,
        };
        let terms = Terms {
            weights: self.estimator.weights(self.beta),
            estimator: &mut self.estimator,
            sync_nu: self.sync_nu,
            regularisers: &mut self.regularisers,
            assign,
        };
        if self.lookup.is_identity() {
            terms.backward(z, q, self.codes.view(), g_q, g_z, grad);
            return;
        }
        self.lookup.output_backward(g_q);
        let (u, e, g_e, table, g_u) = self.lookup.backward_views(self.codes.view());
        terms.backward(u, e, table, g_e, g_u, grad.as_deref_mut());
        self.lookup.input_backward(z, g_z);
        if let Some(g) = grad {
            self.lookup
                .table_backward(self.codes.view(), g.grad.view_mut());
        }
    }

    /// The codebook's update after a training step on the batch `z` with assignments
    /// `assign`: an Adam step along the last gradient (through the parameterization), or the
    /// EMA update, in the lookup space; then dead-code restarts and the projections' step.
    /// Each residual level updates on its own residuals.
    pub fn after_step(&mut self, z: ArrayView2<f32>, assign: &[usize]) {
        if self
            .with_residual(|r, first| r.after_step(first, z, assign))
            .is_none()
        {
            self.after_step_level(z, assign);
        }
    }

    /// `after_step` of this level alone.
    fn after_step_level(&mut self, z: ArrayView2<f32>, assign: &[usize]) {
        if self.fixed {
            return;
        }
        // The batch as the codebook saw it (kept by `loss`), and before normalisation.
        let (seen, raw) = if self.lookup.is_identity() {
            (z.view(), z.view())
        } else {
            (self.lookup.batch().0, self.lookup.u())
        };
        match &mut self.learner {
            Learner::Gradient(g) => self.param.update(g, self.codes.view_mut(), raw),
            Learner::Ema(ema) => ema.update(self.codes.view_mut(), seen, assign),
        }
        self.restarted.clear();
        self.restart.after_step(
            self.codes.view_mut(),
            seen,
            assign,
            &mut self.rng,
            &mut self.restarted,
        );
        for &k in &self.restarted {
            self.learner.reset(k, self.codes.view());
        }
        self.restarts += self.restarted.len();
        if !self.lookup.is_identity() {
            self.lookup.step();
            self.lookup.refresh(self.codes.view());
        }
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
            self.lookup.refresh(self.codes.view());
        }
        let levels = self.residual.as_mut().map_or(0, |r| {
            r.levels.iter_mut().map(|l| l.after_epoch(epoch)).sum()
        });
        std::mem::take(&mut self.restarts) + levels
    }

    pub fn all_finite(&self) -> bool {
        self.codes.iter().all(|v| v.is_finite())
            && self.lookup.all_finite()
            && self.param.all_finite()
            && self
                .residual
                .as_ref()
                .is_none_or(|r| r.levels.iter().all(Quantizer::all_finite))
    }
}

/// The bottleneck's loss terms, for their backward in the lookup space.
struct Terms<'a> {
    weights: estimator::Weights,
    estimator: &'a mut Estimator,
    sync_nu: f32,
    regularisers: &'a mut [Regulariser],
    assign: &'a [usize],
}

impl Terms<'_> {
    /// ∂L/∂û into `g_u` from the decoder's ∂L/∂ê `g_e` (estimator, commitment, regularisers),
    /// and ∂L/∂Ê into the codebook's gradient when it learns by gradient. `u`, `e`: the batch
    /// (û, ê); `table`: the codes Ê the search saw.
    fn backward(
        self,
        u: ArrayView2<f32>,
        e: ArrayView2<f32>,
        table: ArrayView2<f32>,
        g_e: ArrayView2<f32>,
        mut g_u: ArrayViewMut2<f32>,
        learner: Option<&mut gradient::ByGradient>,
    ) {
        // The codebook loss's gradient first: IBQ and the synchronised update add to it.
        let mut grad = learner.map(|g| {
            g.backward(u, e, self.assign, self.weights.codebook);
            g.grad.view_mut()
        });
        let codebook = (table, grad.as_mut().map(|g| g.view_mut()));
        self.estimator
            .backward(u, e, self.assign, g_e, g_u.view_mut(), codebook);
        if let Some(grad) = grad.as_mut().filter(|_| self.sync_nu > 0.0) {
            sync::backward(self.sync_nu, self.assign, g_e, grad.view_mut());
        }
        let commit = self.weights.commitment * (2.0 / u.len() as f32);
        Zip::from(&mut g_u).and(u).and(e).for_each(|gz, &a, &b| {
            *gz += commit * (a - b);
        });
        for r in self.regularisers {
            let grad = grad.as_mut().map(|g| g.view_mut());
            r.backward(u, table, g_u.view_mut(), grad);
        }
    }
}

/// Row i of `q` becomes the decoder's input for code `assign[i]` of `decoded` (S, m).
fn gather(decoded: ArrayView2<f32>, assign: &[usize], mut q: ArrayViewMut2<f32>) {
    for (mut row, &k) in q.axis_iter_mut(Axis(0)).zip(assign) {
        row.assign(&decoded.row(k));
    }
}

/// The bottleneck `cfg` asks for.
fn kind(cfg: &ValidRun) -> Kind {
    let shape = kind::Shape {
        q: &cfg.quantizer,
        m: cfg.model.latent_dim,
    };
    Kind::BUILD[cfg.chosen().kind](&shape)
}

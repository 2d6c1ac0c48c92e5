//! One run: data, networks, the early, deferred or continuous schedule, and its measurements.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ndarray::{s, Array1, Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::sim::checked::ValidRun;
use crate::sim::config::ScheduleKind;
use crate::sim::data::Mixture;
use crate::sim::metrics::{self, Metrics};
use crate::sim::model::{Autoencoder, Evaluation, Networks};
use crate::sim::rng::{stream, Stream};
use crate::sim::vq::Quantizer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Plain autoencoder training (deferred and continuous schedules).
    Continuous,
    /// Training with the quantizer on.
    Quantized,
}

/// Metrics of the whole data set after `epoch` epochs of `phase` (epoch 0 = phase start,
/// i.e. the quantized phase's epoch 0 is right after codebook init).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryRow {
    pub phase: Phase,
    pub epoch: usize,
    /// Epochs trained so far over both phases (x axis of dynamics plots).
    pub total_epoch: usize,
    pub metrics: Metrics,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Diverged,
    /// A step that cannot go on stopped the run (a k-means init that failed); `message` says why.
    Failed,
}

/// The end state of a run, for figures: the data, its embeddings and reconstructions, and the
/// codebook with its usage.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// True mode of each point, (n).
    pub labels: Vec<usize>,
    /// Data, (n, d).
    pub x: Array2<f32>,
    /// Encoder outputs, (n, m).
    pub z: Array2<f32>,
    /// Reconstructions dec(q(z)), (n, d).
    pub recon: Array2<f32>,
    /// Assigned code per point, (n).
    pub code: Vec<usize>,
    /// Codebook, (S, m).
    pub codebook: Array2<f32>,
    /// Points assigned to each code, (S).
    pub usage: Array1<u64>,
    /// Mixture means, (K, d).
    pub means: Array2<f32>,
}

/// A run has diverged when a training step's loss is non-finite or above this many times its
/// first step's loss (in absolute value): a loss that explodes but stays finite (`train.lr =
/// 100`, seed 0, ended with an MSE of 8e10 and status ok) describes no trained model either.
pub const DIVERGED_LOSS_RATIO: f32 = 1e6;

#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub status: Status,
    /// Total epoch at which a non-finite or exploded loss (`DIVERGED_LOSS_RATIO`) or a
    /// non-finite parameter appeared.
    pub diverged_epoch: Option<usize>,
    /// Why a failed run failed; empty otherwise.
    pub message: String,
    /// Wall time of training, codebook init included, metrics excluded (seconds).
    pub seconds: f64,
    /// Final metrics (all NaN when diverged or failed).
    pub metrics: Metrics,
    pub history: Vec<HistoryRow>,
    /// None when diverged, failed or never quantized (no codebook to show).
    pub snapshot: Option<Snapshot>,
}

/// The run was stopped from outside (Ctrl-C) before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("run cancelled")]
pub struct Cancelled;

/// Train and measure one run. Randomness comes only from `seed`, so the same (config, seed)
/// gives the same outcome bit for bit on any thread. `cancel` is polled between steps. The
/// end-of-training snapshot (a copy of the data set among others) is made only when
/// `keep_snapshot`.
pub fn run(
    cfg: &ValidRun,
    seed: u64,
    cancel: &AtomicBool,
    keep_snapshot: bool,
) -> Result<RunOutcome, Cancelled> {
    // A data file was read once for the whole sweep: borrow it, never read or copy it per run.
    let data = match cfg.data_file() {
        Some(file) => Cow::Borrowed(&*file.data),
        None => Cow::Owned(Mixture::sample(&cfg.data, &mut stream(seed, Stream::Data))),
    };
    let n = data.len();
    let subsample = metrics::subsample(n, seed);
    let (train, heldout) = split(n, cfg.data.holdout, &mut stream(seed, Stream::Holdout));
    let measures = Measures::new(&data, &subsample, &heldout);
    // With one thread there is no one to hand a measurement to.
    let aside = rayon::current_num_threads() > 1;
    let (result, start, trained, measuring) = rayon::in_place_scope(|scope| {
        let mut trainer = Trainer {
            cfg,
            data: &data,
            measures: &measures,
            scope: aside.then_some(scope),
            model: Autoencoder::new(cfg, &mut stream(seed, Stream::Weights)),
            epochs: Epochs::new(train, cfg.train.batch_size.min(n), cfg.data.dim, seed),
            measuring: Duration::ZERO,
            total_epoch: 0,
            first_loss: None,
            cancel,
        };
        let start = Instant::now();
        measures.training.store(true, Ordering::SeqCst);
        let result = trainer.schedule(seed);
        measures.training.store(false, Ordering::SeqCst);
        (result, start, Instant::now(), trainer.measuring)
    });
    // A cancelled run's rows are never written: measure no more of them.
    measures.finish(!matches!(result, Err(Stop::Cancelled)));
    // From the end of training to here the run waited for its measurements.
    let measuring = measuring + trained.elapsed() + measures.picked_up();
    let seconds = start.elapsed().saturating_sub(measuring).as_secs_f64();
    let Measured { history, last, .. } = measures.work.into_inner().expect(UNPOISONED);
    // A schedule that ends well has measured its last epoch.
    let result = result.map(|vq| (vq, last.expect("the last epoch is measured")));
    outcome(result, &data, seconds, history, keep_snapshot)
}

/// The outcome of a schedule that ended with `result`; with its snapshot only when
/// `keep_snapshot`, so that a run whose snapshot is not written never copies the data set.
fn outcome(
    result: Result<(Option<Quantizer>, Evaluation), Stop>,
    data: &Mixture,
    seconds: f64,
    history: Vec<HistoryRow>,
    keep_snapshot: bool,
) -> Result<RunOutcome, Cancelled> {
    let stopped = |status, diverged_epoch, message, history| RunOutcome {
        status,
        diverged_epoch,
        message,
        seconds,
        metrics: Metrics::nan(),
        history,
        snapshot: None,
    };
    match result {
        Ok((vq, eval)) => {
            let metrics = eval.metrics;
            let snapshot = vq.filter(|_| keep_snapshot).map(|vq| {
                // A residual quantizer's snapshot shows its first level, as its metrics do.
                let mut code = eval.assign;
                code.truncate(data.len());
                snapshot(data, eval.z, eval.recon, code, vq.codebook().to_owned())
            });
            Ok(RunOutcome {
                status: Status::Ok,
                diverged_epoch: None,
                message: String::new(),
                seconds,
                metrics,
                history,
                snapshot,
            })
        }
        Err(Stop::Diverged(epoch)) => Ok(stopped(
            Status::Diverged,
            Some(epoch),
            String::new(),
            history,
        )),
        Err(Stop::Failed(message)) => Ok(stopped(Status::Failed, None, message, history)),
        Err(Stop::Cancelled) => Err(Cancelled),
    }
}

/// The quantizer a run starts with, from the encoder outputs `z` of the training points; a
/// k-means that fails stops the run as `failed`, with its message (linfa's words).
fn codebook(cfg: &ValidRun, z: ArrayView2<f32>, seed: u64) -> Result<Quantizer, Stop> {
    Quantizer::init(cfg, z, seed).map_err(|e| Stop::Failed(e.to_string()))
}

/// Why training stopped before the end of the schedule.
enum Stop {
    /// A non-finite loss or parameter appeared in this total epoch.
    Diverged(usize),
    /// The codebook could not be initialised (the k-means error).
    Failed(String),
    Cancelled,
}

struct Trainer<'a, 's> {
    cfg: &'a ValidRun,
    data: &'a Mixture,
    measures: &'a Measures<'a>,
    /// Where measurements are handed to rayon's threads; None to measure on this one.
    scope: Option<&'s rayon::Scope<'a>>,
    model: Autoencoder,
    epochs: Epochs,
    /// Time spent handing on and measuring epochs, left out of the run's `seconds`.
    measuring: Duration,
    total_epoch: usize,
    /// The loss of the run's first training step, the scale of `DIVERGED_LOSS_RATIO`.
    first_loss: Option<f32>,
    cancel: &'a AtomicBool,
}

impl<'a> Trainer<'a, '_> {
    /// The early, deferred or continuous schedule; returns the trained quantizer (None when
    /// never quantized). Its last epoch is measured.
    fn schedule(&mut self, seed: u64) -> Result<Option<Quantizer>, Stop> {
        let cfg = self.cfg;
        let kind = cfg.schedule.kind;
        let continuous = match kind {
            ScheduleKind::Early => None,
            ScheduleKind::Deferred => Some(cfg.schedule.continuous_epochs),
            // Deferred's budget, all of it unquantized.
            ScheduleKind::Continuous => Some(cfg.schedule.continuous_epochs + cfg.train.epochs),
        };
        if let Some(epochs) = continuous {
            self.record(Phase::Continuous, 0, None);
            for epoch in 1..=epochs {
                self.epoch(None)?;
                if self.measured(epoch, epochs) {
                    self.record(Phase::Continuous, epoch, None);
                }
            }
            if kind == ScheduleKind::Continuous {
                return Ok(None);
            }
        }
        // The codebook starts from the encoder as it is now: untrained (early) or trained
        // (deferred), on the training points only (held-out points must not shape the codes).
        let z = self
            .model
            .encoder
            .infer(training_rows(self.data.x.view(), self.measures.heldout).view());
        let mut vq = codebook(self.cfg, z.view(), seed)?;
        self.record(Phase::Quantized, 0, Some((&vq, 0)));
        let epochs = self.cfg.train.epochs;
        let mut restarts = 0; // since the last history row
        for epoch in 1..=epochs {
            self.epoch(Some(&mut vq))?;
            restarts += vq.after_epoch(epoch);
            if !vq.all_finite() {
                return Err(Stop::Diverged(self.total_epoch));
            }
            if self.measured(epoch, epochs) {
                self.record(Phase::Quantized, epoch, Some((&vq, restarts)));
                restarts = 0;
            }
        }
        Ok(Some(vq))
    }

    /// Whether epoch `epoch` of a phase of `epochs` gets a history row: the first (0), the
    /// last, and every `train.history_every`-th.
    fn measured(&self, epoch: usize, epochs: usize) -> bool {
        epoch == epochs || epoch.is_multiple_of(self.cfg.train.history_every)
    }

    /// One pass over the shuffled data (last partial batch kept).
    fn epoch(&mut self, mut vq: Option<&mut Quantizer>) -> Result<(), Stop> {
        self.total_epoch += 1;
        let (model, cancel, total_epoch) = (&mut self.model, self.cancel, self.total_epoch);
        let first_loss = &mut self.first_loss;
        self.epochs.run(self.data.x.view(), |batch| {
            if cancel.load(Ordering::Relaxed) {
                return Err(Stop::Cancelled);
            }
            let loss = model.step(batch, vq.as_deref_mut());
            let first = *first_loss.get_or_insert(loss);
            if !loss.is_finite() || exploded(loss, first) {
                return Err(Stop::Diverged(total_epoch));
            }
            Ok(())
        })?;
        if self.model.all_finite() {
            Ok(())
        } else {
            Err(Stop::Diverged(self.total_epoch))
        }
    }

    /// Hand the run as it is now to `measures` for a history row; `vq` comes with the codes
    /// it restarted during the epoch. The generation metrics cost about three training epochs
    /// each (default sizes), so only the last quantized epoch measures them.
    fn record(&mut self, phase: Phase, epoch: usize, vq: Option<(&Quantizer, usize)>) {
        self.measures.training.store(false, Ordering::SeqCst);
        let start = Instant::now();
        let moment = Moment {
            phase,
            epoch,
            total_epoch: self.total_epoch,
            generation: phase == Phase::Quantized && epoch == self.cfg.train.epochs,
            networks: self.model.networks(),
            vq: vq.map(|(vq, restarts)| (vq.clone(), restarts)),
        };
        self.measures.hand_on(moment, self.scope);
        self.measuring += start.elapsed();
        self.measures.training.store(true, Ordering::SeqCst);
    }
}

/// The run at the end of an epoch, as a history row measures it: copies of the networks and
/// the quantizer, so that training can go on while the row is measured.
struct Moment {
    phase: Phase,
    epoch: usize,
    total_epoch: usize,
    /// Whether the generation metrics are measured too.
    generation: bool,
    networks: Networks,
    /// The quantizer, with the codes it restarted since the row before.
    vq: Option<(Quantizer, usize)>,
}

/// The history rows of a run, measured beside its training. Each epoch's moment goes to
/// whichever of rayon's threads comes free first while training goes on: one left idle beside
/// fewer runs than threads (a single large run, the end of a sweep). A moment that no thread
/// took by the next one, or every moment with one thread, the training thread measures itself.
/// One moment is measured at a time and in epoch order (coverage's draws carry over from one to
/// the next), so the history is the same whatever the threads.
///
/// No thread ever blocks on a lock held through a measurement (only `try_lock` takes it):
/// the holder may be waiting on rayon for work that the would-be waiter has taken up beneath
/// its own frames, as when runs are themselves rayon's tasks (`theory`). Waiting is done in
/// rayon's way, taking up its work meanwhile.
struct Measures<'a> {
    data: &'a Mixture,
    subsample: &'a [usize],
    /// Points held out of training, sorted.
    heldout: &'a [usize],
    /// Moments handed on and not yet measured, oldest first (held only to push or pop).
    queue: Mutex<VecDeque<Moment>>,
    /// What measuring carries from one moment to the next; held through a measurement.
    work: Mutex<Measured>,
    /// The training thread's index in rayon's pool.
    trainer: Option<usize>,
    /// Whether the training thread is training (not handing on or waiting for measurements,
    /// which the run's `seconds` leave out already).
    training: AtomicBool,
    /// Time the training thread spent measuring in tasks it took up while it waited on
    /// rayon's threads inside training (k-means); left out of the run's `seconds`.
    picked_up: Mutex<Duration>,
    /// Moments measured on other threads than the training thread.
    aside: AtomicUsize,
}

#[derive(Default)]
struct Measured {
    /// Coverage's draws, kept from one evaluation to the next.
    coverage: metrics::CoverageDraws,
    history: Vec<HistoryRow>,
    /// The evaluation of the latest moment measured.
    last: Option<Evaluation>,
}

/// A measurement that panicked has already failed the run.
const UNPOISONED: &str = "no measurement panicked";

/// Moments that may wait to be measured before the training thread waits for them: training
/// runs at most about this many epochs ahead of its history.
const MAX_WAITING: usize = 2;

/// Copies of the run a run holds at most for its measurements: those waiting and the one
/// being measured.
pub const MOMENTS_HELD: usize = MAX_WAITING + 1;

impl<'a> Measures<'a> {
    /// For a run on this thread.
    fn new(data: &'a Mixture, subsample: &'a [usize], heldout: &'a [usize]) -> Measures<'a> {
        Measures {
            data,
            subsample,
            heldout,
            queue: Mutex::default(),
            work: Mutex::default(),
            trainer: rayon::current_thread_index(),
            training: AtomicBool::new(false),
            picked_up: Mutex::default(),
            aside: AtomicUsize::new(0),
        }
    }

    /// From the training thread: measure `moment` in a task of `scope`, or now without one.
    fn hand_on(&'a self, moment: Moment, scope: Option<&rayon::Scope<'a>>) {
        let waiting = {
            let mut queue = self.queue();
            queue.push_back(moment);
            queue.len()
        };
        let Some(scope) = scope else {
            self.drain();
            return;
        };
        if waiting > 1 {
            // No thread came free for the moment before: measure here, unless one is on it.
            self.drain();
        }
        while self.queue().len() > MAX_WAITING {
            self.drain();
            if rayon::yield_now() != Some(rayon::Yield::Executed) {
                std::thread::yield_now();
            }
        }
        if !self.queue().is_empty() {
            scope.spawn(move |_| self.drain_task());
        }
    }

    /// A task's `drain`, with its time on the training thread and its moments measured
    /// elsewhere counted.
    fn drain_task(&self) {
        let start = Instant::now();
        let measured = self.drain();
        if rayon::current_thread_index() == self.trainer {
            if self.training.load(Ordering::SeqCst) {
                *self.picked_up.lock().expect(UNPOISONED) += start.elapsed();
            }
        } else {
            self.aside.fetch_add(measured, Ordering::SeqCst);
        }
    }

    /// Measure the moments waiting, oldest first, unless another thread is measuring (it
    /// goes on with them); how many this call measured.
    fn drain(&self) -> usize {
        let mut measured = 0;
        loop {
            let Ok(mut work) = self.work.try_lock() else {
                return measured;
            };
            while let Some(moment) = self.next() {
                self.measure(moment, &mut work);
                measured += 1;
            }
            drop(work);
            // A moment handed on after the queue was seen empty, whose task found the lock
            // still held, is left to this call.
            if self.queue().is_empty() {
                return measured;
            }
        }
    }

    /// After the scope of the tasks has closed: the moments still waiting measured when
    /// `rest`, dropped otherwise.
    fn finish(&self, rest: bool) {
        if rest {
            self.drain();
        }
        self.queue().clear();
    }

    fn picked_up(&self) -> Duration {
        *self.picked_up.lock().expect(UNPOISONED)
    }

    fn queue(&self) -> MutexGuard<'_, VecDeque<Moment>> {
        self.queue.lock().expect(UNPOISONED)
    }

    /// The oldest moment waiting, the queue's lock released on return (a `while let` on
    /// `queue().pop_front()` would hold it through the loop's body: the measurement).
    fn next(&self) -> Option<Moment> {
        self.queue().pop_front()
    }

    /// Measure `moment` and append its row to the history.
    fn measure(&self, moment: Moment, work: &mut Measured) {
        let mut eval = moment.networks.evaluate(
            self.data.x.view(),
            self.data.means.view(),
            moment.vq.as_ref().map(|(vq, _)| vq),
            self.subsample,
            self.heldout,
            moment.generation,
            &mut work.coverage,
        );
        if let Some((vq, restarts)) = &moment.vq {
            eval.metrics.restarts = *restarts as f64;
            eval.metrics.code_travel =
                metrics::code_travel(vq.start(), vq.codebook(), eval.z.view(), self.subsample);
        }
        work.history.push(HistoryRow {
            phase: moment.phase,
            epoch: moment.epoch,
            total_epoch: moment.total_epoch,
            metrics: eval.metrics,
        });
        work.last = Some(eval);
    }
}

/// The epoch loop of training, shared by `vqsim bench` and the allocation test: each epoch
/// shuffles the training points (the seed's own stream) and hands `step` their rows batch by
/// batch, the last partial batch kept, in a buffer reused from epoch to epoch.
pub struct Epochs {
    shuffle: ChaCha8Rng,
    /// Training points in the order of the current epoch.
    order: Vec<usize>,
    /// The current batch, (batch_size, d).
    batch: Array2<f32>,
}

impl Epochs {
    /// Epochs over the rows `order` (of a data set of dimension `dim`) in batches of
    /// `batch_size`, shuffled by `seed`'s stream.
    pub fn new(order: Vec<usize>, batch_size: usize, dim: usize, seed: u64) -> Epochs {
        Epochs {
            shuffle: stream(seed, Stream::Shuffle),
            order,
            batch: Array2::zeros((batch_size, dim)),
        }
    }

    /// One epoch over the rows of `x`: `step` on every batch, stopping at its first error.
    pub fn run<E>(
        &mut self,
        x: ArrayView2<f32>,
        mut step: impl FnMut(ArrayView2<f32>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.order.shuffle(&mut self.shuffle);
        for chunk in self.order.chunks(self.batch.nrows().max(1)) {
            let mut batch = self.batch.slice_mut(s![..chunk.len(), ..]);
            for (mut row, &i) in batch.outer_iter_mut().zip(chunk) {
                row.assign(&x.row(i));
            }
            step(batch.view())?;
        }
        Ok(())
    }
}

/// Whether `loss` is more than `DIVERGED_LOSS_RATIO` times the first step's `first` (a first
/// loss of 0 counts as the smallest positive f32).
fn exploded(loss: f32, first: f32) -> bool {
    loss.abs() > DIVERGED_LOSS_RATIO * first.abs().max(f32::MIN_POSITIVE)
}

/// The rows of `x` (n, d) not in `heldout` (sorted), in index order: all of `x` without a
/// held-out split.
fn training_rows(x: ArrayView2<f32>, heldout: &[usize]) -> Array2<f32> {
    if heldout.is_empty() {
        return x.to_owned();
    }
    let mut keep = vec![true; x.nrows()];
    heldout.iter().for_each(|&i| keep[i] = false);
    let rows: Vec<usize> = (0..x.nrows()).filter(|&i| keep[i]).collect();
    x.select(Axis(0), &rows)
}

/// Indices of the training points and of the held-out ones (a random `fraction` of `n`,
/// sorted); with no held-out share every point trains, in index order.
fn split(n: usize, fraction: f64, rng: &mut ChaCha8Rng) -> (Vec<usize>, Vec<usize>) {
    let held = (n as f64 * fraction).round() as usize;
    let mut heldout = rand::seq::index::sample(rng, n, held).into_vec();
    heldout.sort_unstable();
    let mut is_held = vec![false; n];
    heldout.iter().for_each(|&i| is_held[i] = true);
    let train = (0..n).filter(|&i| !is_held[i]).collect();
    (train, heldout)
}

fn snapshot(
    data: &Mixture,
    z: Array2<f32>,
    recon: Array2<f32>,
    code: Vec<usize>,
    codebook: Array2<f32>,
) -> Snapshot {
    let mut usage = Array1::zeros(codebook.nrows());
    for &k in &code {
        usage[k] += 1;
    }
    Snapshot {
        labels: data.labels.clone(),
        x: data.x.clone(),
        z,
        recon,
        code,
        codebook,
        usage,
        means: data.means.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn a_failed_kmeans_init_is_recorded_as_failed_with_its_message() {
        let cfg =
            crate::sim::valid::validate(&crate::sim::config::RunConfig::default(), None).unwrap();
        let data = Mixture::sample(&cfg.data, &mut stream(0, Stream::Data));
        // Non-finite embeddings: no clustering of finite inertia.
        let mut z = Array2::<f32>::ones((100, 2));
        z[[7, 0]] = f32::NAN;
        let Err(stop) = codebook(&cfg, z.view(), 0) else {
            panic!("k-means on NaN embeddings should fail");
        };
        let out = outcome(Err(stop), &data, 0.5, Vec::new(), true).unwrap();
        assert_eq!(out.status, Status::Failed);
        assert_eq!(out.diverged_epoch, None);
        assert!(out.message.contains("k-means"), "{}", out.message);
        assert!(out.metrics.mse.is_nan() && out.snapshot.is_none());
    }

    #[test]
    fn a_run_whose_loss_explodes_but_stays_finite_is_diverged() {
        // Recorded ok with an MSE of 8e10 before the bound (lr = 1000 turns non-finite).
        let mut cfg = crate::sim::config::RunConfig::default();
        cfg.train.lr = 100.0;
        let cfg = crate::sim::valid::validate(&cfg, None).unwrap();
        let out = run(&cfg, 0, &AtomicBool::new(false), false).unwrap();
        assert_eq!(out.status, Status::Diverged);
        assert!(out.diverged_epoch.is_some() && out.metrics.mse.is_nan());
    }

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    /// The default run's configuration, data, untrained model and subsample (seed 0).
    fn default_run() -> (ValidRun, Mixture, Autoencoder, Vec<usize>) {
        let cfg =
            crate::sim::valid::validate(&crate::sim::config::RunConfig::default(), None).unwrap();
        let data = Mixture::sample(&cfg.data, &mut stream(0, Stream::Data));
        let model = Autoencoder::new(&cfg, &mut stream(0, Stream::Weights));
        let subsample = metrics::subsample(data.len(), 0);
        (cfg, data, model, subsample)
    }

    /// The default run right after its codebook init, with the generation metrics measured and
    /// `restarts` restarts counted.
    fn first_moment(
        cfg: &ValidRun,
        data: &Mixture,
        model: &Autoencoder,
        restarts: usize,
    ) -> Moment {
        let vq = codebook(cfg, model.encoder.infer(data.x.view()).view(), 0).ok();
        Moment {
            phase: Phase::Quantized,
            epoch: 0,
            total_epoch: 0,
            generation: true,
            networks: model.networks(),
            vq: vq.map(|vq| (vq, restarts)),
        }
    }

    /// The history of `cfg` (seed 0) trained in a pool of `threads`, as text (NaN equals NaN).
    fn history_in(cfg: &ValidRun, threads: usize) -> String {
        let out = pool(threads).install(|| run(cfg, 0, &AtomicBool::new(false), true).unwrap());
        let snapshot = out.snapshot.map(|s| (s.z, s.recon, s.code, s.codebook));
        format!("{:?}", (out.history, out.metrics, snapshot))
    }

    #[test]
    fn a_run_measured_beside_its_training_has_the_history_measured_inline() {
        // Deferred: a moment of the continuous phase may wait across the k-means init.
        let mut cfg = crate::sim::config::RunConfig::default();
        cfg.schedule.kind = ScheduleKind::Deferred;
        (cfg.schedule.continuous_epochs, cfg.train.epochs) = (3, 4);
        cfg.quantizer.codebook_size = 300;
        let cfg = crate::sim::valid::validate(&cfg, None).unwrap();
        let inline = history_in(&cfg, 1);
        assert_eq!(history_in(&cfg, 2), inline);
        assert_eq!(history_in(&cfg, 3), inline);
    }

    #[test]
    fn a_moment_handed_on_is_measured_by_an_idle_thread_as_on_the_training_thread() {
        let (cfg, data, model, subsample) = default_run();
        let pool = pool(2);
        let measured = |aside: bool| {
            pool.install(|| {
                let measures = Measures::new(&data, &subsample, &[]);
                let moment = first_moment(&cfg, &data, &model, 2);
                rayon::in_place_scope(|scope| {
                    measures.hand_on(moment, aside.then_some(scope));
                    // This thread stays out of rayon: only the idle one can take the task.
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while aside && measures.aside.load(Ordering::SeqCst) == 0 {
                        assert!(Instant::now() < deadline, "no idle thread measured");
                        std::thread::sleep(Duration::from_millis(1));
                    }
                });
                measures.finish(true);
                assert_eq!(measures.aside.into_inner(), usize::from(aside));
                let state = measures.work.into_inner().unwrap();
                let last = state.last.unwrap();
                format!("{:?}", (state.history, last.z, last.recon, last.assign))
            })
        };
        let inline = measured(false);
        assert!(inline.contains("restarts: 2.0"), "{inline}");
        assert_eq!(measured(true), inline);
    }

    #[test]
    fn the_queue_stays_free_while_a_moment_is_measured() {
        // The training thread pushes onto the queue while another thread measures: a lock on
        // the queue held through a measurement would make it wait, outside rayon's way.
        let (cfg, data, model, subsample) = default_run();
        let measures = Measures::new(&data, &subsample, &[]);
        pool(2).install(|| {
            rayon::in_place_scope(|scope| {
                // The generation metrics make the measurement last (tens of ms).
                measures.hand_on(first_moment(&cfg, &data, &model, 0), Some(scope));
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut held_since: Option<Instant> = None;
                while measures.aside.load(Ordering::SeqCst) == 0 {
                    assert!(Instant::now() < deadline, "no idle thread measured");
                    match measures.queue.try_lock() {
                        Ok(_) => held_since = None,
                        Err(_) => {
                            let since = *held_since.get_or_insert_with(Instant::now);
                            assert!(
                                since.elapsed() < Duration::from_millis(5),
                                "the queue was held through a measurement"
                            );
                        }
                    }
                    std::thread::sleep(Duration::from_micros(100));
                }
            });
        });
        measures.finish(true);
        assert_eq!(measures.work.into_inner().unwrap().history.len(), 1);
    }

    #[test]
    fn moments_that_pile_up_behind_a_slow_measurement_wait_and_keep_their_order() {
        let (_, data, model, subsample) = default_run();
        let pool = pool(2);
        let measures = Measures::new(&data, &subsample, &[]);
        let (taken, held) = (AtomicBool::new(false), AtomicBool::new(true));
        pool.install(|| {
            rayon::in_place_scope(|scope| {
                // The other thread holds the measuring state a while, as a slow measurement
                // would, until a timer lets it go.
                scope.spawn(|_| {
                    let _work = measures.work.lock().unwrap();
                    taken.store(true, Ordering::SeqCst);
                    while held.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                });
                while !taken.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                std::thread::scope(|timer| {
                    timer.spawn(|| {
                        std::thread::sleep(Duration::from_millis(200));
                        held.store(false, Ordering::SeqCst);
                    });
                    for epoch in 0..2 * MAX_WAITING + 1 {
                        let moment = Moment {
                            phase: Phase::Continuous,
                            epoch,
                            total_epoch: epoch,
                            generation: false,
                            networks: model.networks(),
                            vq: None,
                        };
                        measures.hand_on(moment, Some(scope));
                        assert!(measures.queue().len() <= MAX_WAITING);
                    }
                });
            });
        });
        measures.finish(true);
        let work = measures.work.into_inner().unwrap();
        let epochs: Vec<usize> = work.history.iter().map(|r| r.epoch).collect();
        assert_eq!(epochs, (0..2 * MAX_WAITING + 1).collect::<Vec<_>>());
    }

    #[test]
    fn the_divergence_bound_is_relative_to_the_first_loss() {
        assert!(!exploded(1e6, 1.0) && exploded(1.01e6, 1.0));
        assert!(!exploded(-5e6, -10.0) && exploded(2e-3, 1e-9));
        assert!(exploded(1e-30, 0.0) && !exploded(0.0, 0.0));
    }

    #[test]
    fn codebook_init_sees_only_training_rows() {
        let x = array![[0.0f32], [1.0], [2.0], [3.0], [4.0]];
        assert_eq!(
            training_rows(x.view(), &[1, 3]),
            array![[0.0f32], [2.0], [4.0]]
        );
        assert_eq!(training_rows(x.view(), &[]), x);
    }
}

//! Timing the engine: training steps per second, the FLOPs of a step, and whole sweeps of the
//! bench scenarios (wall time and the runs' own `seconds`).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::BenchError;
use crate::sim::checked::ValidRun;
use crate::sim::data::Mixture;
use crate::sim::model::Autoencoder;
use crate::sim::rng::{stream, Stream};
use crate::sim::train::Epochs;
use crate::sim::vq::Quantizer;
use crate::study::scenario::Scenario;
use crate::study::sweep::{self, ProgressMode, SweepOptions};

/// The one default run: the built-in scenario's early arm, seed 0 (`scripts/torch_ref.py`
/// reads the same text).
pub const ONE_RUN: &str = "name = \"bench_early\"\nseeds = [0]\n[schedule]\nkind = \"early\"\n";
/// The same run with a codebook of 1 024 codes, the size researchers use.
pub const ONE_RUN_S1024: &str = "name = \"bench_early_s1024\"\nseeds = [0]\n\
                                 [schedule]\nkind = \"early\"\n[quantizer]\ncodebook_size = 1024\n";
/// 16 default-size runs: both schedules × 8 seeds.
pub const SWEEP: &str = "name = \"bench_sweep\"\nseeds = [0, 1, 2, 3, 4, 5, 6, 7]\n\
                         [sweep]\n\"schedule.kind\" = [\"early\", \"deferred\"]\n";
/// 16 early default runs: what `torch_batched.py 16` trains in lockstep.
pub const SWEEP_EARLY: &str = "name = \"bench_early16\"\n\
                               seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]\n\
                               [schedule]\nkind = \"early\"\n";
/// History rows every epoch cost a share of the training; what measuring every 5th saves.
pub const SPARSE_HISTORY: &str = "[train]\nhistory_every = 5\n";
/// The scale case: 20 modes × 2 000 points in 64 dimensions, 16-dimensional codes, width 128,
/// S = 4 096, 5 early epochs (history at the first and last only); `init` is appended.
pub const SCALE: &str = "name = \"bench_scale\"\nseeds = [0]\n\
                         [data]\nmodes = 20\npoints_per_mode = 2000\ndim = 64\n\
                         [model]\nlatent_dim = 16\nwidth = 128\n\
                         [train]\nepochs = 5\nhistory_every = 5\n\
                         [schedule]\nkind = \"early\"\ncontinuous_epochs = 5\n\
                         [quantizer]\ncodebook_size = 4096\n";
/// Quantized steps timed per round of the steps-per-second measurement (after one warm-up epoch).
const TIMED_STEPS: usize = 400;

/// Quantized training steps per second on the default run's data, model and codebook (seed 0),
/// on this thread, after one warm-up epoch.
pub fn steps_per_second(cfg: &ValidRun) -> Result<f64, BenchError> {
    let data = Mixture::sample(&cfg.data, &mut stream(0, Stream::Data));
    let mut model = Autoencoder::new(cfg, &mut stream(0, Stream::Weights));
    let z = model.encoder.infer(data.x.view());
    let mut vq = Quantizer::init(cfg, z.view(), 0).map_err(|_| BenchError::Init)?;
    let b = cfg.train.batch_size;
    let mut epochs = Epochs::new((0..data.len()).collect(), b, cfg.data.dim, 0);
    let warm_up = data.len().div_ceil(b);
    let mut steps = 0;
    let mut start = Instant::now();
    // The step's closure ends the loop with an error once the timed steps are done.
    while epochs
        .run(data.x.view(), |batch| {
            if steps == warm_up {
                start = Instant::now();
            }
            model.step(batch, Some(&mut vq));
            steps += 1;
            if steps == warm_up + TIMED_STEPS {
                Err(())
            } else {
                Ok(())
            }
        })
        .is_ok()
    {}
    Ok(TIMED_STEPS as f64 / start.elapsed().as_secs_f64())
}

/// FLOPs of one training step of `cfg`'s model at full batch: 2·batch·fan_in·fan_out per
/// product; forward, then backward's xᵀ·gy for every layer and gy·Wᵀ for every layer but the
/// encoder's first (its input needs no gradient).
pub fn step_flops(cfg: &ValidRun) -> f64 {
    let model = Autoencoder::new(cfg, &mut stream(0, Stream::Weights));
    let batch = cfg
        .train
        .batch_size
        .min(cfg.data.modes * cfg.data.points_per_mode) as f64;
    let product = |l: &crate::sim::nn::Linear| 2.0 * batch * (l.fan_in() * l.fan_out()) as f64;
    let layers = model.encoder.layers().iter().chain(model.decoder.layers());
    let all: f64 = layers.map(product).sum();
    3.0 * all - product(&model.encoder.layers()[0])
}

/// Wall time of the sweep `text` with `threads` threads, from scratch, and the sum of its runs'
/// `seconds` (training and codebook init).
pub fn sweep_timed(scratch: &Path, text: &str, threads: usize) -> Result<(f64, f64), BenchError> {
    let scenario = Scenario::from_str(text, None, "bench_sweep")
        .unwrap_or_else(|e| unreachable!("the bench scenario is valid: {e}"));
    let training = Arc::new(Mutex::new(0.0));
    let mut opts = quiet_sweep(scratch, threads)?;
    let sum = training.clone();
    opts.on_run_done = Some(Arc::new(move |_, outcome| {
        *sum.lock().unwrap_or_else(|e| e.into_inner()) += outcome.seconds;
    }));
    let start = Instant::now();
    sweep::run_sweep(&scenario, &opts)?;
    let wall = start.elapsed().as_secs_f64();
    let training = *training.lock().unwrap_or_else(|e| e.into_inner());
    Ok((wall, training))
}

/// Runs of the scenario at `path` and the wall time of its whole sweep with `threads` threads.
pub(super) fn capacity(
    scratch: &Path,
    path: &Path,
    threads: usize,
) -> Result<(usize, f64), BenchError> {
    let scenario = Scenario::load(path).map_err(|e| BenchError::Capacity(e.to_string()))?;
    let opts = quiet_sweep(scratch, threads)?;
    let start = Instant::now();
    sweep::run_sweep(&scenario, &opts)?;
    Ok((scenario.runs.len(), start.elapsed().as_secs_f64()))
}

/// Writes `text` to `scratch/name`.
pub(super) fn write_scratch(scratch: &Path, name: &str, text: &str) -> Result<PathBuf, BenchError> {
    let path = scratch.join(name);
    std::fs::write(&path, text).map_err(|source| BenchError::Scratch {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Options for a sweep into a fresh `scratch/out`, without progress output.
pub(super) fn quiet_sweep(scratch: &Path, threads: usize) -> Result<SweepOptions, BenchError> {
    let out = scratch.join("out");
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(|source| BenchError::Scratch {
            path: out.clone(),
            source,
        })?;
    }
    let mut opts = SweepOptions::new(out);
    opts.threads = Some(threads);
    opts.progress = ProgressMode::Quiet;
    opts.cancel = Arc::new(AtomicBool::new(false));
    Ok(opts)
}

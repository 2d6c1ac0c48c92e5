//! `vqsim bench`: every ratio of issue 10 in one run. Training steps per second and the step's
//! FLOP rate against the single-core peak of the GEMM code vqsim uses (`sim::matmul`, faer);
//! the time of one default run; a 16-run early sweep, whole (metrics and result
//! files included), and how much of it is not training; how the mixed 16-run sweep scales from
//! 1 thread to more; runs per second of the capacity scenario. Optionally times the PyTorch
//! references on the same work: `torch_ref.py` (one run) and `torch_batched.py` (16 runs in
//! lockstep).
//!
//! Timings are medians over `repeat` rounds; in each round the compared programs run one after
//! the other, so a change of machine load hits both.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ndarray::{s, Array2};
use rand::seq::SliceRandom;

use crate::sim::config::RunConfig;
use ndarray::linalg::general_mat_mul;

use crate::sim::data::Mixture;
use crate::sim::matmul::{clear_upper_registers, matmul, Into};
use crate::sim::model::Autoencoder;
use crate::sim::rng::{stream, Stream};
use crate::sim::vq::Quantizer;
use crate::study::scenario::Scenario;
use crate::study::sweep::{self, ProgressMode, SweepError, SweepOptions};

/// The one default run: the built-in scenario's early arm, seed 0 (`scripts/torch_ref.py`
/// reads the same text).
pub const ONE_RUN: &str = "name = \"bench_early\"\nseeds = [0]\n[schedule]\nkind = \"early\"\n";
/// 16 default-size runs: both schedules × 8 seeds.
pub const SWEEP: &str = "name = \"bench_sweep\"\nseeds = [0, 1, 2, 3, 4, 5, 6, 7]\n\
                         [sweep]\n\"schedule.kind\" = [\"early\", \"deferred\"]\n";
/// 16 early default runs: what `torch_batched.py 16` trains in lockstep.
pub const SWEEP_EARLY: &str = "name = \"bench_early16\"\n\
                               seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]\n\
                               [schedule]\nkind = \"early\"\n";
/// History rows every epoch cost a share of the training; what measuring every 5th saves.
const SPARSE_HISTORY: &str = "[train]\nhistory_every = 5\n";
/// Quantized steps timed per round of the steps-per-second measurement (after one warm-up epoch).
const TIMED_STEPS: usize = 400;
/// Side of the square product whose rate is the GEMM peak: large enough that packing and call
/// overhead vanish, small enough to stay in cache.
const PEAK_SIDE: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Sweep(#[from] SweepError),
    #[error("cannot use the scratch directory {path}: {source}")]
    Scratch {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the codebook init failed on the default run")]
    Init,
    #[error("cannot read the capacity scenario: {0}")]
    Capacity(String),
    #[error("cannot run the PyTorch reference `{command}`: {reason}")]
    Torch { command: String, reason: String },
}

/// Where the PyTorch reference lives.
#[derive(Debug, Clone)]
pub struct TorchRef {
    /// A Python with torch, numpy and scikit-learn.
    pub python: PathBuf,
    /// `torch_ref.py`.
    pub script: PathBuf,
    /// `torch_batched.py`.
    pub batched: PathBuf,
}

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Rounds per measurement; medians are reported.
    pub repeat: usize,
    /// Threads of the sweep compared with 1 thread.
    pub threads: usize,
    pub torch: Option<TorchRef>,
    /// The capacity scenario, timed once with `threads` threads; None skips it.
    pub capacity: Option<PathBuf>,
    /// Scratch directory for sweep outputs; removed at the end.
    pub scratch: PathBuf,
}

impl BenchOptions {
    pub fn new() -> BenchOptions {
        BenchOptions {
            repeat: 3,
            threads: 2,
            torch: None,
            capacity: None,
            scratch: std::env::temp_dir().join(format!("vqsim-bench-{}", std::process::id())),
        }
    }
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions::new()
    }
}

#[derive(Debug, Clone)]
pub struct BenchReport {
    pub repeat: usize,
    /// Quantized training steps per second, default model and batch, one thread.
    pub steps_per_second: f64,
    /// FLOPs of one such step (matrix products, forward + backward, from the layer shapes).
    pub step_flops: f64,
    /// Single-thread f32 rate of vqsim's matrix product on a `PEAK_SIDE`³ product (FLOP/s).
    pub gemm_peak: f64,
    /// The step's products on faer and on matrixmultiply.
    pub products: Vec<ProductRate>,
    /// Time of SSE code right after a product over its time after none: after vqsim's
    /// `matmul`, and after faer's product alone (see `sim::matmul::clear_upper_registers`).
    pub sse_after: (f64, f64),
    /// `seconds` of the one default run (as in runs.csv: training and codebook init).
    pub run_seconds: f64,
    /// `seconds` reported by torch_ref.py for the same run, when asked for.
    pub torch_seconds: Option<f64>,
    /// Wall time of the 16 early runs, 1 thread, whole `vqsim run --no-report`.
    pub early16_wall: f64,
    /// Sum of the 16 runs' `seconds` (training and codebook init) in that sweep.
    pub early16_training: f64,
    /// The same two with `SPARSE_HISTORY`.
    pub early16_sparse: (f64, f64),
    /// `seconds` reported by `torch_batched.py 16 --threads 1`, when asked for.
    pub batched_seconds: Option<f64>,
    /// Wall time of the 16-run sweep with 1 thread.
    pub sweep_1: f64,
    /// Threads of the compared sweep, and its wall time.
    pub threads: usize,
    pub sweep_n: f64,
    /// Runs of the capacity scenario and its wall time with `threads` threads, when asked for.
    pub capacity: Option<(usize, f64)>,
}

impl BenchReport {
    /// How many times faster than the PyTorch reference the one run is.
    pub fn speedup_vs_torch(&self) -> Option<f64> {
        self.torch_seconds.map(|t| t / self.run_seconds)
    }

    /// FLOP rate of the training step (FLOP/s).
    pub fn step_rate(&self) -> f64 {
        self.steps_per_second * self.step_flops
    }

    /// Training step rate over the GEMM peak.
    pub fn peak_fraction(&self) -> f64 {
        self.step_rate() / self.gemm_peak
    }

    /// How many times faster the 16 early runs are than `torch_batched.py 16`.
    pub fn speedup_vs_batched(&self) -> Option<f64> {
        self.batched_seconds.map(|t| t / self.early16_wall)
    }

    /// What metrics, result files and sweep overhead add to the training seconds.
    pub fn overhead(&self) -> f64 {
        self.early16_wall / self.early16_training - 1.0
    }

    /// `overhead` with `SPARSE_HISTORY`.
    pub fn overhead_sparse(&self) -> f64 {
        self.early16_sparse.0 / self.early16_sparse.1 - 1.0
    }

    /// Sweep time with `threads` threads over its time with 1 thread.
    pub fn sweep_ratio(&self) -> f64 {
        self.sweep_n / self.sweep_1
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.repeat;
        let g = 1e-9;
        writeln!(f, "medians of {r}; targets of issue 10 in brackets")?;
        writeln!(
            f,
            "training steps:    {:.0} steps/s (default model, batch 256, quantized, 1 thread)",
            self.steps_per_second
        )?;
        writeln!(
            f,
            "step FLOPs:        {:.2} MFLOP (matrix products, forward + backward); {:.1} GFLOP/s",
            self.step_flops * 1e-6,
            self.step_rate() * g
        )?;
        writeln!(
            f,
            "GEMM peak:         {:.1} GFLOP/s ({PEAK_SIDE}³, faer, 1 thread)",
            self.gemm_peak * g
        )?;
        writeln!(
            f,
            "step / peak:       {:.0}% [≥ 50%]",
            100.0 * self.peak_fraction()
        )?;
        writeln!(
            f,
            "the step's products (GFLOP/s, 1 thread): faer | ndarray's matrixmultiply | faer's speed-up"
        )?;
        for p in &self.products {
            let (m, k, n) = p.shape;
            writeln!(
                f,
                "  {:<26} {:>14} {:>6.1} | {:>6.1} | {:.2}×",
                p.what,
                format!("{m}×{k} → {n}"),
                p.faer * g,
                p.matrixmultiply * g,
                p.faer / p.matrixmultiply
            )?;
        }
        writeln!(
            f,
            "SSE after a product: {:.2}× its time after none (after faer's product alone: {:.2}×)",
            self.sse_after.0, self.sse_after.1
        )?;
        writeln!(
            f,
            "one default run:   {:.3} s (early arm, seed 0, 1 thread; `seconds` of runs.csv)",
            self.run_seconds
        )?;
        if let (Some(t), Some(x)) = (self.torch_seconds, self.speedup_vs_torch()) {
            writeln!(
                f,
                "torch_ref.py:      {t:.3} s (same run, --threads 1): vqsim is {x:.1}× faster [≥ 8×]"
            )?;
        }
        writeln!(
            f,
            "16 early runs:     {:.2} s wall (1 thread, metrics and files included), {:.2} s of it training",
            self.early16_wall, self.early16_training
        )?;
        if let (Some(t), Some(x)) = (self.batched_seconds, self.speedup_vs_batched()) {
            writeln!(
                f,
                "torch_batched.py:  {t:.2} s (16 runs in lockstep, --threads 1): vqsim is {x:.1}× faster [≥ 4×]"
            )?;
        }
        writeln!(
            f,
            "metrics overhead:  {:.0}% of the training seconds [≤ 30%]; {:.0}% with train.history_every = 5",
            100.0 * self.overhead(),
            100.0 * self.overhead_sparse()
        )?;
        writeln!(
            f,
            "sweep of 16 runs:  {:.2} s with 1 thread, {:.2} s with {} (early and deferred, wall): ratio {:.2} [≤ 0.53]",
            self.sweep_1,
            self.sweep_n,
            self.threads,
            self.sweep_ratio()
        )?;
        if let Some((runs, wall)) = self.capacity {
            writeln!(
                f,
                "capacity scenario: {runs} runs in {wall:.1} s with {} threads: {:.1} runs/s (once)",
                self.threads,
                runs as f64 / wall
            )?;
        }
        Ok(())
    }
}

/// Every measurement of the report; `progress` is told what is being timed.
pub fn run(opts: &BenchOptions, progress: impl Fn(&str)) -> Result<BenchReport, BenchError> {
    let repeat = opts.repeat.max(1);
    let scratch = &opts.scratch;
    std::fs::create_dir_all(scratch).map_err(|source| BenchError::Scratch {
        path: scratch.clone(),
        source,
    })?;
    let result = (|| {
        progress("training steps");
        let steps = (0..repeat)
            .map(|_| steps_per_second(&RunConfig::default()))
            .collect::<Result<Vec<f64>, _>>()?;
        progress("GEMM peak");
        let peak = median((0..repeat).map(|_| gemm_peak(PEAK_SIDE)).collect());
        progress("the step's products, faer and matrixmultiply");
        let products = product_rates(repeat);
        let sse_after = sse_after_product(repeat);
        let scenario_file = write_scratch(scratch, "bench_early.toml", ONE_RUN)?;
        let (mut ours, mut torch) = (Vec::new(), Vec::new());
        for _ in 0..repeat {
            progress("one default run");
            ours.push(sweep_timed(scratch, ONE_RUN, 1)?.1);
            if let Some(t) = &opts.torch {
                progress("torch_ref.py");
                torch.push(torch_seconds(t, &scenario_file)?);
            }
        }
        let (mut wall, mut training, mut batched) = (Vec::new(), Vec::new(), Vec::new());
        let (mut sparse_wall, mut sparse_training) = (Vec::new(), Vec::new());
        for _ in 0..repeat {
            progress("16 early runs, 1 thread");
            let (w, t) = sweep_timed(scratch, SWEEP_EARLY, 1)?;
            wall.push(w);
            training.push(t);
            progress("16 early runs, 1 thread, history every 5 epochs");
            let (w, t) = sweep_timed(scratch, &format!("{SWEEP_EARLY}{SPARSE_HISTORY}"), 1)?;
            sparse_wall.push(w);
            sparse_training.push(t);
            if let Some(t) = &opts.torch {
                progress("torch_batched.py 16");
                batched.push(batched_seconds(t)?);
            }
        }
        let (mut one, mut many) = (Vec::new(), Vec::new());
        for _ in 0..repeat {
            progress("sweep, 1 thread");
            one.push(sweep_timed(scratch, SWEEP, 1)?.0);
            progress(&format!("sweep, {} threads", opts.threads));
            many.push(sweep_timed(scratch, SWEEP, opts.threads)?.0);
        }
        let capacity = match &opts.capacity {
            Some(path) => {
                progress("capacity scenario");
                Some(capacity(scratch, path, opts.threads)?)
            }
            None => None,
        };
        Ok(BenchReport {
            repeat,
            steps_per_second: median(steps),
            step_flops: step_flops(&RunConfig::default()),
            gemm_peak: peak,
            products,
            sse_after,
            run_seconds: median(ours),
            torch_seconds: (!torch.is_empty()).then(|| median(torch)),
            early16_wall: median(wall),
            early16_training: median(training),
            early16_sparse: (median(sparse_wall), median(sparse_training)),
            batched_seconds: (!batched.is_empty()).then(|| median(batched)),
            sweep_1: median(one),
            threads: opts.threads,
            sweep_n: median(many),
            capacity,
        })
    })();
    // Best effort: a leftover scratch directory under the temp dir is harmless.
    let _ = std::fs::remove_dir_all(scratch);
    result
}

/// Quantized training steps per second on the default run's data, model and codebook (seed 0),
/// on this thread, after one warm-up epoch.
pub fn steps_per_second(cfg: &RunConfig) -> Result<f64, BenchError> {
    let data = Mixture::sample(&cfg.data, &mut stream(0, Stream::Data));
    let mut model = Autoencoder::new(cfg, &mut stream(0, Stream::Weights));
    let z = model.encoder.infer(data.x.view());
    let mut vq = Quantizer::init(cfg, z.view(), 0).map_err(|_| BenchError::Init)?;
    let mut shuffle = stream(0, Stream::Shuffle);
    let mut order: Vec<usize> = (0..data.len()).collect();
    let b = cfg.train.batch_size;
    let mut batch = Array2::zeros((b, cfg.data.dim)); // (batch, d)
    let mut steps = 0;
    let mut start = Instant::now();
    let warm_up = data.len().div_ceil(b);
    while steps < warm_up + TIMED_STEPS {
        order.shuffle(&mut shuffle);
        for chunk in order.chunks(b) {
            if steps == warm_up {
                start = Instant::now();
            }
            let mut rows = batch.slice_mut(s![..chunk.len(), ..]);
            for (mut row, &i) in rows.outer_iter_mut().zip(chunk) {
                row.assign(&data.x.row(i));
            }
            model.step(rows.view(), Some(&mut vq));
            steps += 1;
            if steps == warm_up + TIMED_STEPS {
                break;
            }
        }
    }
    Ok(TIMED_STEPS as f64 / start.elapsed().as_secs_f64())
}

/// FLOPs of one training step of `cfg`'s model at full batch: 2·batch·fan_in·fan_out per
/// product; forward, then backward's xᵀ·gy for every layer and gy·Wᵀ for every layer but the
/// encoder's first (its input needs no gradient).
pub fn step_flops(cfg: &RunConfig) -> f64 {
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

/// The matrix products of one training step at the default shapes (batch 256, width 64,
/// d = m = 2): what, rows × inner → cols, and whether the left / right operand is a transposed
/// view, as the layers pass them.
const PRODUCTS: [Product; 8] = [
    ("first layer, forward", (256, 2, 64), false, false),
    ("hidden layer, forward", (256, 64, 64), false, false),
    ("output layer, forward", (256, 64, 2), false, false),
    ("first layer, dW = xᵀ·gy", (2, 256, 64), true, false),
    ("hidden layer, dW", (64, 256, 64), true, false),
    ("output layer, dW", (64, 256, 2), true, false),
    ("hidden layer, dx = gy·Wᵀ", (256, 64, 64), false, true),
    ("output layer, dx", (256, 2, 64), false, true),
];

/// What, (rows, inner, cols), left operand transposed, right operand transposed.
type Product = (&'static str, (usize, usize, usize), bool, bool);

/// One product of `PRODUCTS` on both GEMM codes (FLOP/s, 1 thread).
#[derive(Debug, Clone)]
pub struct ProductRate {
    pub what: &'static str,
    pub shape: (usize, usize, usize),
    /// vqsim's `matmul` (faer).
    pub faer: f64,
    /// ndarray's `general_mat_mul` (matrixmultiply), what vqsim used before.
    pub matrixmultiply: f64,
}

/// Rates of every product of `PRODUCTS` on both GEMM codes, medians of `repeat` rounds that
/// alternate the two.
pub fn product_rates(repeat: usize) -> Vec<ProductRate> {
    PRODUCTS
        .iter()
        .map(|&(what, (m, k, n), ta, tb)| {
            let a = operand(if ta { (k, m) } else { (m, k) });
            let b = operand(if tb { (n, k) } else { (k, n) });
            let a = if ta { a.t() } else { a.view() };
            let b = if tb { b.t() } else { b.view() };
            let mut c = Array2::<f32>::zeros((m, n)); // (m, n)
            let flops = (2 * m * k * n) as f64;
            let (mut faer, mut mm) = (Vec::new(), Vec::new());
            for _ in 0..repeat {
                faer.push(rate(flops, || matmul(c.view_mut(), Into::Overwrite, a, b)));
                mm.push(rate(flops, || general_mat_mul(1.0, &a, &b, 0.0, &mut c)));
            }
            std::hint::black_box(&c);
            ProductRate {
                what,
                shape: (m, k, n),
                faer: median(faer),
                matrixmultiply: median(mm),
            }
        })
        .collect()
}

/// Time of an SSE loop (ndarray's dot, as the losses and metrics use it) right after a
/// product over its time after none: after vqsim's `matmul`, and after faer's product alone.
pub fn sse_after_product(repeat: usize) -> (f64, f64) {
    let (a, b) = (operand((256, 64)), operand((64, 64)));
    let mut c = Array2::<f32>::zeros((256, 64)); // (256, 64)
    let v = ndarray::Array1::from_iter((0..1024).map(|i| i as f32 * 1e-3));
    let sse = || {
        let start = Instant::now();
        let s: f32 = (0..20_000).map(|_| v.dot(&v)).sum();
        std::hint::black_box(s);
        start.elapsed().as_secs_f64()
    };
    let (mut ours, mut alone) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        clear_upper_registers();
        let clean = sse();
        matmul(c.view_mut(), Into::Overwrite, a.view(), b.view());
        ours.push(sse() / clean);
        faer::linalg::matmul::matmul(
            faer::MatMut::from_row_major_slice_mut(c.as_slice_mut().expect("standard"), 256, 64),
            faer::Accum::Replace,
            faer::MatRef::from_row_major_slice(a.as_slice().expect("standard"), 256, 64),
            faer::MatRef::from_row_major_slice(b.as_slice().expect("standard"), 64, 64),
            1.0,
            faer::Par::Seq,
        );
        alone.push(sse() / clean);
        clear_upper_registers();
    }
    (median(ours), median(alone))
}

/// FLOP/s of vqsim's `matmul` on a `side`³ product, on this thread.
pub fn gemm_peak(side: usize) -> f64 {
    let (a, b) = (operand((side, side)), operand((side, side)));
    let mut c = Array2::<f32>::zeros((side, side));
    let peak = rate((2 * side * side * side) as f64, || {
        matmul(c.view_mut(), Into::Overwrite, a.view(), b.view())
    });
    std::hint::black_box(&c);
    peak
}

/// A (rows, cols) matrix of small integers, exact in f32.
fn operand((rows, cols): (usize, usize)) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.0)
}

/// FLOP/s of `product` (`flops` a call) over about 10⁹ FLOPs, after one warm-up call.
fn rate(flops: f64, mut product: impl FnMut()) -> f64 {
    product();
    let reps = (1e9 / flops).ceil() as usize;
    let start = Instant::now();
    for _ in 0..reps {
        product();
    }
    flops * reps as f64 / start.elapsed().as_secs_f64()
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
fn capacity(scratch: &Path, path: &Path, threads: usize) -> Result<(usize, f64), BenchError> {
    let scenario = Scenario::load(path).map_err(|e| BenchError::Capacity(e.to_string()))?;
    let opts = quiet_sweep(scratch, threads)?;
    let start = Instant::now();
    sweep::run_sweep(&scenario, &opts)?;
    Ok((scenario.runs.len(), start.elapsed().as_secs_f64()))
}

/// Writes `text` to `scratch/name`.
fn write_scratch(scratch: &Path, name: &str, text: &str) -> Result<PathBuf, BenchError> {
    let path = scratch.join(name);
    std::fs::write(&path, text).map_err(|source| BenchError::Scratch {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Options for a sweep into a fresh `scratch/out`, without progress output.
fn quiet_sweep(scratch: &Path, threads: usize) -> Result<SweepOptions, BenchError> {
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

/// `seconds` printed by `torch_ref.py SCENARIO --threads 1`.
pub fn torch_seconds(torch: &TorchRef, scenario: &Path) -> Result<f64, BenchError> {
    let mut cmd = Command::new(&torch.python);
    cmd.arg(&torch.script)
        .arg(scenario)
        .args(["--threads", "1"]);
    python_seconds(cmd)
}

/// `seconds` printed by `torch_batched.py 16 --threads 1` (k-means init and training of 16
/// early default runs in lockstep).
pub fn batched_seconds(torch: &TorchRef) -> Result<f64, BenchError> {
    let mut cmd = Command::new(&torch.python);
    cmd.arg(&torch.batched).args(["16", "--threads", "1"]);
    python_seconds(cmd)
}

/// Runs `cmd` and reads `seconds` from the last line it prints.
fn python_seconds(mut cmd: Command) -> Result<f64, BenchError> {
    let command = format!("{cmd:?}");
    let fail = |reason: String| BenchError::Torch {
        command: command.clone(),
        reason,
    };
    let out = cmd.output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or("").to_string();
        return Err(fail(format!("{}: {last}", out.status)));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("");
    json_number(last, "seconds")
        .ok_or_else(|| fail(format!("no `seconds` in its output: {stdout}")))
}

/// The number after `"key":` in a flat JSON object (no JSON crate for one field).
pub fn json_number(json: &str, key: &str) -> Option<f64> {
    let pattern = format!("\"{key}\"");
    let rest = &json[json.find(&pattern)? + pattern.len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Median of the measurements (upper middle for an even count); NaN for none.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_seconds_from_torch_ref_output() {
        let line = r#"{"seed": 0, "mse": 17.9, "modes_hit": 5, "seconds": 1.9427596519999497}"#;
        assert_eq!(json_number(line, "seconds"), Some(1.9427596519999497));
        assert_eq!(json_number(line, "mse"), Some(17.9));
        assert_eq!(json_number(r#"{"seconds" : 2e-3}"#, "seconds"), Some(0.002));
        assert_eq!(json_number(line, "missing"), None);
        assert_eq!(json_number(r#"{"seconds": "x"}"#, "seconds"), None);
    }

    #[test]
    fn bench_scenarios_are_the_default_run_and_16_default_size_runs() {
        let one = Scenario::from_str(ONE_RUN, None, "x").unwrap();
        let mut early = RunConfig::default();
        early.schedule.kind = crate::sim::config::ScheduleKind::Early;
        assert_eq!(one.runs.len(), 1);
        assert_eq!((one.runs[0].seed, &one.runs[0].config), (0, &early));
        let builtin = Scenario::builtin_default();
        assert!(builtin.runs.iter().any(|r| r.id == one.runs[0].id));

        let sweep = Scenario::from_str(SWEEP, None, "x").unwrap();
        assert_eq!(sweep.runs.len(), 16);
        for run in &sweep.runs {
            let mut cfg = run.config.clone();
            cfg.schedule.kind = early.schedule.kind;
            assert_eq!(cfg, early, "every run has the default size");
        }
    }

    #[test]
    fn step_flops_count_the_default_products() {
        // Layers 2→64→64→2 twice, batch 256: forward 2·256·(128 + 4096 + 128) per network,
        // backward twice that less the encoder's input gy·Wᵀ (2·256·2·64).
        let forward = 2.0 * 2.0 * 256.0 * (128.0 + 4096.0 + 128.0);
        let expected = 3.0 * forward - 2.0 * 256.0 * 128.0;
        assert_eq!(step_flops(&RunConfig::default()), expected);
    }

    #[test]
    fn early16_is_16_early_default_runs() {
        let sweep = Scenario::from_str(SWEEP_EARLY, None, "x").unwrap();
        let mut early = RunConfig::default();
        early.schedule.kind = crate::sim::config::ScheduleKind::Early;
        assert_eq!(sweep.runs.len(), 16);
        assert!(sweep.runs.iter().all(|r| r.config == early));
    }

    #[test]
    fn median_takes_the_middle() {
        let m = |v: &[f64]| median(v.to_vec());
        assert_eq!(m(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(m(&[4.0, 1.0]), 4.0);
        assert!(m(&[]).is_nan());
    }
}

//! `vqsim bench`: every ratio of the performance page in one run. Training steps per second
//! and the step's FLOP rate against the single-core peak of the GEMM code vqsim uses
//! (`sim::matmul`, faer), the step's products on faer and matrixmultiply (`gemm`); the time of
//! one default run and of one at S = 1 024, and what their evaluations add; a 16-run early
//! sweep, whole (metrics and result files included); how the mixed 16-run sweep scales from 1
//! thread to more; the scale case (S = 4 096) with k-means init against normal init; runs per
//! second of the capacity scenario. Optionally times the PyTorch references on the same work
//! (`torch`): `torch_ref.py` (one run, at both codebook sizes) and `torch_batched.py` (16 runs
//! in lockstep).
//!
//! Timings are medians over `repeat` rounds; in each round the compared programs run one after
//! the other, so a change of machine load hits both.

mod engine;
mod gemm;
mod torch;

use std::fmt;
use std::path::PathBuf;

pub use engine::{
    step_flops, steps_per_second, sweep_timed, ONE_RUN, ONE_RUN_S1024, SCALE, SPARSE_HISTORY,
    SWEEP, SWEEP_EARLY,
};
pub use gemm::{gemm_peak, product_rates, sse_after_product, ProductRate};
pub use torch::{batched_seconds, json_seconds, torch_seconds, TorchRef};

use crate::sim::config::RunConfig;
use crate::study::sweep::SweepError;
use engine::{capacity, write_scratch};

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
    #[error("the benchmarked configuration breaks the rule of `{0}`")]
    Config(String),
    #[error("cannot read the capacity scenario: {0}")]
    Capacity(String),
    #[error("cannot run the PyTorch reference `{command}`: {reason}")]
    Torch { command: String, reason: String },
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
    /// Wall time of the one default run's sweep (1 thread): with `run_seconds`, what its
    /// evaluations (a history row every epoch), data and result files add.
    pub run_wall: f64,
    /// The same three at S = 1 024: `seconds`, torch_ref.py's, and the wall time.
    pub s1024_seconds: f64,
    pub s1024_torch: Option<f64>,
    pub s1024_wall: f64,
    /// The S = 1 024 run with `threads` threads: wall time and `seconds` (its evaluations
    /// measured beside its training).
    pub s1024_aside: (f64, f64),
    /// `seconds` of the scale case with k-means init and with normal init (`threads` threads).
    pub scale_kmeans: f64,
    pub scale_normal: f64,
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

    /// How many times faster than torch_ref.py the S = 1 024 run is.
    pub fn s1024_speedup(&self) -> Option<f64> {
        self.s1024_torch.map(|t| t / self.s1024_seconds)
    }

    /// What the one default run's evaluations and files add to its training seconds.
    pub fn eval_overhead(&self) -> f64 {
        self.run_wall / self.run_seconds - 1.0
    }

    /// The same at S = 1 024.
    pub fn eval_overhead_s1024(&self) -> f64 {
        self.s1024_wall / self.s1024_seconds - 1.0
    }

    /// `eval_overhead_s1024` with `threads` threads.
    pub fn eval_overhead_aside(&self) -> f64 {
        self.s1024_aside.0 / self.s1024_aside.1 - 1.0
    }

    /// The scale case's k-means-init run over its normal-init run.
    pub fn scale_ratio(&self) -> f64 {
        self.scale_kmeans / self.scale_normal
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
        writeln!(f, "medians of {r}; targets in brackets")?;
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
            "S = 1 024 run:     {:.3} s (the same run with codebook_size = 1024)",
            self.s1024_seconds
        )?;
        if let (Some(t), Some(x)) = (self.s1024_torch, self.s1024_speedup()) {
            writeln!(
                f,
                "torch_ref.py:      {t:.3} s (same run, --threads 1): vqsim is {x:.1}× faster [≥ 8×]"
            )?;
        }
        writeln!(
            f,
            "evaluation:        {:.0}% of the training seconds at S = 64, {:.0}% at S = 1 024 (one run each, a history row every epoch, files included) [≤ 30%]",
            100.0 * self.eval_overhead(),
            100.0 * self.eval_overhead_s1024()
        )?;
        writeln!(
            f,
            "beside training:   {:.0}% at S = 1 024 with {} threads (the evaluations on the idle thread): {:.3} s wall, {:.3} s training, against {:.3} s wall on 1 thread",
            100.0 * self.eval_overhead_aside(),
            self.threads,
            self.s1024_aside.0,
            self.s1024_aside.1,
            self.s1024_wall
        )?;
        writeln!(
            f,
            "scale case:        {:.2} s with k-means init, {:.2} s with normal init ({} threads; d = 64, m = 16, S = 4 096, 40 000 points, 5 early epochs): ratio {:.2} [≤ 1.5]",
            self.scale_kmeans,
            self.scale_normal,
            self.threads,
            self.scale_ratio()
        )?;
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
    let default = crate::sim::valid::validate(&RunConfig::default(), None)
        .map_err(|e| BenchError::Config(e.key))?;
    let scratch = &opts.scratch;
    std::fs::create_dir_all(scratch).map_err(|source| BenchError::Scratch {
        path: scratch.clone(),
        source,
    })?;
    let result = (|| {
        progress("training steps");
        let steps = (0..repeat)
            .map(|_| steps_per_second(&default))
            .collect::<Result<Vec<f64>, _>>()?;
        progress("GEMM peak");
        let peak = median((0..repeat).map(|_| gemm_peak(PEAK_SIDE)).collect());
        progress("the step's products, faer and matrixmultiply");
        let products = product_rates(repeat);
        let sse_after = sse_after_product(repeat);
        progress("one default run");
        let (run_wall, ours, torch) = one_run(opts, ONE_RUN, "bench_early.toml")?;
        progress("one run at S = 1 024");
        let (s1024_wall, s1024, s1024_torch) =
            one_run(opts, ONE_RUN_S1024, "bench_early_s1024.toml")?;
        let (mut aside_wall, mut aside_seconds) = (Vec::new(), Vec::new());
        for _ in 0..repeat {
            progress(&format!("one run at S = 1 024, {} threads", opts.threads));
            let (w, t) = sweep_timed(scratch, ONE_RUN_S1024, opts.threads)?;
            aside_wall.push(w);
            aside_seconds.push(t);
        }
        let (mut scale_kmeans, mut scale_normal) = (Vec::new(), Vec::new());
        for _ in 0..repeat {
            progress("scale case, k-means init");
            let text = format!("{SCALE}init = \"kmeans\"\n");
            scale_kmeans.push(sweep_timed(scratch, &text, opts.threads)?.1);
            progress("scale case, normal init");
            let text = format!("{SCALE}init = \"normal\"\n");
            scale_normal.push(sweep_timed(scratch, &text, opts.threads)?.1);
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
            step_flops: step_flops(&default),
            gemm_peak: peak,
            products,
            sse_after,
            run_seconds: ours,
            torch_seconds: torch,
            run_wall,
            s1024_seconds: s1024,
            s1024_torch,
            s1024_wall,
            s1024_aside: (median(aside_wall), median(aside_seconds)),
            scale_kmeans: median(scale_kmeans),
            scale_normal: median(scale_normal),
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

/// The one run of scenario `text` (1 thread) against torch_ref.py on the same text, saved as
/// `file`, `repeat` rounds: medians of the wall time, the run's `seconds` and torch_ref.py's.
fn one_run(
    opts: &BenchOptions,
    text: &str,
    file: &str,
) -> Result<(f64, f64, Option<f64>), BenchError> {
    let scenario_file = write_scratch(&opts.scratch, file, text)?;
    let (mut wall, mut ours, mut torch) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..opts.repeat.max(1) {
        let (w, t) = sweep_timed(&opts.scratch, text, 1)?;
        wall.push(w);
        ours.push(t);
        if let Some(t) = &opts.torch {
            torch.push(torch_seconds(t, &scenario_file)?);
        }
    }
    Ok((
        median(wall),
        median(ours),
        (!torch.is_empty()).then(|| median(torch)),
    ))
}

/// Median of the measurements (upper middle for an even count); NaN for none.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::scenario::Scenario;

    #[test]
    fn bench_scenarios_are_the_default_run_and_16_default_size_runs() {
        let one = Scenario::from_str(ONE_RUN, None, "x").unwrap();
        let mut early = RunConfig::default();
        early.schedule.kind = crate::sim::config::ScheduleKind::Early;
        assert_eq!(one.runs.len(), 1);
        assert_eq!((one.runs[0].seed, one.runs[0].config.config()), (0, &early));
        let builtin = Scenario::builtin_default();
        assert!(builtin.runs.iter().any(|r| r.id == one.runs[0].id));

        let sweep = Scenario::from_str(SWEEP, None, "x").unwrap();
        assert_eq!(sweep.runs.len(), 16);
        for run in &sweep.runs {
            let mut cfg = run.config.config().clone();
            cfg.schedule.kind = early.schedule.kind;
            assert_eq!(cfg, early, "every run has the default size");
        }
    }

    #[test]
    fn the_s1024_run_and_the_scale_case_are_what_the_report_says() {
        let mut early = RunConfig::default();
        early.schedule.kind = crate::sim::config::ScheduleKind::Early;
        let one = Scenario::from_str(ONE_RUN_S1024, None, "x").unwrap();
        let mut big = early.clone();
        big.quantizer.codebook_size = 1024;
        assert_eq!((one.runs.len(), one.runs[0].config.config()), (1, &big));
        for init in ["kmeans", "normal"] {
            let text = format!("{SCALE}init = \"{init}\"\n");
            let scale = Scenario::from_str(&text, None, "x").unwrap();
            let cfg = &scale.runs[0].config;
            assert_eq!(scale.runs.len(), 1);
            assert_eq!(
                (cfg.data.modes * cfg.data.points_per_mode, cfg.data.dim),
                (40_000, 64)
            );
            assert_eq!((cfg.model.latent_dim, cfg.model.width), (16, 128));
            assert_eq!((cfg.quantizer.codebook_size, cfg.train.epochs), (4096, 5));
            assert_eq!(cfg.schedule.kind, early.schedule.kind);
            assert_eq!(format!("{:?}", cfg.quantizer.init).to_lowercase(), init);
        }
    }

    #[test]
    fn step_flops_count_the_default_products() {
        // Layers 2→64→64→2 twice, batch 256: forward 2·256·(128 + 4096 + 128) per network,
        // backward twice that less the encoder's input gy·Wᵀ (2·256·2·64).
        let forward = 2.0 * 2.0 * 256.0 * (128.0 + 4096.0 + 128.0);
        let expected = 3.0 * forward - 2.0 * 256.0 * 128.0;
        let default = crate::sim::valid::validate(&RunConfig::default(), None).unwrap();
        assert_eq!(step_flops(&default), expected);
    }

    #[test]
    fn early16_is_16_early_default_runs() {
        let sweep = Scenario::from_str(SWEEP_EARLY, None, "x").unwrap();
        let mut early = RunConfig::default();
        early.schedule.kind = crate::sim::config::ScheduleKind::Early;
        assert_eq!(sweep.runs.len(), 16);
        assert!(sweep.runs.iter().all(|r| *r.config == early));
    }

    #[test]
    fn median_takes_the_middle() {
        let m = |v: &[f64]| median(v.to_vec());
        assert_eq!(m(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(m(&[4.0, 1.0]), 4.0);
        assert!(m(&[]).is_nan());
    }
}

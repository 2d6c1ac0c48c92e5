//! `vqsim bench`: training steps per second, the time of one default run, and how a sweep of
//! default-size runs scales from 1 thread to more (issue 3, item 7). Optionally times the
//! PyTorch reference (`torch_ref.py`) on the same run, side by side.
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
use crate::sim::data::Mixture;
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
/// Quantized steps timed per round of the steps-per-second measurement (after one warm-up epoch).
const TIMED_STEPS: usize = 400;

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
}

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Rounds per measurement; medians are reported.
    pub repeat: usize,
    /// Threads of the sweep compared with 1 thread.
    pub threads: usize,
    pub torch: Option<TorchRef>,
    /// Scratch directory for sweep outputs; removed at the end.
    pub scratch: PathBuf,
}

impl BenchOptions {
    pub fn new() -> BenchOptions {
        BenchOptions {
            repeat: 3,
            threads: 2,
            torch: None,
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
    /// `seconds` of the one default run (as in runs.csv: training and codebook init).
    pub run_seconds: f64,
    /// `seconds` reported by torch_ref.py for the same run, when asked for.
    pub torch_seconds: Option<f64>,
    /// Wall time of the 16-run sweep with 1 thread.
    pub sweep_1: f64,
    /// Threads of the compared sweep, and its wall time.
    pub threads: usize,
    pub sweep_n: f64,
}

impl BenchReport {
    /// How many times faster than the PyTorch reference the one run is.
    pub fn speedup_vs_torch(&self) -> Option<f64> {
        self.torch_seconds.map(|t| t / self.run_seconds)
    }

    /// Sweep time with `threads` threads over its time with 1 thread.
    pub fn sweep_ratio(&self) -> f64 {
        self.sweep_n / self.sweep_1
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.repeat;
        writeln!(
            f,
            "training steps:   {:.0} steps/s (default model, batch 256, quantized, 1 thread)",
            self.steps_per_second
        )?;
        writeln!(
            f,
            "one default run:  {:.3} s (early arm, seed 0, 1 thread; `seconds` of runs.csv; median of {r})",
            self.run_seconds
        )?;
        if let (Some(t), Some(x)) = (self.torch_seconds, self.speedup_vs_torch()) {
            writeln!(
                f,
                "torch_ref.py:     {t:.3} s (same run, --threads 1; median of {r}): vqsim is {x:.1}× faster"
            )?;
        }
        writeln!(
            f,
            "sweep of 16 runs: {:.2} s with 1 thread, {:.2} s with {} (wall, median of {r}): ratio {:.2}",
            self.sweep_1,
            self.sweep_n,
            self.threads,
            self.sweep_ratio()
        )
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
        let scenario_file = scratch.join("bench_early.toml");
        std::fs::write(&scenario_file, ONE_RUN).map_err(|source| BenchError::Scratch {
            path: scenario_file.clone(),
            source,
        })?;
        let (mut ours, mut torch) = (Vec::new(), Vec::new());
        for _ in 0..repeat {
            progress("one default run");
            ours.push(one_run_seconds(scratch)?);
            if let Some(t) = &opts.torch {
                progress("torch_ref.py");
                torch.push(torch_seconds(t, &scenario_file)?);
            }
        }
        let (mut one, mut many) = (Vec::new(), Vec::new());
        for _ in 0..repeat {
            progress("sweep, 1 thread");
            one.push(sweep_seconds(scratch, 1)?);
            progress(&format!("sweep, {} threads", opts.threads));
            many.push(sweep_seconds(scratch, opts.threads)?);
        }
        Ok(BenchReport {
            repeat,
            steps_per_second: median(steps),
            run_seconds: median(ours),
            torch_seconds: (!torch.is_empty()).then(|| median(torch)),
            sweep_1: median(one),
            threads: opts.threads,
            sweep_n: median(many),
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

/// `seconds` of the one default run, run as `vqsim run --threads 1` runs it.
pub fn one_run_seconds(scratch: &Path) -> Result<f64, BenchError> {
    let scenario = Scenario::from_str(ONE_RUN, None, "bench_early")
        .unwrap_or_else(|e| unreachable!("the bench scenario is valid: {e}"));
    let seconds = Arc::new(Mutex::new(f64::NAN));
    let mut opts = quiet_sweep(scratch, 1)?;
    let slot = seconds.clone();
    opts.on_run_done = Some(Arc::new(move |_, outcome| {
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = outcome.seconds;
    }));
    sweep::run_sweep(&scenario, &opts)?;
    let s = *seconds.lock().unwrap_or_else(|e| e.into_inner());
    Ok(s)
}

/// Wall time of the 16-run sweep with `threads` threads, from scratch.
pub fn sweep_seconds(scratch: &Path, threads: usize) -> Result<f64, BenchError> {
    let scenario = Scenario::from_str(SWEEP, None, "bench_sweep")
        .unwrap_or_else(|e| unreachable!("the bench scenario is valid: {e}"));
    let opts = quiet_sweep(scratch, threads)?;
    let start = Instant::now();
    sweep::run_sweep(&scenario, &opts)?;
    Ok(start.elapsed().as_secs_f64())
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
    json_number(&stdout, "seconds")
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
    fn median_takes_the_middle() {
        let m = |v: &[f64]| median(v.to_vec());
        assert_eq!(m(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(m(&[4.0, 1.0]), 4.0);
        assert!(m(&[]).is_nan());
    }
}

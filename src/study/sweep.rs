//! The sweep engine: a scenario's runs in parallel, each published as soon as it finishes,
//! resumable after any interruption, splittable into shards, and the tables assembled at the
//! end from whatever run directories exist.
//!
//! Every run's randomness comes from its own seed, and the tables are assembled in expansion
//! order from files, so the output bytes do not depend on the thread count or on which run
//! finished first (only `seconds` does).

use std::collections::HashSet;
use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::atomic;
use crate::sim::config::{RunConfig, ScheduleKind};
use crate::sim::train::{self, RunOutcome, Status};
use crate::study::memory;
use crate::study::scenario::{RunSpec, Scenario, ScenarioError};
use crate::study::shard::{Shard, ShardError};
use crate::study::store::{self, Assembly, Manifest, OutputError};

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(
        "--out `{0}` is a file, not a directory; give a directory path (it is created if missing)"
    )]
    OutIsFile(PathBuf),
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error("--threads must be at least 1")]
    ZeroThreads,
    #[error("--threads {asked} is too many: at most {max} (4 × the {cores} cores available); results do not depend on the thread count")]
    TooManyThreads {
        asked: usize,
        max: usize,
        cores: usize,
    },
    #[error("{scenario}: the sweep needs about {} of memory ({} at once, the largest {}: {drivers}) but {} is available ({limit_from}); lower those keys or --threads, or raise --max-memory if the estimate is too cautious", memory::human_bytes(*needed), plural(*concurrent, "run"), memory::human_bytes(*largest), memory::human_bytes(*limit))]
    TooMuchMemory {
        scenario: String,
        needed: u64,
        concurrent: usize,
        largest: u64,
        drivers: String,
        limit: u64,
        /// `--max-memory` or `MemAvailable in /proc/meminfo`.
        limit_from: String,
    },
    #[error("cannot write to --out at {path}: {source}; choose a writable directory with --out")]
    OutNotWritable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another vqsim process ({holder}) is already running this sweep in {dir} (lock file {lock}); wait for it to finish, or split the work between processes with --shard I/N")]
    Locked {
        dir: PathBuf,
        lock: PathBuf,
        /// "pid 123 on host h", or "unknown pid" when the holder has not written it yet.
        holder: String,
    },
    #[error("{source}; the {finished} runs finished so far are kept in {dir}: fix the cause (e.g. free disk space) and run the same command again to resume")]
    WriteFailed {
        dir: PathBuf,
        finished: usize,
        source: OutputError,
    },
    #[error("`{}` is not a sweep directory: it has no scenario.toml; give <out>/<scenario name>{}", .0.display(), sweeps_inside(.0))]
    NotASweep(PathBuf),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start {threads} worker threads: {source}")]
    Pool {
        threads: usize,
        source: rayon::ThreadPoolBuildError,
    },
    #[error("cannot install the Ctrl-C/SIGTERM handler: {0}")]
    Signal(String),
    #[error("sweep cancelled: {finished} of {runs} runs have results in {dir}; run the same command again to resume")]
    Cancelled {
        dir: PathBuf,
        finished: usize,
        runs: usize,
    },
}

impl SweepError {
    /// Process exit status: 2 for bad input, 130 for an interrupted sweep (as shells report
    /// SIGINT), 1 for anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            SweepError::OutIsFile(_)
            | SweepError::Shard(_)
            | SweepError::ZeroThreads
            | SweepError::TooManyThreads { .. }
            | SweepError::TooMuchMemory { .. }
            | SweepError::OutNotWritable { .. }
            | SweepError::Locked { .. }
            | SweepError::NotASweep(_)
            | SweepError::Scenario(_) => 2,
            SweepError::Cancelled { .. } => 130,
            _ => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, plain lines otherwise.
    #[default]
    Auto,
    Bar,
    /// A line at most every 5 s and at the end, for CI and Slurm logs.
    Plain,
    Quiet,
}

/// Called after each run is published, from the worker thread that ran it.
pub type RunHook = Arc<dyn Fn(&RunSpec, &RunOutcome) + Send + Sync>;

#[derive(Clone)]
pub struct SweepOptions {
    /// Results go to `out/<scenario name>/`.
    pub out: PathBuf,
    /// Worker threads; None = all cores.
    pub threads: Option<usize>,
    pub shard: Shard,
    /// Refuse sweeps whose estimated peak memory exceeds this many bytes; None = the
    /// memory available now (Linux), or no limit where that is unknown.
    pub max_memory: Option<u64>,
    pub progress: ProgressMode,
    pub snapshots: Snapshots,
    /// Set by Ctrl-C/SIGTERM while the sweep runs, by the caller to stop it, and by the sweep
    /// itself after a write error. Runs in flight are abandoned; finished runs stay.
    pub cancel: Arc<AtomicBool>,
    pub on_run_done: Option<RunHook>,
}

impl SweepOptions {
    pub fn new(out: impl Into<PathBuf>) -> SweepOptions {
        SweepOptions {
            out: out.into(),
            threads: None,
            shard: Shard::ALL,
            max_memory: None,
            progress: ProgressMode::Auto,
            snapshots: Snapshots::Figures,
            cancel: Arc::new(AtomicBool::new(false)),
            on_run_done: None,
        }
    }
}

/// Which runs keep their end-of-training snapshot (`runs/<id>/snapshot.npz`: every point's
/// data, embedding, reconstruction and code), the one large file of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Snapshots {
    /// The runs of the scenario's lowest seed: the ones the figures draw.
    Figures,
    /// Every run (e.g. to diagnose or re-plot any seed).
    All,
    /// No run: the tables only.
    None,
}

impl Snapshots {
    fn keeps(self, spec: &RunSpec, lowest_seed: u64) -> bool {
        match self {
            Snapshots::Figures => spec.seed == lowest_seed,
            Snapshots::All => true,
            Snapshots::None => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SweepReport {
    /// `out/<scenario name>`.
    pub dir: PathBuf,
    /// Runs in the scenario's expansion.
    pub runs: usize,
    /// Distinct runs in this shard.
    pub in_shard: usize,
    /// Runs of this shard already present when the sweep started.
    pub skipped: usize,
    /// Runs computed by this call.
    pub ran: usize,
    /// Of those, diverged.
    pub diverged: usize,
    /// What the assembled tables hold (all shards' runs present in the directory).
    pub assembly: Assembly,
    pub threads: usize,
    pub seconds: f64,
}

#[derive(Debug, Clone)]
pub struct MergeReport {
    pub dir: PathBuf,
    pub runs: usize,
    pub assembly: Assembly,
    /// (run index, run id) of the runs with no result yet, in expansion order.
    pub missing: Vec<(usize, String)>,
}

/// Flags of the sweeps running in this process; the signal handler sets them all.
static ACTIVE: Mutex<Vec<Arc<AtomicBool>>> = Mutex::new(Vec::new());
static HANDLER: OnceLock<Result<(), String>> = OnceLock::new();

/// Keeps `flag` subscribed to Ctrl-C/SIGTERM until dropped.
struct SignalGuard(Arc<AtomicBool>);

impl Drop for SignalGuard {
    fn drop(&mut self) {
        let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
        active.retain(|f| !Arc::ptr_eq(f, &self.0));
    }
}

fn watch_signals(flag: &Arc<AtomicBool>) -> Result<SignalGuard, SweepError> {
    let installed = HANDLER.get_or_init(|| {
        ctrlc::set_handler(|| {
            let active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
            // Outside a sweep (summary, figures) there is nothing to finish, and a second
            // interrupt asks to stop waiting: quit now, removing the temp files this process
            // is filling (those of a SIGKILL are removed by the next command).
            let again = active.iter().any(|f| f.load(Ordering::SeqCst));
            if active.is_empty() || again {
                atomic::remove_in_flight();
                eprintln!(
                    "vqsim: interrupted{}",
                    if again { " again, exiting now" } else { "" }
                );
                std::process::exit(130);
            }
            eprintln!("vqsim: interrupted; abandoning runs in flight (press again to quit now)");
            for f in active.iter() {
                f.store(true, Ordering::SeqCst);
            }
        })
        .map_err(|e| e.to_string())
    });
    installed.clone().map_err(SweepError::Signal)?;
    ACTIVE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(flag.clone());
    Ok(SignalGuard(flag.clone()))
}

/// `1 run`, `2 runs`.
pub fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// Runs done / total, diverged count and ETA, as a bar or as periodic lines.
///
/// The ETA comes from the expected cost of the runs (`expected_cost`), not their count:
/// runs differ in cost by orders of magnitude and the costliest start first. Cost per
/// second of one thread is measured on the finished runs; the remaining cost is shared
/// among the threads.
struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    total: usize,
    threads: usize,
    start: Instant,
    state: Mutex<ProgressState>,
    last_line: Mutex<Instant>,
}

struct ProgressState {
    done: usize,
    diverged: usize,
    /// Cost of the runs still to do, and cost and thread-seconds of those done here.
    cost_left: f64,
    cost_done: f64,
    secs_done: f64,
}

const LINE_EVERY: Duration = Duration::from_secs(5);

fn human_secs(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

impl ProgressState {
    fn eta(&self, total: usize, threads: usize) -> String {
        if self.done == total {
            return human_secs(0.0);
        }
        if self.secs_done <= 0.0 || self.cost_done <= 0.0 {
            return "?".into();
        }
        let per_thread = self.cost_done / self.secs_done;
        let parallel = threads.min(total - self.done).max(1) as f64;
        human_secs(self.cost_left / per_thread / parallel)
    }
}

impl Progress {
    fn new(
        mode: ProgressMode,
        total: usize,
        done_before: usize,
        cost: f64,
        threads: usize,
    ) -> Progress {
        let mode = match mode {
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bar,
            ProgressMode::Auto => ProgressMode::Plain,
            m => m,
        };
        let state = ProgressState {
            done: done_before,
            diverged: 0,
            cost_left: cost,
            cost_done: 0.0,
            secs_done: 0.0,
        };
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} runs, {msg}",
            )
            .expect("the template is valid")
            .progress_chars("=> ");
            // The message first: setting the position may draw the first frame.
            bar.set_message(Self::message(&state, total, threads));
            bar.set_style(style);
            bar.set_position(done_before as u64);
            bar
        });
        Progress {
            bar,
            plain: mode == ProgressMode::Plain,
            total,
            threads,
            start: Instant::now(),
            state: Mutex::new(state),
            last_line: Mutex::new(Instant::now()),
        }
    }

    fn message(state: &ProgressState, total: usize, threads: usize) -> String {
        format!(
            "{} diverged, eta {}",
            state.diverged,
            state.eta(total, threads)
        )
    }

    fn line(&self) -> String {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        format!(
            "[{}/{}] {} elapsed, {}",
            state.done,
            self.total,
            human_secs(self.start.elapsed().as_secs_f64()),
            Self::message(&state, self.total, self.threads)
        )
    }

    /// A run of expected cost `cost` finished after `secs` of one thread.
    fn run_done(&self, cost: f64, secs: f64, diverged: bool) {
        let message = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.done += 1;
            state.diverged += usize::from(diverged);
            state.cost_left = (state.cost_left - cost).max(0.0);
            state.cost_done += cost;
            state.secs_done += secs;
            Self::message(&state, self.total, self.threads)
        };
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(message);
        }
        if self.plain {
            let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() >= LINE_EVERY {
                *last = Instant::now();
                eprintln!("{}", self.line());
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
        if self.plain {
            eprintln!("{}", self.line());
        }
    }
}

/// The most worker threads `--threads` may ask for. More than a few per core only adds
/// memory and switching, and thousands exhaust the process's resources.
pub fn max_threads() -> (usize, usize) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (4 * cores, cores)
}

/// The lock that keeps two unsharded (or same-shard) processes out of one sweep directory.
/// The OS releases it when its holder exits, however it exits, so it is never stale.
fn lock_sweep(dir: &Path, shard: Shard) -> Result<fs::File, SweepError> {
    let name = if shard == Shard::ALL {
        ".vqsim.lock".to_string()
    } else {
        format!(".vqsim-shard-{}of{}.lock", shard.index(), shard.count())
    };
    let lock = dir.join(name);
    let not_writable = |source| SweepError::OutNotWritable {
        path: dir.to_path_buf(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock)
        .map_err(not_writable)?;
    match file.try_lock() {
        Ok(()) => {
            let me = format!("pid {} on host {}\n", std::process::id(), atomic::host());
            file.set_len(0).map_err(not_writable)?;
            file.write_all(me.as_bytes()).map_err(not_writable)?;
            Ok(file)
        }
        Err(fs::TryLockError::WouldBlock) => {
            // The holder writes its pid right after locking; give it a moment.
            let mut holder = String::new();
            for _ in 0..20 {
                holder = fs::read_to_string(&lock)
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                if !holder.is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if holder.is_empty() {
                holder = "unknown pid".into();
            }
            Err(SweepError::Locked {
                dir: dir.to_path_buf(),
                lock,
                holder,
            })
        }
        // A file system without locks (some network mounts): go on unprotected.
        Err(fs::TryLockError::Error(e)) => {
            eprintln!(
                "vqsim: warning: cannot lock {} ({e}); do not start a second process on this sweep",
                lock.display()
            );
            Ok(file)
        }
    }
}

/// Refuses the sweep if the runs of this shard in flight at once would not fit in memory.
fn check_memory(
    scenario: &Scenario,
    opts: &SweepOptions,
    threads: usize,
) -> Result<(), SweepError> {
    let (limit, limit_from) = match opts.max_memory {
        Some(m) => (m, "--max-memory"),
        None => match memory::available() {
            Some(m) => (m, "MemAvailable in /proc/meminfo"),
            None => return Ok(()),
        },
    };
    let runs: Vec<&RunSpec> = scenario
        .runs
        .iter()
        .filter(|r| opts.shard.contains(r.index))
        .collect();
    let est = memory::estimate(&runs, threads);
    if est.bytes <= limit {
        return Ok(());
    }
    Err(SweepError::TooMuchMemory {
        scenario: scenario.name.clone(),
        needed: est.bytes,
        concurrent: est.concurrent,
        largest: est.largest,
        drivers: est.drivers,
        limit,
        limit_from: limit_from.into(),
    })
}

/// ` (it holds out/a and out/b)` for a directory whose subdirectories are sweeps.
fn sweeps_inside(dir: &Path) -> String {
    let Ok(entries) = fs::read_dir(dir) else {
        return String::new();
    };
    let mut sweeps: Vec<String> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join(store::SCENARIO_TOML).is_file())
        .map(|p| format!("`{}`", p.display()))
        .collect();
    sweeps.sort();
    if sweeps.is_empty() {
        String::new()
    } else {
        format!(", such as {}", sweeps.join(" or "))
    }
}

/// Run the runs of `scenario` in `opts.shard` that have no result in `out/<name>/` yet, then
/// assemble the tables from every run present there.
pub fn run_sweep(scenario: &Scenario, opts: &SweepOptions) -> Result<SweepReport, SweepError> {
    let started = SystemTime::now();
    let t0 = Instant::now();

    // Bad input is reported before anything is created.
    // The nearest existing ancestor must be a directory, or create_dir_all would fail
    // half-way (`--out results.csv/x`).
    if let Some(existing) = opts.out.ancestors().find(|p| p.exists()) {
        if !existing.is_dir() {
            return Err(SweepError::OutIsFile(existing.to_path_buf()));
        }
    }
    let dir = opts.out.join(&scenario.name);
    if dir.exists() && !dir.is_dir() {
        return Err(SweepError::OutIsFile(dir));
    }
    let (max, cores) = max_threads();
    let threads = match opts.threads {
        Some(0) => return Err(SweepError::ZeroThreads),
        Some(asked) if asked > max => return Err(SweepError::TooManyThreads { asked, max, cores }),
        Some(n) => n,
        None => cores,
    };
    check_memory(scenario, opts, threads)?;
    // A pool of our own: the global one may be sized or used by the embedding program.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|source| SweepError::Pool { threads, source })?;
    let _signals = watch_signals(&opts.cancel)?;

    let runs_dir = dir.join(store::RUNS_DIR);
    fs::create_dir_all(&runs_dir).map_err(|source| SweepError::OutNotWritable {
        path: runs_dir.clone(),
        source,
    })?;
    let _lock = lock_sweep(&dir, opts.shard)?;
    store::remove_stale_temps(&dir)?;
    store::write_atomic(
        &dir.join(store::SCENARIO_TOML),
        scenario.resolved_toml().as_bytes(),
    )?;

    let present = store::finished_ids(&runs_dir)?;
    let mut seen = HashSet::new();
    let mine: Vec<&RunSpec> = scenario
        .runs
        .iter()
        .filter(|r| opts.shard.contains(r.index) && seen.insert(r.id.as_str()))
        .collect();
    let mut todo: Vec<&RunSpec> = mine
        .iter()
        .copied()
        .filter(|r| !present.contains(&r.id))
        .collect();
    // Longest first, so the last runs to finish are short ones and no thread idles long at
    // the end (greedy LPT scheduling). The order changes no result.
    todo.sort_by(|a, b| expected_cost(&b.config).total_cmp(&expected_cost(&a.config)));
    let skipped = mine.len() - todo.len();

    let cost: f64 = todo.iter().map(|r| expected_cost(&r.config)).sum();
    let progress = Progress::new(opts.progress, mine.len(), skipped, cost, threads);
    if progress.plain {
        eprintln!(
            "vqsim: {}: {} in shard {}, {skipped} already done, {}",
            scenario.name,
            plural(mine.len(), "run"),
            opts.shard,
            plural(threads, "thread")
        );
    }
    let cancel = &opts.cancel;
    let lowest_seed = scenario.seeds.iter().copied().min().unwrap_or(0);
    let ran = AtomicUsize::new(0);
    let diverged = AtomicUsize::new(0);
    let failure: Mutex<Option<OutputError>> = Mutex::new(None);
    // Each thread takes the next run from the ordered list until none is left.
    let next = AtomicUsize::new(0);
    pool.broadcast(|_| loop {
        let Some(spec) = todo.get(next.fetch_add(1, Ordering::SeqCst)) else {
            return;
        };
        if cancel.load(Ordering::SeqCst) {
            return;
        }
        let t = Instant::now();
        let keep = opts.snapshots.keeps(spec, lowest_seed);
        let Ok(outcome) = train::run(&spec.config, spec.seed, cancel, keep) else {
            continue; // cancelled: nothing of this run was written
        };
        let secs = t.elapsed().as_secs_f64();
        if let Err(e) = store::write_run(&runs_dir, spec, &outcome) {
            failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert(e);
            cancel.store(true, Ordering::SeqCst);
            return;
        }
        let div = outcome.status == Status::Diverged;
        ran.fetch_add(1, Ordering::SeqCst);
        diverged.fetch_add(usize::from(div), Ordering::SeqCst);
        progress.run_done(expected_cost(&spec.config), secs, div);
        if let Some(hook) = &opts.on_run_done {
            hook(spec, &outcome);
        }
    });
    progress.finish();
    if let Some(source) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
        atomic::remove_own_temps(&runs_dir);
        return Err(SweepError::WriteFailed {
            dir,
            finished: skipped + ran.into_inner(),
            source,
        });
    }
    let cancelled = cancel.load(Ordering::SeqCst);
    if cancelled {
        atomic::remove_own_temps(&runs_dir);
    }

    // Assemble even when cancelled, so the tables show what is done so far.
    let assembly = store::assemble(&dir, scenario)?;
    let seconds = t0.elapsed().as_secs_f64();
    store::write_manifest(
        &dir,
        &Manifest {
            threads: Some(threads),
            shard: Some(opts.shard.to_string()),
            ..Manifest::new("run", scenario, &assembly, started, seconds)
        },
    )?;

    // An interrupt while the tables were written is honoured too, not left for the report.
    if cancelled || cancel.load(Ordering::SeqCst) {
        return Err(SweepError::Cancelled {
            dir,
            finished: assembly.finished.len(),
            runs: scenario.runs.len(),
        });
    }
    Ok(SweepReport {
        dir,
        runs: scenario.runs.len(),
        in_shard: mine.len(),
        skipped,
        ran: ran.into_inner(),
        diverged: diverged.into_inner(),
        assembly,
        threads,
        seconds,
    })
}

/// Work per point and epoch besides the networks' multiply-adds: the evaluation on the whole
/// data set and the metrics after every epoch, batching, the optimiser. Fitted to the wall
/// time of three default-size runs (depth 0 width 2 at d = 8; the defaults; depth 4 width 128
/// at d = 8): this model gives 1 : 2.1 : 13.6, measured 1 : 3.1 : 15; without it 1 : 272 : 3150.
const OVERHEAD_PER_POINT: f64 = 8000.0;

/// Relative cost of a run, for scheduling (longest first) and the ETA: epochs × points ×
/// (multiply-adds per point through encoder and decoder + the per-epoch overhead).
fn expected_cost(cfg: &RunConfig) -> f64 {
    let (d, m) = (cfg.data.dim as f64, cfg.model.latent_dim as f64);
    let (w, depth) = (cfg.model.width as f64, cfg.model.depth as f64);
    let per_point = if depth == 0.0 {
        2.0 * d * m
    } else {
        2.0 * (w * (d + m) + (depth - 1.0) * w * w)
    };
    let epochs = cfg.train.epochs
        + match cfg.schedule.kind {
            ScheduleKind::Deferred | ScheduleKind::Continuous => cfg.schedule.continuous_epochs,
            ScheduleKind::Early => 0,
        };
    let points = cfg.data.points() as f64;
    (epochs.max(1) as f64) * points * (per_point + OVERHEAD_PER_POINT)
}

/// Rebuild `runs.csv` and `history.csv` in `dir` (an `out/<name>/` directory) from the run
/// directories there, ordered and checked against the expansion of its `scenario.toml`.
pub fn merge(dir: &Path) -> Result<MergeReport, SweepError> {
    let started = SystemTime::now();
    let t0 = Instant::now();
    require_sweep_dir(dir)?;
    let scenario = Scenario::load(&dir.join(store::SCENARIO_TOML))?;
    let assembly = store::assemble(dir, &scenario)?;
    store::write_manifest(
        dir,
        &Manifest::new(
            "merge",
            &scenario,
            &assembly,
            started,
            t0.elapsed().as_secs_f64(),
        ),
    )?;

    let missing = assembly
        .missing
        .iter()
        .map(|&i| (i, scenario.runs[i].id.clone()))
        .collect();
    Ok(MergeReport {
        dir: dir.to_path_buf(),
        runs: scenario.runs.len(),
        assembly,
        missing,
    })
}

/// An error naming the sweep directories inside `dir` unless `dir` itself is one (has a
/// `scenario.toml`), for commands given `out/` instead of `out/<name>`.
pub fn require_sweep_dir(dir: &Path) -> Result<(), SweepError> {
    if dir.join(store::SCENARIO_TOML).is_file() {
        Ok(())
    } else {
        Err(SweepError::NotASweep(dir.to_path_buf()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_maps_to_exit_2_and_cancel_to_130() {
        assert_eq!(SweepError::OutIsFile("x".into()).exit_code(), 2);
        let shard = "0/3".parse::<Shard>().unwrap_err();
        assert_eq!(SweepError::from(shard).exit_code(), 2);
        assert_eq!(SweepError::ZeroThreads.exit_code(), 2);
        let cancelled = SweepError::Cancelled {
            dir: "d".into(),
            finished: 1,
            runs: 2,
        };
        assert_eq!(cancelled.exit_code(), 130);
        let io = std::io::Error::other("disk full");
        let create = SweepError::Create {
            path: "d".into(),
            source: io,
        };
        assert_eq!(create.exit_code(), 1);
    }

    #[test]
    fn eta_shares_the_remaining_cost_among_threads_at_the_measured_rate() {
        let mut state = ProgressState {
            done: 1,
            diverged: 0,
            cost_left: 100.0,
            cost_done: 0.0,
            secs_done: 0.0,
        };
        assert_eq!(state.eta(4, 2), "?");
        // One thread did 50 units in 10 s: 5 units/s; 100 units left on 2 threads.
        (state.cost_done, state.secs_done) = (50.0, 10.0);
        assert_eq!(state.eta(4, 2), "10.0 s");
        // One run left: only one thread works on it.
        state.done = 3;
        assert_eq!(state.eta(4, 2), "20.0 s");
        state.done = 4;
        assert_eq!(state.eta(4, 2), "0.0 s");
    }
}

//! `vqsim`, the command line: glue over the library. `main` parses the arguments, dispatches
//! one function per subcommand and maps errors to exit statuses.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

/// `print!` to stdout, except that a closed pipe (`vqsim keys | head -3`) ends the program
/// quietly with status 0, as Unix tools do, instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => { emit(format_args!($($arg)*)) };
}

/// `println!` with `out!`'s handling of a closed pipe.
macro_rules! outln {
    () => { emit(format_args!("\n")) };
    ($($arg:tt)*) => { emit(format_args!("{}\n", format_args!($($arg)*))) };
}

fn emit(text: std::fmt::Arguments) {
    use std::io::Write as _;
    if let Err(e) = std::io::stdout().lock().write_fmt(text) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to standard output: {e}");
        std::process::exit(1);
    }
}

use clap::{Args, Parser, Subcommand};
use vqsim::arrays::{self, ArrayError, Shape, Source};
use vqsim::bench::{BenchOptions, TorchRef};
use vqsim::report::paper::{self as paper_mod, PaperError, PaperScenario};
use vqsim::report::plot::Projection;
use vqsim::report::results::Results;
use vqsim::report::{plot, text};
use vqsim::study::memory;
use vqsim::study::scenario::{Scenario, ScenarioError};
use vqsim::study::shard::Shard;
use vqsim::study::sweep::{self, Snapshots, SweepError, SweepOptions};

#[derive(Parser)]
#[command(name = "vqsim", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario's sweep (the built-in default when no file is given), then write its
    /// summary tables and figures.
    Run(RunArgs),
    /// Validate scenario files and show how they expand into runs, without running anything.
    Check(CheckArgs),
    /// Rebuild runs.csv and history.csv from the per-run results in DIR (e.g. after shards
    /// wrote separately) and list the runs still missing.
    Merge(DirArgs),
    /// Draw every figure that fits the runs in DIR, and write its summary tables.
    Plot(PlotArgs),
    /// Run the paper's scenarios (shrinkage, init, tokens, dynamics, capacity, capacity_continuous) and the remedy zoo into OUT,
    /// resuming finished runs, then write OUT/paper/: every figure, claims.csv, headline.csv
    /// and an offline index.html with each claim's verdict.
    Paper(PaperArgs),
    /// Time training steps, one default run and a 16-run sweep on 1 vs N threads (optionally
    /// against the PyTorch reference), for docs/performance.md.
    Bench(BenchArgs),
    /// Check the paper's §4.2 formula: tokens on M = 1 … K modes with identity encoder and
    /// decoder, measured vs predicted diversity H and quantization error Q; writes
    /// OUT/theory/theory.csv and a figure.
    Theory(TheoryArgs),
    /// Check a trained tokenizer's codebook for shrinkage: usage, spread and coverage of the
    /// codes against a set of encoder outputs, as a table (or JSON), with --out also a CSV, a
    /// figure and a verdict in words.
    Diagnose(DiagnoseArgs),
    /// List every scenario key with its default, what it accepts and what it means (the
    /// key table of docs/keys.md is this output).
    Keys,
}

#[derive(Args)]
struct TheoryArgs {
    /// Results go to OUT/theory/.
    #[arg(long, default_value = "out")]
    out: PathBuf,
}

#[derive(Args)]
struct DiagnoseArgs {
    /// The effective codebook (S, m) as FILE or FILE:NAME (.npy, .npz, .safetensors, .csv).
    #[arg(long, value_name = "FILE")]
    codebook: String,
    /// Encoder outputs (N, m), or any (…, m) shape, as FILE or FILE:NAME.
    #[arg(long, value_name = "FILE")]
    embeddings: String,
    /// One integer class per embedding row (optional): adds classes_hit and token_class_entropy.
    #[arg(long, value_name = "FILE")]
    labels: Option<String>,
    /// Also write diagnosis.csv, verdict.txt and figures/diagnosis.{png,svg} to DIR.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Seed of the subsamples of the pairwise metrics (a vqsim run's seed reproduces its
    /// runs.csv numbers).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args)]
struct PaperArgs {
    /// Results go to OUT/<scenario name>/ and OUT/paper/.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    #[command(flatten)]
    sweep: SweepArgs,
    /// Read the paper scenario files from DIR instead of the copies built into vqsim.
    #[arg(long, value_name = "DIR")]
    scenarios: Option<PathBuf>,
}

/// How sweeps run, for every command that runs them.
#[derive(Args)]
struct SweepArgs {
    /// Worker threads (default: all cores; at most 4 × the cores). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Refuse a sweep whose estimated peak memory exceeds SIZE (e.g. 16G; default: the
    /// memory available now).
    #[arg(long, value_name = "SIZE", value_parser = memory::parse_bytes)]
    max_memory: Option<u64>,
    /// Which runs keep their snapshot (runs/ID/snapshot.npz, every point's data, embedding,
    /// reconstruction and code): those the figures draw (the lowest seed), all, or none.
    #[arg(long, value_enum, default_value_t = Snapshots::Figures)]
    snapshots: Snapshots,
}

impl SweepArgs {
    fn options(&self, out: &std::path::Path) -> SweepOptions {
        let mut opts = SweepOptions::new(out);
        opts.threads = self.threads;
        opts.max_memory = self.max_memory;
        opts.snapshots = self.snapshots;
        opts
    }
}

#[derive(Args)]
struct RunArgs {
    /// Scenario TOML file; without it, the built-in default (SPEC defaults, early and deferred, seeds 0–2).
    #[arg(value_name = "SCENARIO")]
    scenario: Option<PathBuf>,
    /// Results go to OUT/<scenario name>/.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    #[command(flatten)]
    sweep: SweepArgs,
    /// Run only shard I of N (1-based), e.g. `--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`.
    #[arg(long, value_name = "I/N", default_value_t = Shard::ALL)]
    shard: Shard,
    /// Skip the summary tables and figures (e.g. in shard jobs; run `vqsim plot` after merging).
    #[arg(long)]
    no_report: bool,
    #[command(flatten)]
    figures: FigureArgs,
}

#[derive(Args)]
struct BenchArgs {
    /// Rounds per measurement; medians are reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Threads of the sweep compared with 1 thread.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Also time the PyTorch references (torch_ref.py, torch_batched.py) with this Python,
    /// which needs torch, numpy and scikit-learn (`--torch` alone: Debian's /usr/bin/python3).
    #[arg(long, value_name = "PYTHON", num_args = 0..=1, default_missing_value = "/usr/bin/python3")]
    torch: Option<PathBuf>,
    /// The one-run PyTorch reference (run from the repository root).
    #[arg(long, value_name = "PATH", default_value = "scripts/torch_ref.py")]
    torch_script: PathBuf,
    /// The batched PyTorch sweep reference.
    #[arg(long, value_name = "PATH", default_value = "scripts/torch_batched.py")]
    torch_batched: PathBuf,
    /// Scenario whose runs per second are measured once with `--threads` threads.
    #[arg(long, value_name = "PATH", default_value = "scenarios/capacity.toml")]
    capacity: PathBuf,
    /// Skip the capacity scenario (it takes about a minute on 2 cores).
    #[arg(long)]
    no_capacity: bool,
}

#[derive(Args)]
struct PlotArgs {
    #[command(flatten)]
    dir: DirArgs,
    #[command(flatten)]
    figures: FigureArgs,
}

#[derive(Args)]
struct FigureArgs {
    /// Lay embeddings of more than two dimensions flat with t-SNE (as the paper did) instead
    /// of PCA in the shrinkage figures; slower.
    #[arg(long)]
    tsne: bool,
}

impl FigureArgs {
    fn projection(&self) -> Projection {
        if self.tsne {
            Projection::Tsne
        } else {
            Projection::Pca
        }
    }
}

#[derive(Args)]
struct DirArgs {
    /// A results directory, OUT/<scenario name>.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

#[derive(Args)]
struct CheckArgs {
    /// Scenario TOML files.
    #[arg(required = true, value_name = "SCENARIO")]
    scenarios: Vec<PathBuf>,
    /// Also print each scenario with every key explicit (defaults filled in).
    #[arg(long)]
    resolved: bool,
}

fn main() -> ExitCode {
    // Usage errors exit with status 2 inside clap; --help and --version with 0.
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(&args),
        Command::Check(args) => check(&args),
        Command::Merge(args) => merge(&args.dir),
        Command::Plot(args) => plot(&args.dir.dir, args.figures.projection()),
        Command::Paper(args) => paper(&args),
        Command::Bench(args) => bench(&args),
        Command::Theory(args) => theory(&args.out),
        Command::Diagnose(args) => diagnose(&args),
        Command::Keys => {
            out!("{}", vqsim::study::scenario::keys_markdown());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", message(&err));
            ExitCode::from(exit_status(&err))
        }
    }
}

/// The error and its causes, `: `-separated, leaving out a cause whose text the message
/// already holds (errors that print their source, as `cannot write P: {source}`, would
/// otherwise repeat it).
fn message(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// 2 when the user's input is wrong and must be fixed (as for clap's usage errors), 1 when
/// something failed while doing valid work.
fn exit_status(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.is::<ScenarioError>() || cause.is::<CheckFailed>() || cause.is::<ArrayError>() {
            return 2;
        }
        if let Some(PaperError::Scenario(_)) = cause.downcast_ref::<PaperError>() {
            return 2;
        }
        if let Some(PaperError::Sweep(sweep)) = cause.downcast_ref::<PaperError>() {
            return sweep.exit_code().try_into().unwrap_or(1);
        }
        if let Some(sweep) = cause.downcast_ref::<SweepError>() {
            return sweep.exit_code().try_into().unwrap_or(1);
        }
    }
    1
}

fn run(args: &RunArgs) -> Result<()> {
    let scenario = match &args.scenario {
        Some(path) => Scenario::load(path)?,
        None => Scenario::builtin_default(),
    };
    let mut opts = args.sweep.options(&args.out);
    opts.shard = args.shard;
    let done = sweep::run_sweep(&scenario, &opts)?;
    let results = Results::load(&done.dir)?;
    out!("{}", text::summary(&results)?);
    // A shard sees only part of the runs: its figures would mislead, so they wait for the merge.
    if !args.no_report && done.assembly.missing.is_empty() {
        report(&results, args.figures.projection())?;
    }
    Ok(())
}

fn merge(dir: &std::path::Path) -> Result<()> {
    let merged = sweep::merge(dir)?;
    for (index, id) in &merged.missing {
        outln!("missing: run {index} ({id})");
    }
    out!("{}", text::summary(&Results::load(dir)?)?);
    Ok(())
}

/// Summary tables with confidence intervals, then every figure that fits.
fn report(results: &Results, projection: Projection) -> Result<()> {
    let dir = &results.dir;
    results.write_tables()?;
    let drawn = plot::plot_all(results, projection)
        .with_context(|| format!("drawing figures for {}", dir.display()))?;
    outln!(
        "wrote {} and {} figure files",
        dir.join("summary.csv").display(),
        drawn.iter().map(|d| d.files.len()).sum::<usize>()
    );
    Ok(())
}

/// `vqsim plot DIR`: the results in DIR loaded once, then reported.
fn plot(dir: &Path, projection: Projection) -> Result<()> {
    sweep::require_sweep_dir(dir)?;
    report(&Results::load(dir)?, projection)
}

fn paper(args: &PaperArgs) -> Result<()> {
    let scenarios = match &args.scenarios {
        Some(dir) => PaperScenario::from_dir(dir)?,
        None => PaperScenario::builtin(),
    };
    let opts = args.sweep.options(&args.out);
    let paper = paper_mod::run(&scenarios, &opts)?;
    for s in &paper.sections {
        for v in &s.verdicts {
            let verdict = if v.supported {
                "supported"
            } else {
                "NOT supported"
            };
            outln!("{}: {verdict}: {}", s.name, v.claim);
        }
    }
    outln!(
        "wrote {}",
        args.out.join("paper").join("index.html").display()
    );
    Ok(())
}

fn theory(out: &Path) -> Result<()> {
    let dir = out.join("theory");
    let (rows, _) = vqsim::report::theory::run(&dir)?;
    outln!("active_modes  h_measured  h_predicted  q_measured  q_predicted");
    for r in &rows {
        outln!(
            "{:>12}  {:>10.4}  {:>11.4}  {:>10.4}  {:>11.4}",
            r.active_modes,
            r.h_measured,
            r.h_predicted,
            r.q_measured,
            r.q_predicted
        );
    }
    let v = vqsim::report::theory::verdict(&rows);
    let verdict = if v.supported {
        "supported"
    } else {
        "NOT supported"
    };
    outln!("{verdict}: {}\n{}", v.claim, v.evidence);
    outln!("wrote {}", dir.join("theory.csv").display());
    Ok(())
}

fn bench(args: &BenchArgs) -> Result<()> {
    let mut opts = BenchOptions::new();
    opts.repeat = args.repeat;
    opts.threads = args.threads;
    opts.torch = args.torch.clone().map(|python| TorchRef {
        python,
        script: args.torch_script.clone(),
        batched: args.torch_batched.clone(),
    });
    opts.capacity = (!args.no_capacity).then(|| args.capacity.clone());
    let report = vqsim::bench::run(&opts, |what| eprintln!("vqsim bench: timing {what}"))?;
    out!("{report}");
    Ok(())
}

/// Checks every file and reports each; fails (exit 2) if any is bad.
fn check(args: &CheckArgs) -> Result<()> {
    let mut bad = Vec::new();
    for path in &args.scenarios {
        let scenario = match Scenario::load(path) {
            Ok(s) => s,
            Err(e) => {
                if args.scenarios.len() > 1 {
                    eprintln!("error: {e}");
                }
                bad.push(e);
                continue;
            }
        };
        outln!("{}", summary(&scenario));
        for axis in &scenario.axes {
            let values = toml::Value::Array(axis.values.clone());
            outln!("  {} = {values}", axis.key);
        }
        let seeds: Vec<String> = scenario.seeds.iter().map(u64::to_string).collect();
        outln!("  seeds = [{}]", seeds.join(", "));
        if args.resolved {
            outln!("\n{}", scenario.resolved_toml());
        }
    }
    match bad.len() {
        0 => Ok(()),
        1 if args.scenarios.len() == 1 => Err(bad.remove(0).into()),
        n => Err(CheckFailed {
            bad: n,
            of: args.scenarios.len(),
        }
        .into()),
    }
}

/// Several scenario files checked, some bad (each was reported as it was found).
#[derive(Debug, thiserror::Error)]
#[error("{bad} of {of} scenario files are invalid (see above)")]
struct CheckFailed {
    bad: usize,
    of: usize,
}

/// `name: 2 × 3 × 3 seeds = 18 runs` — one factor per axis (its number of values), then seeds.
fn summary(s: &Scenario) -> String {
    let plural = sweep::plural;
    let mut factors: Vec<String> = s.axes.iter().map(|a| a.values.len().to_string()).collect();
    factors.push(plural(s.seeds.len(), "seed"));
    format!(
        "{}: {} = {}",
        s.name,
        factors.join(" × "),
        plural(s.runs.len(), "run")
    )
}

fn diagnose(args: &DiagnoseArgs) -> Result<()> {
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .context("setting the thread count")?;
    }
    let code_src = Source::parse(&args.codebook);
    let embed_src = Source::parse(&args.embeddings);
    let codebook = arrays::read_matrix(&code_src, Shape::Vectors)?;
    let z = arrays::read_matrix(&embed_src, Shape::Vectors)?;
    arrays::check_columns(&embed_src, z.ncols(), &code_src, codebook.ncols())?;
    let label_src = match &args.labels {
        Some(spec) => Some(Source::parse(spec)),
        None => {
            let snapshot = vqsim::diagnose::snapshot_labels(&embed_src);
            if let Some(src) = &snapshot {
                eprintln!(
                    "labels: the `label` array of {} (a vqsim snapshot); --labels overrides it",
                    src.path.display()
                );
            }
            snapshot
        }
    };
    let labels = match &label_src {
        Some(src) => Some(arrays::read_labels_for(src, z.nrows())?),
        None => None,
    };
    let report = vqsim::diagnose::diagnose(
        z.view(),
        codebook.view(),
        labels.as_deref(),
        args.seed,
        vqsim::diagnose::Limits::default(),
    );
    if args.json {
        outln!("{}", serde_json::to_string(&report.diagnosis)?);
    } else {
        out!("{}", vqsim::diagnose::table(&report));
        out!("{}", vqsim::diagnose::verdict(&report));
    }
    if let Some(dir) = &args.out {
        let files = vqsim::diagnose::write(
            dir,
            &report,
            z.view(),
            codebook.view(),
            labels.as_deref(),
            (&args.embeddings, &args.codebook),
        )?;
        for f in files {
            eprintln!("wrote {}", f.display());
        }
    }
    Ok(())
}

//! `vqsim paper`: the paper's synthetic experiments and the remedy zoo in one command.
//!
//! Each scenario is an ordinary sweep into `OUT/<name>/` (so an interrupted `paper` resumes
//! where it stopped), followed by its summary tables, figures and claim checks. `OUT/paper/`
//! then gathers copies of every figure, `claims.csv`, `headline.csv` and an offline
//! `index.html` that shows each figure beside the claim it tests and the verdict of the data.

mod html;

use std::fs;
use std::path::{Path, PathBuf};

pub use html::{render_index, write_index};

use crate::report::claims::{self, Verdict};
use crate::report::plot::{self, PlotError};
use crate::report::results::Results;
use crate::report::summary::{Comparison, Summary, SummaryError};
use crate::report::table::TableError;
use crate::report::theory::{self, TheoryError};
use crate::report::zoo::{self, ZooTable};
use crate::study::scenario::{Scenario, ScenarioError};
use crate::study::sweep::{self, SweepError, SweepOptions};

/// One of the paper's scenarios as shipped in `scenarios/`.
struct Builtin {
    name: &'static str,
    text: &'static str,
    /// Stems (`Figure::stem`) of the figures its claims are about, shown large; its other
    /// figures are supplementary.
    main: &'static [&'static str],
}

/// The paper's scenarios, in the order the index presents them. The remedies section appears
/// once a scenario named `REMEDIES` is listed here.
const BUILTIN: &[Builtin] = &[
    Builtin {
        name: "shrinkage",
        text: include_str!("../../../scenarios/shrinkage.toml"),
        main: &["shrinkage", "generation"],
    },
    Builtin {
        name: "init",
        text: include_str!("../../../scenarios/init.toml"),
        main: &["shrinkage", "dynamics"],
    },
    Builtin {
        name: "tokens",
        text: include_str!("../../../scenarios/tokens.toml"),
        main: &["token_scaling"],
    },
    Builtin {
        name: "dynamics",
        text: include_str!("../../../scenarios/dynamics.toml"),
        main: &["dynamics"],
    },
    Builtin {
        name: "capacity",
        text: include_str!("../../../scenarios/capacity.toml"),
        main: &["capacity"],
    },
    Builtin {
        name: "capacity_continuous",
        text: include_str!("../../../scenarios/capacity_continuous.toml"),
        main: &["capacity"],
    },
    Builtin {
        name: REMEDIES,
        text: include_str!("../../../scenarios/zoo.toml"),
        main: &["zoo"],
    },
];

/// The scenario whose arms are the remedies compared (`report::zoo`).
pub const REMEDIES: &str = "zoo";

/// Rows of the headline table, in order.
pub const HEADLINE_METRICS: [&str; 6] = [
    "perplexity",
    "codes_used",
    "codebook_dist",
    "shrink_ratio",
    "mse",
    "modes_hit",
];

/// Where the headline comes from: the built-in default configuration, early vs deferred. The
/// dynamics scenario is exactly that; shrinkage at d = 2 is the same configuration and seeds,
/// used when dynamics was not run.
const HEADLINE_SOURCES: [(&str, &[(&str, &str)]); 2] =
    [("dynamics", &[]), ("shrinkage", &[("data.dim", "2")])];

#[derive(Debug, thiserror::Error)]
pub enum PaperError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Sweep(#[from] SweepError),
    #[error(transparent)]
    Summary(#[from] SummaryError),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error(transparent)]
    Theory(#[from] TheoryError),
    #[error("{scenario}: {missing} runs still missing after the sweep; run `vqsim paper` again")]
    Incomplete { scenario: String, missing: usize },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PaperError + '_ {
    move |source| PaperError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A scenario's text and name (the name also names its results directory).
#[derive(Debug, Clone)]
pub struct PaperScenario {
    pub name: String,
    pub text: String,
    /// The file it was read from, if any (for error messages).
    pub path: Option<PathBuf>,
}

impl PaperScenario {
    /// The paper scenarios compiled into the binary from `scenarios/`.
    pub fn builtin() -> Vec<PaperScenario> {
        BUILTIN
            .iter()
            .map(|b| PaperScenario {
                name: b.name.to_string(),
                text: b.text.to_string(),
                path: None,
            })
            .collect()
    }

    /// The paper scenarios read from `dir/<name>.toml` (e.g. edited copies).
    pub fn from_dir(dir: &Path) -> Result<Vec<PaperScenario>, PaperError> {
        BUILTIN
            .iter()
            .map(|Builtin { name, .. }| {
                let path = dir.join(format!("{name}.toml"));
                let text = fs::read_to_string(&path).map_err(|io| ScenarioError::Read {
                    file: path.display().to_string(),
                    io,
                })?;
                Ok(PaperScenario {
                    name: name.to_string(),
                    text,
                    path: Some(path),
                })
            })
            .collect()
    }

    pub fn parse(&self) -> Result<Scenario, ScenarioError> {
        Scenario::from_str(&self.text, self.path.as_deref(), &self.name)
    }

    /// The comment block at the top of the file (what the scenario tests), as paragraphs.
    pub fn about(&self) -> Vec<String> {
        let mut paragraphs = vec![String::new()];
        for line in self.text.lines() {
            let Some(c) = line.trim().strip_prefix('#') else {
                break;
            };
            let c = c.trim();
            let last = paragraphs.last_mut().expect("never empty");
            if c.is_empty() {
                if !last.is_empty() {
                    paragraphs.push(String::new());
                }
            } else {
                if !last.is_empty() {
                    last.push(' ');
                }
                last.push_str(c);
            }
        }
        paragraphs.retain(|p| !p.is_empty());
        paragraphs
    }
}

/// One figure copied into `paper/` as `<stem>.png` and `<stem>.svg`.
#[derive(Debug, Clone, PartialEq)]
pub struct PaperFigure {
    pub stem: String,
    /// What kind of figure it is (`Figure::title`).
    pub title: &'static str,
    /// Its caption (`Figure::describe`), trusted HTML.
    pub caption: String,
    /// Direct evidence for the scenario's claims (shown large); otherwise supplementary.
    pub main: bool,
}

/// One scenario as the index presents it.
#[derive(Debug, Clone)]
pub struct Section {
    pub name: String,
    pub about: Vec<String>,
    /// Runs behind the section; None when its numbers are computed, not trained.
    pub runs: Option<RunTally>,
    /// Files of its results directory, `OUT/<name>/`, that the page links.
    pub files: Vec<String>,
    pub verdicts: Vec<Verdict>,
    pub figures: Vec<PaperFigure>,
    /// The remedies compared, one table per configuration; only for the `REMEDIES` scenario.
    pub remedies: Vec<ZooTable>,
}

/// Runs in runs.csv, and how many of them diverged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunTally {
    pub total: usize,
    pub diverged: usize,
}

/// Early vs deferred on one configuration.
#[derive(Debug, Clone)]
pub struct Headline {
    /// Where the numbers come from, e.g. "dynamics (K=10, d=2, …)".
    pub source: String,
    pub rows: Vec<Comparison>,
}

#[derive(Debug, Clone)]
pub struct Paper {
    pub sections: Vec<Section>,
    pub headline: Option<Headline>,
}

/// Sweeps every scenario into `opts.out` (resuming), then writes each one's summary and
/// figures and `opts.out/paper/`.
pub fn run(scenarios: &[PaperScenario], opts: &SweepOptions) -> Result<Paper, PaperError> {
    let mut done = Vec::new();
    for sc in scenarios {
        let report = sweep::run_sweep(&sc.parse()?, opts)?;
        if !report.assembly.missing.is_empty() {
            return Err(PaperError::Incomplete {
                scenario: sc.name.clone(),
                missing: report.assembly.missing.len(),
            });
        }
        done.push((sc.clone(), report.dir));
    }
    publish(&opts.out, &done)
}

/// For each finished scenario (its results directory): summary tables, figures and claim
/// checks; then `out/paper/` with copies of the figures, the CSVs and `index.html`.
pub fn publish(out: &Path, done: &[(PaperScenario, PathBuf)]) -> Result<Paper, PaperError> {
    let paper_dir = out.join("paper");
    fs::create_dir_all(&paper_dir).map_err(io_err(&paper_dir))?;
    crate::atomic::remove_stale_temps(&paper_dir).map_err(io_err(&paper_dir))?;
    remove_figures(&paper_dir)?;
    let mut sections = Vec::new();
    let mut headline = None;
    for (sc, dir) in done {
        let results = Results::load(dir)?;
        results.write_tables()?;
        let drawn = plot::plot_all(&results, plot::Projection::Pca)?;
        let verdicts = claims::check(&sc.name, &results)?;
        let stats = &results.summary;
        let runs = &results.table;
        let status = runs.column("status")?;
        let diverged = runs.rows.iter().filter(|r| r[status] == "diverged").count();
        let remedies = if sc.name == REMEDIES {
            zoo::tables(stats)
        } else {
            Vec::new()
        };
        if !remedies.is_empty() {
            let to = paper_dir.join("zoo.csv");
            fs::copy(dir.join("zoo.csv"), &to).map_err(io_err(&to))?;
        }
        let main = BUILTIN.iter().find(|b| b.name == sc.name).map(|b| b.main);
        let mut figures = Vec::new();
        for d in &drawn {
            let caption = d.figure.describe(&results);
            for png in d
                .files
                .iter()
                .filter(|f| f.extension().is_some_and(|e| e == "png"))
            {
                let Some(original) = png.file_stem().map(|s| s.to_string_lossy().into_owned())
                else {
                    continue;
                };
                let stem = format!("{}-{original}", sc.name);
                for ext in ["png", "svg"] {
                    let to = paper_dir.join(format!("{stem}.{ext}"));
                    fs::copy(png.with_extension(ext), &to).map_err(io_err(&to))?;
                }
                figures.push(PaperFigure {
                    stem,
                    title: d.figure.title(),
                    caption: caption.clone(),
                    // Scenarios outside the paper's show every figure as main.
                    main: main.is_none_or(|m| m.contains(&d.figure.stem())),
                });
            }
        }
        // The earliest source in HEADLINE_SOURCES wins, whatever order the scenarios ran in.
        if let Some(rank) = HEADLINE_SOURCES.iter().position(|(n, _)| *n == sc.name) {
            if headline.as_ref().is_none_or(|(r, _)| rank < *r) {
                let (name, at) = HEADLINE_SOURCES[rank];
                if let Some(h) = headline_of(name, stats, at) {
                    headline = Some((rank, h));
                }
            }
        }
        sections.push(Section {
            name: sc.name.clone(),
            about: sc.about(),
            runs: Some(RunTally {
                total: runs.rows.len(),
                diverged,
            }),
            files: ["summary.csv", "comparisons.csv", "runs.csv"]
                .into_iter()
                .map(String::from)
                .collect(),
            verdicts,
            figures,
            remedies,
        });
    }
    sections.push(theory_section(out, &paper_dir)?);
    let paper = Paper {
        sections,
        headline: headline.map(|(_, h)| h),
    };
    write_index(&paper_dir, &paper)?;
    write_claims_csv(&paper_dir, &paper)?;
    write_headline_csv(&paper_dir, &paper)?;
    Ok(paper)
}

/// The §4.2 check (`vqsim theory`) into `out/theory/`, its figure copied into `paper/`.
fn theory_section(out: &Path, paper_dir: &Path) -> Result<Section, PaperError> {
    let (rows, files) = theory::run(&out.join("theory"))?;
    let mut figures = Vec::new();
    for png in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "png"))
    {
        let stem = "theory-theory".to_string();
        for ext in ["png", "svg"] {
            let to = paper_dir.join(format!("{stem}.{ext}"));
            fs::copy(png.with_extension(ext), &to).map_err(io_err(&to))?;
        }
        figures.push(PaperFigure {
            stem,
            title: plot::theory::TITLE,
            caption: plot::theory::DESCRIPTION.into(),
            main: true,
        });
    }
    Ok(Section {
        name: "theory".into(),
        about: vec![
            "The paper's §4.2 model (`vqsim theory`): identity encoder and decoder, K = 10 \
             equally weighted modes. First computed: S = 64 tokens placed by k-means on only M \
             well-separated modes, where diversity H should be ln M and the quantization error \
             Q follow from the mixture's geometry (a check of the arithmetic: the tokens sit \
             where the formula assumes). Then trained: 30 identity-model runs whose init \
             leaves tokens on fewer modes, each trained codebook's H and Q against the \
             formula's prediction from its active modes M alone; see src/sim/theory.rs for \
             the derivation."
                .into(),
        ],
        runs: None,
        files: vec!["theory.csv".into()],
        verdicts: vec![theory::verdict(&rows), theory::trained_verdict(&rows)],
        figures,
        remedies: Vec::new(),
    })
}

/// Figures (and the remedies table) of an earlier `paper` are removed first, so the directory
/// holds exactly this one's.
fn remove_figures(dir: &Path) -> Result<(), PaperError> {
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        let stale = path.extension().is_some_and(|e| e == "png" || e == "svg")
            || path.file_name().is_some_and(|n| n == "zoo.csv");
        if stale {
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
    }
    Ok(())
}

fn headline_of(name: &str, s: &Summary, at: &[(&str, &str)]) -> Option<Headline> {
    let rows: Vec<Comparison> = HEADLINE_METRICS
        .iter()
        .filter_map(|m| s.deferred_vs_early(m, at).cloned())
        .collect();
    if rows.is_empty() {
        return None;
    }
    let shown = [
        ("data.modes", "K"),
        ("data.dim", "d"),
        ("quantizer.codebook_size", "S"),
        ("model.width", "width"),
        ("model.depth", "depth"),
        ("quantizer.init", "init"),
        ("train.epochs", "epochs"),
        ("schedule.continuous_epochs", "continuous epochs (deferred)"),
    ];
    let value = |p: &str| {
        at.iter()
            .find(|(k, _)| *k == p)
            .map(|(_, v)| *v)
            .or_else(|| s.fixed(p))
    };
    let config: Vec<String> = shown
        .iter()
        .filter_map(|(p, label)| value(p).map(|v| format!("{label}={v}")))
        .collect();
    Some(Headline {
        source: format!("scenario {name}: {}", config.join(", ")),
        rows,
    })
}

/// `claims.csv`: scenario, claim, supported, runs (n per arm, diverged, failed, missing),
/// evidence — one row per verdict.
pub fn write_claims_csv(dir: &Path, paper: &Paper) -> Result<PathBuf, PaperError> {
    let mut lines = vec![csv_row(&[
        "scenario",
        "claim",
        "supported",
        "runs",
        "evidence",
    ])];
    for s in &paper.sections {
        for v in &s.verdicts {
            lines.push(csv_row(&[
                &s.name,
                &v.claim,
                if v.supported { "true" } else { "false" },
                &v.runs,
                &v.evidence,
            ]));
        }
    }
    write_csv(&dir.join("claims.csv"), lines)
}

/// `headline.csv`: the headline table with its configuration; header only without one.
pub fn write_headline_csv(dir: &Path, paper: &Paper) -> Result<PathBuf, PaperError> {
    let mut lines = vec![csv_row(&[
        "source",
        "metric",
        "n_early",
        "early_mean",
        "early_lo",
        "early_hi",
        "n_deferred",
        "deferred_mean",
        "deferred_lo",
        "deferred_hi",
        "paired_p",
        "welch_p",
        "cis_disjoint",
    ])];
    if let Some(h) = &paper.headline {
        for c in &h.rows {
            let mut l = vec![h.source.clone(), c.metric.clone(), c.baseline.n.to_string()];
            l.extend([c.baseline.mean, c.baseline.lo, c.baseline.hi].map(|x| x.to_string()));
            l.push(c.other.n.to_string());
            l.extend(
                [c.other.mean, c.other.lo, c.other.hi, c.paired.p, c.welch.p]
                    .map(|x| x.to_string()),
            );
            l.push(c.significant.to_string());
            lines.push(l);
        }
    }
    write_csv(&dir.join("headline.csv"), lines)
}

fn csv_row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

fn write_csv(path: &Path, lines: Vec<Vec<String>>) -> Result<PathBuf, PaperError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for l in &lines {
        w.write_record(l)
            .map_err(|e| io_err(path)(std::io::Error::other(e)))?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| io_err(path)(std::io::Error::other(e.to_string())))?;
    write_atomic(path, &bytes)?;
    Ok(path.to_path_buf())
}

/// Writes atomically (see `crate::atomic`).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PaperError> {
    crate::atomic::write(path, bytes).map_err(io_err(path))
}

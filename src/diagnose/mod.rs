//! `vqsim diagnose`: codebook health of a tokenizer someone already trained, from its codebook
//! (S, m) and a set of its encoder outputs (N, m).
//!
//! The numbers are the latent-space metrics of `runs.csv`, computed by the same functions
//! (`sim::metrics`), plus two that only make sense for a finished codebook: the effective rank
//! of the live codes and their share of the embeddings' variance. Code assignment runs in
//! chunks on every thread (`assign`), so N × S distances are never held at once; metrics whose
//! cost grows with pairs or with N·m² look at seeded subsamples (`Limits`), which a small
//! input never reaches, so a vqsim run's own snapshot gives its `runs.csv` numbers exactly.

mod assign;

use ndarray::{Array2, ArrayView2, Axis};
use serde::Serialize;

use std::path::{Path, PathBuf};

use crate::arrays::Source;
use crate::report::plot::{self, PlotError};
use crate::sim::metrics;
use crate::sim::rng::{stream, Stream};
use crate::study::store::{write_atomic, OutputError, SNAPSHOT_NPZ};

pub use assign::{assign, Assignment};

/// Where the labels of embeddings read from a vqsim snapshot are: a run's `snapshot.npz`
/// holds each point's true mode (`label`) beside its embeddings (`z`), so the class metrics
/// need no `--labels` there. None for any other file.
pub fn snapshot_labels(embeddings: &Source) -> Option<Source> {
    let file = embeddings.path.file_name()?;
    (file == SNAPSHOT_NPZ).then(|| Source::new(&embeddings.path, Some("label".into())))
}

/// Subsample sizes of the metrics whose cost is quadratic in a set, or N·m².
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// codebook_dist and the live codes' rank look at this many codes at most.
    pub codes: usize,
    /// coverage (S codes against S embeddings, `COVERAGE_DRAWS` draws, O(S²·m) each) looks at
    /// this many codes at most.
    pub coverage_codes: usize,
    /// embed_rank looks at this many embeddings at most.
    pub rank_rows: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            codes: 4096,
            coverage_codes: 1024,
            rank_rows: 50_000,
        }
    }
}

/// The metrics of one codebook against one set of embeddings, under their `runs.csv` names.
/// Undefined values are NaN (null in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Diagnosis {
    pub perplexity: f64,
    pub codes_used: f64,
    pub dead_codes: f64,
    pub quant_mse: f64,
    pub codebook_dist: f64,
    pub codebook_cos: f64,
    pub embed_dist: f64,
    pub shrink_ratio: f64,
    pub coverage: f64,
    pub embed_rank: f64,
    /// Effective rank of the live (used) codes, centred: how many directions they span.
    pub live_rank: f64,
    /// Total variance of the live codes over that of the embeddings: ≈ 1 when the codes spread
    /// like the data (a little under 1 for k-means centroids), ≪ 1 when they have shrunk.
    pub live_var_share: f64,
    /// With labels: classes whose mean (in latent space) is the nearest class mean of at least
    /// one live code.
    pub classes_hit: f64,
    /// With labels: entropy of every code's nearest-class-mean shares (max ln K), the paper's
    /// H with classes as modes: p_k = |T_k|/S counts dead codes too, as `token_mode_entropy`
    /// of a run does.
    pub token_class_entropy: f64,
}

/// A diagnosis with what the figure and the verdict need.
#[derive(Debug, Clone)]
pub struct Report {
    pub diagnosis: Diagnosis,
    /// Points per code, (S).
    pub usage: Vec<usize>,
    /// Distance of every embedding to its nearest code, (N).
    pub nearest_dist: Vec<f32>,
    pub rows: usize,
    pub dim: usize,
}

/// Everything diagnose computes. `seed` picks the subsamples; the seed of a vqsim run makes
/// embed_dist and coverage match its `runs.csv` row.
pub fn diagnose(
    z: ArrayView2<f32>,
    codebook: ArrayView2<f32>,
    labels: Option<&[usize]>,
    seed: u64,
    limits: Limits,
) -> Report {
    let (n, m) = z.dim();
    let s = codebook.nrows();
    let Assignment { code, sq_dist } = assign(z, codebook);
    let usage = metrics::code_counts(&code, s);
    let live: Vec<usize> = (0..s).filter(|&k| usage[k] > 0).collect();
    let live_codes = codebook.select(Axis(0), &live);
    let sub = metrics::subsample(n, seed);
    let codes_sub = sample_rows(codebook, limits.codes, seed);
    let coverage_sub = sample_rows(codebook, limits.coverage_codes, seed);
    let live_sub = sample_rows(live_codes.view(), limits.codes, seed);
    let z_rank = sample_rows(z, limits.rank_rows, seed);
    // The costly metrics are independent of each other: run them side by side.
    let ((codebook_dist, codebook_cos), ((embed_dist, coverage), (embed_rank, live_rank))) =
        rayon::join(
            || {
                rayon::join(
                    || metrics::codebook_dist(codes_sub.view()),
                    || metrics::codebook_cos(codebook),
                )
            },
            || {
                rayon::join(
                    || {
                        (
                            metrics::embed_dist(z, &sub),
                            metrics::coverage(z, coverage_sub.view(), None),
                        )
                    },
                    || {
                        (
                            metrics::embed_rank(z_rank.view()),
                            metrics::embed_rank(live_sub.view()),
                        )
                    },
                )
            },
        );
    let (classes_hit, token_class_entropy) = match labels {
        Some(l) => class_metrics(z, l, codebook, &usage),
        None => (f64::NAN, f64::NAN),
    };
    let diagnosis = Diagnosis {
        perplexity: metrics::perplexity(&usage),
        codes_used: metrics::codes_used(&usage) as f64,
        dead_codes: metrics::dead_codes(&usage) as f64,
        quant_mse: metrics::quant_mse(z, codebook, &code),
        codebook_dist,
        codebook_cos,
        embed_dist,
        shrink_ratio: metrics::shrink_ratio(codebook_dist, embed_dist),
        coverage,
        embed_rank,
        live_rank: if live.is_empty() { f64::NAN } else { live_rank },
        live_var_share: metrics::embed_var(live_codes.view()) / metrics::embed_var(z),
        classes_hit,
        token_class_entropy,
    };
    Report {
        diagnosis,
        usage,
        nearest_dist: sq_dist.iter().map(|d| d.max(0.0).sqrt()).collect(),
        rows: n,
        dim: m,
    }
}

impl Diagnosis {
    /// (name, value) in field order: the column order of `diagnosis.csv`.
    pub fn fields(&self) -> Vec<(String, f64)> {
        // serde_json's preserve_order keeps the declaration order; NaN serializes as null.
        let serde_json::Value::Object(map) = serde_json::to_value(self).expect("plain numbers")
        else {
            unreachable!("a struct serializes to an object")
        };
        map.into_iter()
            .map(|(name, v)| (name, v.as_f64().unwrap_or(f64::NAN)))
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// `DIR/diagnosis.csv`, `DIR/verdict.txt` and `DIR/figures/diagnosis.{png,svg}`, each
/// written atomically; returns the files. `names` = (embeddings, codebook) as the user gave them.
pub fn write(
    dir: &Path,
    report: &Report,
    z: ArrayView2<f32>,
    codebook: ArrayView2<f32>,
    labels: Option<&[usize]>,
    names: (&str, &str),
) -> Result<Vec<PathBuf>, WriteError> {
    std::fs::create_dir_all(dir).map_err(|source| OutputError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let csv = dir.join("diagnosis.csv");
    write_atomic(&csv, &csv_bytes(report, names.0, names.1))?;
    let text = dir.join("verdict.txt");
    write_atomic(&text, verdict(report).as_bytes())?;
    let mut files = vec![csv, text];
    files.extend(plot::diagnosis(
        dir,
        z,
        codebook,
        &report.usage,
        &report.nearest_dist,
        labels,
    )?);
    Ok(files)
}

/// One line per metric: name, value, what it means.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    for (name, value) in report.diagnosis.fields() {
        out += &format!("{name:<20} {:>12}  {}\n", show(value), meaning(&name));
    }
    out
}

/// `diagnosis.csv`: the inputs' sizes, then every metric, one row.
pub fn csv_bytes(report: &Report, embeddings: &str, codebook: &str) -> Vec<u8> {
    let fields = report.diagnosis.fields();
    let mut header = vec!["embeddings", "codebook", "rows", "dim", "codes"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    header.extend(fields.iter().map(|(n, _)| n.clone()));
    let mut row = vec![
        embeddings.to_string(),
        codebook.to_string(),
        report.rows.to_string(),
        report.dim.to_string(),
        report.usage.len().to_string(),
    ];
    row.extend(fields.iter().map(|(_, v)| format!("{v}")));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header).expect("in memory");
    w.write_record(&row).expect("in memory");
    w.into_inner().expect("in memory")
}

/// The thresholds of the verdict; stated in it.
pub const DEAD_SHARE: f64 = 0.5;
pub const SHRUNK_RATIO: f64 = 0.5;
pub const SHRUNK_VARIANCE: f64 = 0.1;

/// What the verdict concludes, from the thresholds above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The codes sit in a region much narrower than the embeddings.
    Shrinkage,
    /// Most codes are dead although the codebook spans the embeddings.
    Underused,
    Healthy,
}

impl Kind {
    pub fn of(report: &Report) -> Kind {
        let d = &report.diagnosis;
        let dead_share = d.dead_codes / report.usage.len() as f64;
        if d.shrink_ratio < SHRUNK_RATIO || d.live_var_share < SHRUNK_VARIANCE {
            Kind::Shrinkage
        } else if dead_share > DEAD_SHARE {
            Kind::Underused
        } else {
            Kind::Healthy
        }
    }

    /// One word: `shrinkage`, `underused` or `healthy`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Shrinkage => "shrinkage",
            Kind::Underused => "underused",
            Kind::Healthy => "healthy",
        }
    }

    /// What it means, in a sentence.
    pub fn sentence(self) -> &'static str {
        match self {
            Kind::Shrinkage => "the codes sit in a region much narrower than the embeddings",
            Kind::Underused => "most codes are dead although the codebook spans the embeddings",
            Kind::Healthy => "most codes are used and the codebook spans the embeddings",
        }
    }

    /// The verdict's heading: `underused codebook`, not just the word.
    fn heading(self) -> &'static str {
        match self {
            Kind::Underused => "underused codebook",
            k => k.name(),
        }
    }
}

/// A short verdict in words, with the thresholds it used.
pub fn verdict(report: &Report) -> String {
    let d = &report.diagnosis;
    let s = report.usage.len();
    let kind = Kind::of(report);
    [
        format!(
            "{} of {s} codes dead ({:.0}%); perplexity {:.1} of at most {s}; live codes span {:.1}% of the embeddings' variance; codebook spread {:.3} of the embeddings' (shrink_ratio).",
            d.dead_codes,
            100.0 * d.dead_codes / s as f64,
            d.perplexity,
            100.0 * d.live_var_share,
            d.shrink_ratio
        ),
        format!("verdict: {}: {}", kind.heading(), kind.sentence()),
        format!(
            "thresholds: shrinkage when shrink_ratio < {SHRUNK_RATIO} or live_var_share < {SHRUNK_VARIANCE}; underused when more than {:.0}% of codes are dead.",
            100.0 * DEAD_SHARE
        ),
    ]
    .join("\n")
        + "\n"
}

fn show(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v == v.round() && v.abs() < 1e9 {
        format!("{v}")
    } else {
        format!("{v:.4}")
    }
}

fn meaning(name: &str) -> &'static str {
    match name {
        "perplexity" => "exp(entropy of code usage); S when all codes are used equally",
        "codes_used" => "codes nearest to at least one embedding",
        "dead_codes" => "codes nearest to no embedding",
        "quant_mse" => "mean squared distance of an embedding to its nearest code",
        "codebook_dist" => "mean pairwise distance between codes",
        "codebook_cos" => "mean pairwise cosine distance between codes",
        "embed_dist" => "mean pairwise distance between embeddings (subsample)",
        "shrink_ratio" => "codebook_dist / embed_dist: ≈ 1 healthy, ≪ 1 shrunk",
        "coverage" => "share of embeddings whose 5-NN ball holds a code (Naeem et al. 2020)",
        "embed_rank" => "effective rank of the centred embeddings",
        "live_rank" => "effective rank of the centred live codes",
        "live_var_share" => "variance of the live codes / variance of the embeddings",
        "classes_hit" => "classes whose mean is nearest to some live code (needs labels)",
        "token_class_entropy" => {
            "entropy of all codes' nearest-class shares (dead ones too), max ln K (needs labels)"
        }
        _ => "",
    }
}

/// Rows of `a`, all when there are at most `k`, else `k` drawn from the seed's subsample
/// stream (sorted).
fn sample_rows(a: ArrayView2<f32>, k: usize, seed: u64) -> Array2<f32> {
    if a.nrows() <= k {
        return a.to_owned();
    }
    let rng = &mut stream(seed, Stream::Subsample);
    let mut rows = rand::seq::index::sample(rng, a.nrows(), k).into_vec();
    rows.sort_unstable();
    a.select(Axis(0), &rows)
}

/// (classes_hit, token_class_entropy) with the class means of `z` as the modes: classes hit by
/// the live codes (`usage` > 0), and the entropy over all codes (the paper's p_k = |T_k|/S,
/// as a run's `token_mode_entropy`). Classes are the distinct label values, however large or
/// sparse.
fn class_metrics(
    z: ArrayView2<f32>,
    labels: &[usize],
    codebook: ArrayView2<f32>,
    usage: &[usize],
) -> (f64, f64) {
    let dense = dense_classes(labels);
    let k = dense.iter().max().map_or(0, |&c| c + 1);
    let mut sums = Array2::<f64>::zeros((k, z.ncols()));
    let mut counts = vec![0usize; k];
    for (row, &c) in z.rows().into_iter().zip(&dense) {
        counts[c] += 1;
        sums.row_mut(c)
            .iter_mut()
            .zip(row)
            .for_each(|(s, &v)| *s += v as f64);
    }
    let means = Array2::from_shape_fn((k, z.ncols()), |(c, j)| {
        (sums[[c, j]] / counts[c] as f64) as f32
    });
    let live: Vec<usize> = usage.iter().map(|&u| usize::from(u > 0)).collect();
    (
        metrics::modes_hit(&metrics::mode_counts_weighted(
            codebook,
            means.view(),
            &live,
        )) as f64,
        metrics::entropy(&metrics::mode_counts(codebook, means.view())),
    )
}

/// Each label replaced by the rank of its value among the distinct values (0..K).
fn dense_classes(labels: &[usize]) -> Vec<usize> {
    let mut values = labels.to_vec();
    values.sort_unstable();
    values.dedup();
    labels
        .iter()
        .map(|l| {
            values
                .binary_search(l)
                .expect("every label is among the values")
        })
        .collect()
}

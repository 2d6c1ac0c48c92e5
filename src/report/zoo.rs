//! Remedies compared: every arm of a sweep against its declared baseline, per configuration,
//! on the four numbers that tell a healthy codebook from a shrunk one — perplexity per code,
//! shrink ratio, MSE and modes reconstructed. The figure (`plot::zoo`), `zoo.csv` and the
//! paper's "remedies" sentences all come from `tables`.
//!
//! Only for scenarios that declare a baseline and have more than two arms: with two arms the
//! comparison is the headline and `comparisons.csv` already says everything.

use std::path::{Path, PathBuf};

use crate::report::claims::{ci, g};
use crate::report::stats::MeanCi;
use crate::report::summary::{self, Summary, SummaryError, DEFERRED, EARLY, SCHEDULE};

/// Codebook size: perplexity is shown as a share of it.
const SIZE: &str = "quantizer.codebook_size";

/// The metrics of the remedies table: (runs.csv column, short name). The first is divided by
/// the codebook size to give perplexity per code.
pub const METRICS: [(&str, &str); 4] = [
    ("perplexity", "perplexity/S"),
    ("shrink_ratio", "shrink ratio"),
    ("mse", "MSE"),
    ("modes_hit", "modes hit"),
];

/// One metric of one arm.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Mean and 95% interval over seeds (perplexity divided by S).
    pub ci: MeanCi,
    /// Two-sided p of the paired t-test against the baseline on the metric itself (for
    /// perplexity/S the same as for perplexity while S is the same in both arms); NaN for the
    /// baseline.
    pub paired_p: f64,
    /// The 95% intervals of this arm and the baseline are disjoint.
    pub disjoint: bool,
}

/// One arm (method) in one configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What differs from the baseline, e.g. "restart=lru"; "baseline" for the baseline.
    pub label: String,
    /// Values of `Summary::arm_params`.
    pub arm: Vec<String>,
    pub baseline: bool,
    /// The baseline with only `schedule.kind = deferred` (when the baseline is early).
    pub deferred: bool,
    /// Runs of this arm that diverged (not in `cells`); an arm whose runs all diverged keeps
    /// its row, with n = 0, so the table says so instead of dropping it.
    pub diverged: usize,
    /// One per entry of `METRICS`.
    pub cells: Vec<Cell>,
}

/// Every arm of one configuration, sorted by perplexity per code, highest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ZooTable {
    /// The configuration: values of `Summary::compare_params` (e.g. the codebook size).
    pub config: Vec<(String, String)>,
    /// The baseline as `key=value` pairs, e.g. "init=kmeans, schedule.kind=early".
    pub baseline: String,
    pub rows: Vec<Row>,
}

impl ZooTable {
    pub fn baseline_row(&self) -> Option<&Row> {
        self.rows.iter().find(|r| r.baseline)
    }
}

/// The remedies tables of `s`, one per configuration with more than two arms; empty when the
/// scenario declares no baseline.
pub fn tables(s: &Summary) -> Vec<ZooTable> {
    if !s.declared {
        return Vec::new();
    }
    let arms = s.arms();
    let base = &arms[0];
    let early_base = s.baseline.iter().any(|(k, v)| k == SCHEDULE && v == EARLY);
    let baseline = summary::baseline_label(&s.baseline);
    let mut out = Vec::new();
    for config in s.slices(&s.arm_params.iter().map(String::as_str).collect::<Vec<_>>()) {
        let mut rows = Vec::new();
        for arm in &arms {
            let mut at: Vec<(&str, &str)> = config
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            at.extend(
                s.arm_params
                    .iter()
                    .map(String::as_str)
                    .zip(arm.iter().map(String::as_str)),
            );
            let is_base = arm == base;
            let size = value(s, &at, SIZE).and_then(|v| v.parse::<f64>().ok());
            let mut cells = Vec::new();
            let mut diverged = 0;
            for (i, (metric, _)) in METRICS.iter().enumerate() {
                let Some(r) = s.find(metric, &at) else {
                    break;
                };
                diverged = r.n_diverged;
                let mut ci = r.ci;
                if i == 0 {
                    let size = size.unwrap_or(f64::NAN);
                    ci = MeanCi {
                        n: ci.n,
                        mean: ci.mean / size,
                        lo: ci.lo / size,
                        hi: ci.hi / size,
                    };
                }
                let (paired_p, disjoint) = if is_base {
                    (f64::NAN, false)
                } else {
                    s.comparison(metric, &at)
                        .map_or((f64::NAN, false), |c| (c.paired.p, c.significant))
                };
                cells.push(Cell {
                    ci,
                    paired_p,
                    disjoint,
                });
            }
            // An arm that did not run in this configuration has no row.
            if cells.len() < METRICS.len() || (cells[0].ci.n == 0 && diverged == 0) {
                continue;
            }
            let deferred = early_base
                && !is_base
                && s.baseline.iter().zip(arm).all(|((k, b), a)| {
                    if k == SCHEDULE {
                        a == DEFERRED
                    } else {
                        a == b
                    }
                });
            rows.push(Row {
                label: summary::arm_label(&s.baseline, arm),
                arm: arm.clone(),
                baseline: is_base,
                deferred,
                diverged,
                cells,
            });
        }
        if rows.len() <= 2 || !rows.iter().any(|r| r.baseline) {
            continue;
        }
        // Highest perplexity per code first; undefined means last.
        rows.sort_by(|a, b| {
            let key = |r: &Row| r.cells[0].ci.mean;
            match (key(a).is_nan(), key(b).is_nan()) {
                (false, false) => key(b).total_cmp(&key(a)),
                (x, y) => x.cmp(&y),
            }
        });
        out.push(ZooTable {
            config,
            baseline: baseline.clone(),
            rows,
        });
    }
    out
}

/// A parameter's value in a lookup, or its fixed value.
fn value<'a>(s: &'a Summary, at: &[(&'a str, &'a str)], key: &str) -> Option<&'a str> {
    at.iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
        .or_else(|| s.fixed(key))
}

/// `dir/zoo.csv`: per configuration and arm (sorted as in the figure), the mean and 95%
/// interval of each metric and its paired p against the baseline. Written only when there
/// is a table; returns the path then.
pub fn write_csv(dir: &Path, tables: &[ZooTable]) -> Result<Option<PathBuf>, SummaryError> {
    let Some(first) = tables.first() else {
        return Ok(None);
    };
    let mut header: Vec<String> = first.config.iter().map(|(k, _)| k.clone()).collect();
    header.extend(["rank", "arm", "baseline", "deferred", "diverged"].map(String::from));
    for (metric, _) in METRICS {
        let name = if metric == "perplexity" {
            "perplexity_per_code"
        } else {
            metric
        };
        for part in ["n", "mean", "lo", "hi"] {
            header.push(format!("{name}_{part}"));
        }
        header.push(format!("{metric}_paired_p"));
    }
    let mut lines = vec![header];
    for t in tables {
        for (rank, r) in t.rows.iter().enumerate() {
            let mut l: Vec<String> = t.config.iter().map(|(_, v)| v.clone()).collect();
            l.push((rank + 1).to_string());
            l.push(r.label.clone());
            l.push(r.baseline.to_string());
            l.push(r.deferred.to_string());
            l.push(r.diverged.to_string());
            for c in &r.cells {
                l.push(c.ci.n.to_string());
                l.extend([c.ci.mean, c.ci.lo, c.ci.hi, c.paired_p].map(summary::num));
            }
            lines.push(l);
        }
    }
    let path = dir.join("zoo.csv");
    summary::write_atomic(&path, &lines)?;
    Ok(Some(path))
}

/// One sentence per method (every row but the baseline) stating what the data show, e.g.
/// "restart=lru: perplexity/S 0.93 [0.90, 0.96] vs 0.10 [0.05, 0.15] for the baseline (paired
/// p = 2.1e-5), …: beats the baseline in perplexity (95% CIs disjoint)."
pub fn sentences(t: &ZooTable) -> Vec<String> {
    let Some(base) = t.baseline_row() else {
        return Vec::new();
    };
    t.rows
        .iter()
        .filter(|r| !r.baseline)
        .map(|r| {
            let ppl = &r.cells[0];
            if ppl.ci.n == 0 {
                return format!(
                    "{}: all {} runs diverged (a non-finite loss or parameter), so there is \
                     nothing to compare.",
                    r.label, r.diverged
                );
            }
            let diverged = match r.diverged {
                0 => String::new(),
                k => format!(" ({k} of {} runs diverged and are left out)", k + ppl.ci.n),
            };
            let others: Vec<String> = METRICS
                .iter()
                .zip(&r.cells)
                .zip(&base.cells)
                .skip(1)
                .map(|(((_, name), c), b)| format!("{name} {} vs {}", g(c.ci.mean), g(b.ci.mean)))
                .collect();
            let verdict = if ppl.disjoint && ppl.ci.mean > base.cells[0].ci.mean {
                "beats the baseline in perplexity (95% CIs disjoint)"
            } else if ppl.disjoint {
                "lower perplexity than the baseline (95% CIs disjoint)"
            } else {
                "does not beat the baseline in perplexity (95% CIs overlap or undefined)"
            };
            format!(
                "{}{diverged}: perplexity/S {} vs {} for the baseline (paired p = {}); {}: \
                 {verdict}.",
                r.label,
                ci(&ppl.ci),
                ci(&base.cells[0].ci),
                p_text(ppl.paired_p),
                others.join(", ")
            )
        })
        .collect()
}

/// A p-value: scientific below 1e-3, else three decimals; "n/a" when undefined.
pub fn p_text(p: f64) -> String {
    if p.is_nan() {
        "n/a".into()
    } else if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

//! `summary.csv` and `comparisons.csv`: every metric as a mean with a 95% t-interval over
//! seeds, per configuration of the swept parameters, and early vs deferred side by side.
//!
//! Works from `runs.csv` alone. Its parameter columns are those between `seconds` and `seed`,
//! its metrics those after `seed`, so the summary follows the sweep's columns without a second
//! list to keep in step.

use std::path::{Path, PathBuf};

use crate::report::stats::{mean_ci, welch_test, MeanCi, Welch};
use crate::report::table::{Table, TableError};

/// Confidence level of every interval in the summary.
pub const LEVEL: f64 = 0.95;
/// The parameter that separates the two arms of a comparison.
pub const SCHEDULE: &str = "schedule.kind";

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("{path}: expected columns `seconds` then `seed` around the parameters")]
    Layout { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One metric of one configuration, over its seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    /// Values of `Summary::params`, in that order.
    pub params: Vec<String>,
    pub metric: String,
    /// Over runs with status `ok` only; `ci.n` counts them (NaN metrics excluded).
    pub ci: MeanCi,
    /// Runs of this configuration that diverged (excluded from `ci`).
    pub n_diverged: usize,
}

/// One metric of one configuration of the other parameters, early vs deferred.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Values of `Summary::compare_params`, in that order.
    pub params: Vec<String>,
    pub metric: String,
    pub early: MeanCi,
    pub deferred: MeanCi,
    pub welch: Welch,
    /// The two 95% intervals are both defined and do not overlap. Deliberately stricter than
    /// Welch p < 0.05 (non-overlap implies p well below 0.05); `welch.p` is reported too.
    pub significant: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Parameter columns that take more than one value (the swept axes, seed excluded).
    pub params: Vec<String>,
    /// The other parameter columns, with the one value each takes.
    pub fixed: Vec<(String, String)>,
    pub metrics: Vec<String>,
    pub rows: Vec<SummaryRow>,
    /// `params` without `schedule.kind`; empty `comparisons` when the schedule is not swept.
    pub compare_params: Vec<String>,
    pub comparisons: Vec<Comparison>,
}

impl Summary {
    pub fn varies(&self, param: &str) -> bool {
        self.params.iter().any(|p| p == param)
    }

    /// The value of a parameter that is not swept.
    pub fn fixed(&self, param: &str) -> Option<&str> {
        self.fixed
            .iter()
            .find(|(k, _)| k == param)
            .map(|(_, v)| v.as_str())
    }

    /// Distinct values of a swept parameter, in order of first appearance.
    pub fn values(&self, param: &str) -> Vec<String> {
        let Some(i) = self.params.iter().position(|p| p == param) else {
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        for r in &self.rows {
            if !out.contains(&r.params[i]) {
                out.push(r.params[i].clone());
            }
        }
        out
    }

    /// The row of `metric` whose parameters take the values in `at`; None unless exactly one
    /// row matches (so an under-specified lookup cannot silently pick an arbitrary one).
    pub fn find(&self, metric: &str, at: &[(&str, &str)]) -> Option<&SummaryRow> {
        unique(
            self.rows
                .iter()
                .filter(|r| r.metric == metric && matches(&self.params, &r.params, at)),
        )
    }

    /// The comparison of `metric` at `at`; None unless exactly one matches.
    pub fn comparison(&self, metric: &str, at: &[(&str, &str)]) -> Option<&Comparison> {
        unique(
            self.comparisons
                .iter()
                .filter(|c| c.metric == metric && matches(&self.compare_params, &c.params, at)),
        )
    }

    /// Every combination of the swept parameters other than `axes`, in order of first
    /// appearance: the slices in which a claim about `axes` is checked separately.
    pub fn slices(&self, axes: &[&str]) -> Vec<Vec<(String, String)>> {
        let others: Vec<usize> = (0..self.params.len())
            .filter(|&i| !axes.contains(&self.params[i].as_str()))
            .collect();
        let mut out: Vec<Vec<(String, String)>> = Vec::new();
        for r in &self.rows {
            let s: Vec<(String, String)> = others
                .iter()
                .map(|&i| (self.params[i].clone(), r.params[i].clone()))
                .collect();
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }
}

fn matches(names: &[String], values: &[String], at: &[(&str, &str)]) -> bool {
    at.iter().all(|(k, v)| {
        names
            .iter()
            .position(|n| n == k)
            .is_some_and(|i| values[i] == *v)
    })
}

fn unique<T>(mut it: impl Iterator<Item = T>) -> Option<T> {
    let first = it.next()?;
    it.next().is_none().then_some(first)
}

/// The parameter and metric columns of a runs table: parameters lie between `seconds` and
/// `seed`, metrics after `seed`.
pub fn layout(t: &Table) -> Result<(Vec<&str>, Vec<&str>), SummaryError> {
    let seconds = t.column("seconds")?;
    let seed = t.column("seed")?;
    if seed <= seconds {
        return Err(SummaryError::Layout {
            path: t.path.clone(),
        });
    }
    Ok((
        names(&t.headers[seconds + 1..seed]),
        names(&t.headers[seed + 1..]),
    ))
}

fn names(r: &[String]) -> Vec<&str> {
    r.iter().map(String::as_str).collect()
}

/// Summarise `dir/runs.csv`.
pub fn summarize(dir: &Path) -> Result<Summary, SummaryError> {
    let t = Table::read(&dir.join("runs.csv"))?;
    let (all_params, metrics) = layout(&t)?;
    let metrics: Vec<String> = metrics.iter().map(|m| m.to_string()).collect();
    let params = t.varying(&all_params);
    let mut fixed = Vec::new();
    if !t.rows.is_empty() {
        for p in all_params.iter().filter(|p| !params.contains(p)) {
            fixed.push((p.to_string(), t.get(0, p)?.to_string()));
        }
    }
    let status = t.column("status")?;
    let ok = |i: usize| t.rows[i].get(status).is_some_and(|s| s == "ok");

    let mut rows = Vec::new();
    for (key, members) in t.group_by(&params)? {
        let n_diverged = members
            .iter()
            .filter(|&&i| t.rows[i][status] == "diverged")
            .count();
        for m in &metrics {
            let xs = values(&t, &members, m, &ok)?;
            rows.push(SummaryRow {
                params: key.clone(),
                metric: m.clone(),
                ci: mean_ci(&xs, LEVEL),
                n_diverged,
            });
        }
    }

    let compare_params: Vec<&str> = params.iter().copied().filter(|p| *p != SCHEDULE).collect();
    let mut comparisons = Vec::new();
    if params.contains(&SCHEDULE) {
        let kind = t.column(SCHEDULE)?;
        for (key, members) in t.group_by(&compare_params)? {
            let arm = |name: &str| -> Vec<usize> {
                members
                    .iter()
                    .copied()
                    .filter(|&i| t.rows[i][kind] == name)
                    .collect()
            };
            let (early, deferred) = (arm("early"), arm("deferred"));
            for m in &metrics {
                let a = values(&t, &early, m, &ok)?;
                let b = values(&t, &deferred, m, &ok)?;
                let (e, d) = (mean_ci(&a, LEVEL), mean_ci(&b, LEVEL));
                comparisons.push(Comparison {
                    params: key.clone(),
                    metric: m.clone(),
                    early: e,
                    deferred: d,
                    welch: welch_test(&a, &b),
                    significant: e.separated(&d),
                });
            }
        }
    }

    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    Ok(Summary {
        params: owned(&params),
        fixed,
        metrics,
        rows,
        compare_params: owned(&compare_params),
        comparisons,
    })
}

/// Metric `m` of the `ok` runs among `members`.
fn values(
    t: &Table,
    members: &[usize],
    m: &str,
    ok: &impl Fn(usize) -> bool,
) -> Result<Vec<f64>, TableError> {
    members
        .iter()
        .filter(|&&i| ok(i))
        .map(|&i| t.num(i, m))
        .collect()
}

/// Write `dir/summary.csv` and `dir/comparisons.csv` (the latter only with a header when the
/// schedule is not swept, so readers can rely on the file existing).
pub fn write(dir: &Path, s: &Summary) -> Result<(), SummaryError> {
    let mut header: Vec<String> = s.params.clone();
    header.extend(
        ["metric", "n", "n_diverged", "mean", "ci_lo", "ci_hi"]
            .iter()
            .map(|h| h.to_string()),
    );
    let mut lines = vec![header];
    for r in &s.rows {
        let mut l = r.params.clone();
        l.push(r.metric.clone());
        l.push(r.ci.n.to_string());
        l.push(r.n_diverged.to_string());
        l.extend([r.ci.mean, r.ci.lo, r.ci.hi].map(num));
        lines.push(l);
    }
    write_atomic(&dir.join("summary.csv"), &lines)?;

    let mut header: Vec<String> = s.compare_params.clone();
    header.extend(
        [
            "metric",
            "early_mean",
            "early_lo",
            "early_hi",
            "deferred_mean",
            "deferred_lo",
            "deferred_hi",
            "welch_p",
            "significant",
        ]
        .iter()
        .map(|h| h.to_string()),
    );
    let mut lines = vec![header];
    for c in &s.comparisons {
        let mut l = c.params.clone();
        l.push(c.metric.clone());
        l.extend([c.early.mean, c.early.lo, c.early.hi].map(num));
        l.extend([c.deferred.mean, c.deferred.lo, c.deferred.hi, c.welch.p].map(num));
        l.push(c.significant.to_string());
        lines.push(l);
    }
    write_atomic(&dir.join("comparisons.csv"), &lines)
}

/// Shortest text that reads back to the same f64; NaN as `NaN`, as in runs.csv.
fn num(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else {
        x.to_string()
    }
}

/// Write CSV atomically (see `crate::atomic`).
fn write_atomic(path: &Path, lines: &[Vec<String>]) -> Result<(), SummaryError> {
    let err = |source| SummaryError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    for l in lines {
        w.write_record(l).map_err(|e| err(e.into()))?;
    }
    let bytes = w.into_inner().map_err(|e| err(e.into_error()))?;
    crate::atomic::write(path, &bytes).map_err(err)
}

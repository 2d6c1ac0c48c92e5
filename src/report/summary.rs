//! `summary.csv` and `comparisons.csv`: every metric as a mean with a 95% t-interval over
//! seeds, per configuration of the swept parameters, and every arm against the baseline arm.
//!
//! Works from `runs.csv` (`Results` loads it), plus the `[compare]` baseline and the seeds of
//! the stored scenario. Its parameter columns are those between `seconds` and `seed`, its metrics
//! those after `seed`, so the summary follows the sweep's columns without a second list to
//! keep in step.
//!
//! The baseline's keys tell arms apart; the other swept parameters are configurations, and in
//! each configuration every other arm is compared with the baseline: paired by seed (runs with
//! one seed share their data and initial weights), with Welch's test alongside.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::report::stats::{mean_ci, paired_test, welch_test, MeanCi, Paired, Welch};
use crate::report::table::{Table, TableError};
use crate::study::scenario::{is_default, ScenarioError};

/// Confidence level of every interval in the summary.
pub const LEVEL: f64 = 0.95;
/// The parameter that separates the arms of a comparison unless the scenario declares a
/// baseline; its baseline value is `EARLY`.
pub const SCHEDULE: &str = "schedule.kind";
pub const EARLY: &str = "early";
pub const DEFERRED: &str = "deferred";

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("{path}: expected columns `seconds` then `seed` around the parameters")]
    Layout { path: PathBuf },
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("{path}: the baseline key `{key}` of scenario.toml is not a parameter column")]
    BaselineColumn { path: PathBuf, key: String },
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
    /// Runs of this configuration that failed (excluded from `ci`).
    pub n_failed: usize,
    /// Runs of this configuration in runs.csv, whatever their status.
    pub n_runs: usize,
}

/// One metric of one arm against the baseline, in one configuration of the other parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Values of `Summary::compare_params`, in that order.
    pub params: Vec<String>,
    /// Values of `Summary::arm_params` for the compared arm, in that order.
    pub arm: Vec<String>,
    /// The arm by what differs from the baseline, e.g. "schedule.kind=deferred" (`arm_label`).
    pub label: String,
    pub metric: String,
    pub baseline: MeanCi,
    pub other: MeanCi,
    /// Arm − baseline over the seeds both have.
    pub paired: Paired,
    /// Arm vs baseline, unpaired.
    pub welch: Welch,
    /// The two 95% intervals are both defined and do not overlap. Deliberately stricter than
    /// p < 0.05 (non-overlap implies p well below 0.05); both p-values are reported too.
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
    /// The baseline arm: (key, value), declared in scenario.toml or by default `schedule.kind
    /// = early` when the schedule is swept; empty (and no comparisons) otherwise.
    pub baseline: Vec<(String, String)>,
    /// Whether `baseline` was declared by the scenario (not the default).
    pub declared: bool,
    /// The baseline's keys: the parameters whose values tell arms apart.
    pub arm_params: Vec<String>,
    /// `params` without `arm_params`: the configurations within which arms are compared.
    pub compare_params: Vec<String>,
    pub comparisons: Vec<Comparison>,
    /// Runs each configuration should have: the scenario's seeds. A seed missing from every
    /// configuration still counts as missing, so no claim passes on fewer seeds than asked.
    pub expected: usize,
    /// Configurations (`SummaryRow::params`) looked up by `find` and `comparison` since the
    /// last `take_seen`: what a claim's verdict rests on, so its run counts can be reported.
    pub seen: RefCell<BTreeSet<Vec<String>>>,
}

/// Runs behind a set of configurations, by status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCounts {
    /// "n = 5 per arm (4 arms), none diverged, failed or missing", or the arms that fall short.
    pub text: String,
    /// Every configuration has every seed, all `ok`.
    pub complete: bool,
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
        let row = unique(
            self.rows
                .iter()
                .filter(|r| r.metric == metric && matches(&self.params, &r.params, at)),
        )?;
        self.seen.borrow_mut().insert(row.params.clone());
        Some(row)
    }

    /// Notes as seen every configuration matching `at`.
    fn touch(&self, at: &[(&str, &str)]) {
        let Some(metric) = self.metrics.first() else {
            return;
        };
        let mut seen = self.seen.borrow_mut();
        for r in &self.rows {
            if &r.metric == metric && matches(&self.params, &r.params, at) {
                seen.insert(r.params.clone());
            }
        }
    }

    /// The configurations looked up since the last call, cleared.
    pub fn take_seen(&self) -> Vec<Vec<String>> {
        std::mem::take(&mut *self.seen.borrow_mut())
            .into_iter()
            .collect()
    }

    /// Every configuration of the summary.
    pub fn configurations(&self) -> Vec<Vec<String>> {
        let mut out: Vec<Vec<String>> = Vec::new();
        for r in &self.rows {
            if !out.contains(&r.params) {
                out.push(r.params.clone());
            }
        }
        out
    }

    /// How many runs stand behind `configs`: per configuration, `ok` runs of the `expected`
    /// seeds (a configuration with fewer rows is missing seeds).
    pub fn run_counts(&self, configs: &[Vec<String>]) -> RunCounts {
        let expected = self.expected;
        let mut short = Vec::new();
        let mut oks = BTreeSet::new();
        let (mut diverged, mut failed, mut missing) = (0, 0, 0);
        for c in configs {
            let Some(r) = self.rows.iter().find(|r| &r.params == c) else {
                continue;
            };
            let ok = r.n_runs - r.n_diverged - r.n_failed;
            oks.insert(ok);
            diverged += r.n_diverged;
            failed += r.n_failed;
            missing += expected.saturating_sub(r.n_runs);
            if ok < expected {
                let name: Vec<String> = self
                    .params
                    .iter()
                    .zip(c)
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                short.push(format!(
                    "[{}] {ok} ok of {expected} ({} diverged, {} failed, {} missing)",
                    name.join(" "),
                    r.n_diverged,
                    r.n_failed,
                    expected.saturating_sub(r.n_runs)
                ));
            }
        }
        let arms = configs.len();
        if short.is_empty() {
            return RunCounts {
                text: format!(
                    "n = {expected} per arm ({arms} arm{}), none diverged, failed or missing",
                    if arms == 1 { "" } else { "s" }
                ),
                complete: arms > 0,
            };
        }
        let range: Vec<String> = oks.iter().map(usize::to_string).collect();
        RunCounts {
            text: format!(
                "incomplete: n = {} of {expected} per arm ({arms} arms; {diverged} runs diverged, \
                 {failed} failed, {missing} missing): {}",
                range.join("–"),
                short.join("; ")
            ),
            complete: false,
        }
    }

    /// The comparison of `metric` at `at` (configuration and arm values); None unless exactly
    /// one matches.
    pub fn comparison(&self, metric: &str, at: &[(&str, &str)]) -> Option<&Comparison> {
        let names: Vec<String> = self
            .compare_params
            .iter()
            .chain(&self.arm_params)
            .cloned()
            .collect();
        unique(self.comparisons.iter().filter(|c| {
            let values: Vec<String> = c.params.iter().chain(&c.arm).cloned().collect();
            c.metric == metric && matches(&names, &values, at)
        }))
        .inspect(|c| {
            let config: Vec<(&str, &str)> = self
                .compare_params
                .iter()
                .zip(&c.params)
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let arm = self.arm_params.iter().zip(&c.arm);
            let base = self.baseline.iter().map(|(k, v)| (k, v));
            for side in [arm.collect::<Vec<_>>(), base.collect()] {
                let mut at = config.clone();
                at.extend(side.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                self.touch(&at);
            }
        })
    }

    /// The comparison of `metric` at configuration `at` between the plain deferred arm (the
    /// baseline with `schedule.kind = deferred` only) and the baseline, when the baseline is
    /// early quantization; None otherwise or unless exactly one matches.
    pub fn deferred_vs_early(&self, metric: &str, at: &[(&str, &str)]) -> Option<&Comparison> {
        if !self
            .baseline
            .iter()
            .any(|(k, v)| k == SCHEDULE && v == EARLY)
        {
            return None;
        }
        let mut full: Vec<(&str, &str)> = at
            .iter()
            .copied()
            .filter(|(k, _)| !self.arm_params.iter().any(|p| p == k))
            .collect();
        for (k, v) in &self.baseline {
            full.push((k, if k == SCHEDULE { DEFERRED } else { v }));
        }
        self.comparison(metric, &full)
    }

    /// The arms (values of `arm_params`) in order of first appearance, the baseline first;
    /// empty without a baseline.
    pub fn arms(&self) -> Vec<Vec<String>> {
        if self.baseline.is_empty() {
            return Vec::new();
        }
        let mut out = vec![self.baseline.iter().map(|(_, v)| v.clone()).collect()];
        for c in &self.comparisons {
            if !out.contains(&c.arm) {
                out.push(c.arm.clone());
            }
        }
        out
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

impl Summary {
    /// Summarises runs table `t`, comparing arms with the `declared` baseline (None:
    /// `schedule.kind = early` when the schedule is swept and has an early arm, else no
    /// comparisons). `seeds` is how many runs the scenario asked for per configuration; None
    /// (tables without a stored scenario) counts the distinct seeds in `t`.
    pub fn new(
        t: &Table,
        declared: Option<Vec<(String, String)>>,
        seeds: Option<usize>,
    ) -> Result<Summary, SummaryError> {
        let (all_params, metrics) = layout(t)?;
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
            let count = |s: &str| members.iter().filter(|&&i| t.rows[i][status] == s).count();
            let (n_diverged, n_failed) = (count("diverged"), count("failed"));
            for m in &metrics {
                let xs = values(t, &members, m, &ok)?;
                rows.push(SummaryRow {
                    params: key.clone(),
                    metric: m.clone(),
                    ci: mean_ci(&xs, LEVEL),
                    n_diverged,
                    n_failed,
                    n_runs: members.len(),
                });
            }
        }

        let declared_at_all = declared.is_some();
        let baseline = match declared {
            Some(b) => b,
            None => default_baseline(t, &params)?,
        };
        for (k, _) in &baseline {
            if !all_params.contains(&k.as_str()) {
                return Err(SummaryError::BaselineColumn {
                    path: t.path.clone(),
                    key: k.clone(),
                });
            }
        }
        let arm_params: Vec<&str> = baseline.iter().map(|(k, _)| k.as_str()).collect();
        let compare_params: Vec<&str> = params
            .iter()
            .copied()
            .filter(|p| !arm_params.contains(p))
            .collect();
        let base_values: Vec<&str> = baseline.iter().map(|(_, v)| v.as_str()).collect();
        let mut comparisons = Vec::new();
        if !baseline.is_empty() {
            let arm_cols: Vec<usize> = arm_params
                .iter()
                .map(|p| t.column(p))
                .collect::<Result<_, _>>()?;
            let seed = t.column("seed")?;
            let arm_of = |i: usize| -> Vec<&str> {
                arm_cols.iter().map(|&c| t.rows[i][c].as_str()).collect()
            };
            for (key, members) in t.group_by(&compare_params)? {
                let base: Vec<usize> = members
                    .iter()
                    .copied()
                    .filter(|&i| arm_of(i) == base_values)
                    .collect();
                if base.is_empty() {
                    continue;
                }
                let mut arms: Vec<Vec<&str>> = Vec::new();
                for &i in &members {
                    let a = arm_of(i);
                    if a != base_values && !arms.contains(&a) {
                        arms.push(a);
                    }
                }
                for arm in arms {
                    let other: Vec<usize> = members
                        .iter()
                        .copied()
                        .filter(|&i| arm_of(i) == arm)
                        .collect();
                    let arm: Vec<String> = arm.iter().map(|v| v.to_string()).collect();
                    let label = arm_label(&baseline, &arm);
                    // Seeds of the arm that the baseline has too, in the arm's order.
                    let pairs: Vec<(usize, usize)> = other
                        .iter()
                        .filter_map(|&i| {
                            base.iter()
                                .find(|&&j| t.rows[j][seed] == t.rows[i][seed])
                                .map(|&j| (i, j))
                        })
                        .collect();
                    for m in &metrics {
                        let a = values(t, &other, m, &ok)?;
                        let b = values(t, &base, m, &ok)?;
                        let (ci_a, ci_b) = (mean_ci(&a, LEVEL), mean_ci(&b, LEVEL));
                        // A diverged side of a pair reads as NaN and drops the pair.
                        let side = |i: usize| -> Result<f64, TableError> {
                            if ok(i) {
                                t.num(i, m)
                            } else {
                                Ok(f64::NAN)
                            }
                        };
                        let pa = pairs
                            .iter()
                            .map(|p| side(p.0))
                            .collect::<Result<Vec<_>, _>>()?;
                        let pb = pairs
                            .iter()
                            .map(|p| side(p.1))
                            .collect::<Result<Vec<_>, _>>()?;
                        comparisons.push(Comparison {
                            params: key.clone(),
                            arm: arm.clone(),
                            label: label.clone(),
                            metric: m.clone(),
                            baseline: ci_b,
                            other: ci_a,
                            paired: paired_test(&pa, &pb, LEVEL),
                            welch: welch_test(&a, &b),
                            significant: ci_a.separated(&ci_b),
                        });
                    }
                }
            }
        }

        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        let (arm_params, compare_params) = (owned(&arm_params), owned(&compare_params));
        let expected = match seeds {
            Some(n) => n,
            None => {
                let seed = t.column("seed")?;
                let distinct: BTreeSet<&str> = t.rows.iter().map(|r| r[seed].as_str()).collect();
                distinct.len()
            }
        };
        Ok(Summary {
            expected,
            params: owned(&params),
            fixed,
            metrics,
            rows,
            baseline,
            declared: declared_at_all,
            arm_params,
            compare_params,
            comparisons,
            seen: RefCell::default(),
        })
    }
}

/// `schedule.kind = early` when the schedule varies among the runs and has an early arm.
fn default_baseline(t: &Table, params: &[&str]) -> Result<Vec<(String, String)>, TableError> {
    if !params.contains(&SCHEDULE) {
        return Ok(Vec::new());
    }
    let kind = t.column(SCHEDULE)?;
    Ok(if t.rows.iter().any(|r| r[kind] == EARLY) {
        vec![(SCHEDULE.to_string(), EARLY.to_string())]
    } else {
        Vec::new()
    })
}

/// An arm named by the values in which it differs from the baseline, e.g.
/// "schedule.kind=deferred, restart=kmeans" (`quantizer.` keys without their section, since the
/// quantizer is what the compared methods change); "baseline" for the baseline itself.
pub fn arm_label(baseline: &[(String, String)], arm: &[String]) -> String {
    let parts: Vec<String> = baseline
        .iter()
        .zip(arm)
        .filter(|((_, b), a)| b != *a)
        .map(|((k, _), a)| label_part(k, a))
        .collect();
    if parts.is_empty() {
        "baseline".into()
    } else {
        parts.join(", ")
    }
}

/// The baseline spelled out as `arm_label` spells arms, e.g. "init=kmeans, schedule.kind=early".
pub fn baseline_label(baseline: &[(String, String)]) -> String {
    // A method list's baseline sets every remedy's key to "off": name only what is not a
    // default, and the schedule, which is the paper's own contrast.
    let parts: Vec<String> = baseline
        .iter()
        .filter(|(k, v)| k == SCHEDULE || !is_default(k, v))
        .map(|(k, v)| label_part(k, v))
        .collect();
    if parts.is_empty() {
        "defaults".into()
    } else {
        parts.join(", ")
    }
}

fn label_part(key: &str, value: &str) -> String {
    format!("{}={value}", key.strip_prefix("quantizer.").unwrap_or(key))
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

/// Write `dir/summary.csv` and `dir/comparisons.csv` (the latter only with a header when there
/// is no baseline, so readers can rely on the file existing).
pub fn write(dir: &Path, s: &Summary) -> Result<(), SummaryError> {
    let mut header: Vec<String> = s.params.clone();
    header.extend(
        [
            "metric",
            "n",
            "n_diverged",
            "n_failed",
            "mean",
            "ci_lo",
            "ci_hi",
        ]
        .iter()
        .map(|h| h.to_string()),
    );
    let mut lines = vec![header];
    for r in &s.rows {
        let mut l = r.params.clone();
        l.push(r.metric.clone());
        l.push(r.ci.n.to_string());
        l.push(r.n_diverged.to_string());
        l.push(r.n_failed.to_string());
        l.extend([r.ci.mean, r.ci.lo, r.ci.hi].map(num));
        lines.push(l);
    }
    write_atomic(&dir.join("summary.csv"), &lines)?;

    let mut header: Vec<String> = s.compare_params.clone();
    header.extend(s.arm_params.iter().cloned());
    header.extend(COMPARISON_COLUMNS.iter().map(|h| h.to_string()));
    let mut lines = vec![header];
    for c in &s.comparisons {
        let mut l = c.params.clone();
        l.extend(c.arm.iter().cloned());
        l.push(c.label.clone());
        l.push(c.metric.clone());
        l.push(c.baseline.n.to_string());
        l.extend([c.baseline.mean, c.baseline.lo, c.baseline.hi].map(num));
        l.push(c.other.n.to_string());
        l.extend([c.other.mean, c.other.lo, c.other.hi].map(num));
        l.push(c.paired.diff.n.to_string());
        l.extend(
            [
                c.paired.diff.mean,
                c.paired.diff.lo,
                c.paired.diff.hi,
                c.paired.p,
                c.welch.p,
            ]
            .map(num),
        );
        l.push(c.significant.to_string());
        lines.push(l);
    }
    write_atomic(&dir.join("comparisons.csv"), &lines)
}

/// Columns of comparisons.csv after the configuration and arm parameters.
pub const COMPARISON_COLUMNS: [&str; 17] = [
    "arm",
    "metric",
    "n_baseline",
    "baseline_mean",
    "baseline_lo",
    "baseline_hi",
    "n_arm",
    "arm_mean",
    "arm_lo",
    "arm_hi",
    "n_pairs",
    "diff",
    "diff_lo",
    "diff_hi",
    "paired_p",
    "welch_p",
    "significant",
];

/// Shortest text that reads back to the same f64; NaN as `NaN`, as in runs.csv.
pub(crate) fn num(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else {
        x.to_string()
    }
}

/// Write CSV atomically (see `crate::atomic`).
pub(crate) fn write_atomic(path: &Path, lines: &[Vec<String>]) -> Result<(), SummaryError> {
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

//! Summary and comparisons on a hand-written runs.csv.

use std::fs;
use std::path::Path;

mod common;

use common::{header, row};
use vqsim::report::summary::{summarize, write};
use vqsim::report::table::Table;
use vqsim::study::store::metric_names;

/// Schedule × codebook size, three seeds; one deferred S=64 run diverged.
fn fixture(dir: &Path) {
    let mut lines = vec![header()];
    let arms: [(&str, &str, [&str; 3]); 4] = [
        ("early", "8", ["5", "6", "7"]),
        ("deferred", "8", ["7", "7.5", "8"]),
        ("early", "64", ["6", "7", "8"]),
        ("deferred", "64", ["58", "60", "x"]),
    ];
    let mut i = 0;
    for (kind, s, ppl) in arms {
        for (seed, p) in ppl.iter().enumerate() {
            let status = if *p == "x" { "diverged" } else { "ok" };
            let set = [("schedule.kind", kind), ("quantizer.codebook_size", s)];
            lines.push(row(i, status, seed as u64, &set, &[("perplexity", p)]));
            i += 1;
        }
    }
    fs::write(dir.join("runs.csv"), lines.join("\n") + "\n").unwrap();
}

fn close(got: f64, want: f64) {
    assert!((got - want).abs() < 1e-6, "got {got}, want {want}");
}

#[test]
fn groups_by_swept_parameters_only() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let s = summarize(dir.path()).unwrap();
    assert_eq!(s.params, ["quantizer.codebook_size", "schedule.kind"]);
    assert_eq!(s.metrics, metric_names());
    assert_eq!(s.rows.len(), 4 * metric_names().len());
    assert_eq!(s.fixed("data.dim"), Some("2"));
    assert_eq!(s.fixed("schedule.kind"), None);
    assert_eq!(s.values("quantizer.codebook_size"), ["8", "64"]);
}

#[test]
fn t_interval_per_group() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let s = summarize(dir.path()).unwrap();
    // 5, 6, 7: mean 6, sd 1, t(0.975, 2) = 4.302653.
    let r = s
        .find(
            "perplexity",
            &[("schedule.kind", "early"), ("quantizer.codebook_size", "8")],
        )
        .unwrap();
    assert_eq!((r.ci.n, r.n_diverged), (3, 0));
    close(r.ci.mean, 6.0);
    close(r.ci.lo, 6.0 - 4.302_652_729_749_462 / 3f64.sqrt());
    close(r.ci.hi, 6.0 + 4.302_652_729_749_462 / 3f64.sqrt());
}

#[test]
fn diverged_runs_are_counted_not_averaged() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let s = summarize(dir.path()).unwrap();
    let r = s
        .find(
            "perplexity",
            &[
                ("schedule.kind", "deferred"),
                ("quantizer.codebook_size", "64"),
            ],
        )
        .unwrap();
    assert_eq!((r.ci.n, r.n_diverged), (2, 1));
    close(r.ci.mean, 59.0);
    // 58, 60: sd √2, standard error 1, t(0.975, 1) = 12.706205.
    close(r.ci.hi - r.ci.mean, 12.706_204_736_174_694);
}

#[test]
fn underspecified_lookup_finds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let s = summarize(dir.path()).unwrap();
    assert!(s
        .find("perplexity", &[("schedule.kind", "early")])
        .is_none());
    assert!(s.find("perplexity", &[("model.width", "64")]).is_none());
}

#[test]
fn comparisons_pair_early_and_deferred() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let s = summarize(dir.path()).unwrap();
    assert_eq!(s.compare_params, ["quantizer.codebook_size"]);
    assert_eq!(s.comparisons.len(), 2 * metric_names().len());
    // S = 8: 6 ± 2.48 vs 7.5 ± 1.24 overlap.
    let c = s
        .comparison("perplexity", &[("quantizer.codebook_size", "8")])
        .unwrap();
    close(c.early.mean, 6.0);
    close(c.deferred.mean, 7.5);
    assert!(!c.significant);
    assert!(c.welch.p > 0.05);
    // S = 64: 7 ± 2.48 vs 59 ± 12.7 are disjoint.
    let c = s
        .comparison("perplexity", &[("quantizer.codebook_size", "64")])
        .unwrap();
    assert!(c.significant);
    assert!(c.welch.p < 0.05);
    // Equal constant metrics: no difference, no p-value.
    let c = s
        .comparison("mse", &[("quantizer.codebook_size", "64")])
        .unwrap();
    assert!(!c.significant && c.welch.p.is_nan());
}

#[test]
fn no_comparisons_without_a_schedule_axis() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = vec![header()];
    for seed in 0..3 {
        lines.push(row(seed, "ok", seed as u64, &[], &[]));
    }
    fs::write(dir.path().join("runs.csv"), lines.join("\n")).unwrap();
    let s = summarize(dir.path()).unwrap();
    assert!(s.params.is_empty());
    assert_eq!(s.rows.len(), metric_names().len());
    assert!(s.comparisons.is_empty());
}

#[test]
fn written_files_read_back() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let s = summarize(dir.path()).unwrap();
    write(dir.path(), &s).unwrap();

    let t = Table::read(&dir.path().join("summary.csv")).unwrap();
    assert_eq!(
        t.headers,
        [
            "quantizer.codebook_size",
            "schedule.kind",
            "metric",
            "n",
            "n_diverged",
            "mean",
            "ci_lo",
            "ci_hi"
        ]
    );
    assert_eq!(t.rows.len(), s.rows.len());
    let i = (0..t.rows.len())
        .find(|&i| {
            t.get(i, "metric").unwrap() == "perplexity"
                && t.get(i, "schedule.kind").unwrap() == "early"
        })
        .unwrap();
    close(t.num(i, "mean").unwrap(), 6.0);
    close(
        t.num(i, "ci_lo").unwrap(),
        s.rows
            .iter()
            .find(|r| r.metric == "perplexity")
            .unwrap()
            .ci
            .lo,
    );

    let c = Table::read(&dir.path().join("comparisons.csv")).unwrap();
    assert_eq!(c.headers[0], "quantizer.codebook_size");
    assert_eq!(c.headers.last().unwrap(), "significant");
    assert_eq!(c.rows.len(), s.comparisons.len());
    let sig: Vec<&str> = (0..c.rows.len())
        .filter(|&i| c.get(i, "metric").unwrap() == "perplexity")
        .map(|i| c.get(i, "significant").unwrap())
        .collect();
    assert_eq!(sig, ["false", "true"]);
    // No temporary files left behind.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn missing_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(summarize(dir.path()).is_err());
}

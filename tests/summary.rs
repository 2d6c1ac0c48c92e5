//! Summary and comparisons on a hand-written runs.csv.

use std::fs;
use std::path::Path;

mod common;

use common::{header, row};
use vqsim::report::results::Results;
use vqsim::report::summary::{arm_label, write, Summary, COMPARISON_COLUMNS};
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
    let s = Results::load(dir.path()).unwrap().summary;
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
    let s = Results::load(dir.path()).unwrap().summary;
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
    let s = Results::load(dir.path()).unwrap().summary;
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
    let s = Results::load(dir.path()).unwrap().summary;
    assert!(s
        .find("perplexity", &[("schedule.kind", "early")])
        .is_none());
    assert!(s.find("perplexity", &[("model.width", "64")]).is_none());
}

#[test]
fn comparisons_pair_early_and_deferred() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let s = Results::load(dir.path()).unwrap().summary;
    assert_eq!(s.compare_params, ["quantizer.codebook_size"]);
    assert_eq!(s.comparisons.len(), 2 * metric_names().len());
    // S = 8: 6 ± 2.48 vs 7.5 ± 1.24 overlap.
    let c = s
        .comparison("perplexity", &[("quantizer.codebook_size", "8")])
        .unwrap();
    assert_eq!(
        (s.arm_params.as_slice(), s.declared),
        (&["schedule.kind".to_string()][..], false)
    );
    assert_eq!(
        (c.arm.as_slice(), c.label.as_str()),
        (&["deferred".to_string()][..], "schedule.kind=deferred")
    );
    close(c.baseline.mean, 6.0);
    close(c.other.mean, 7.5);
    assert!(!c.significant);
    assert!(c.welch.p > 0.05);
    // Paired by seed: differences 2, 1.5, 1 (scipy ttest_rel: t = 5.196152, p = 0.035099).
    assert_eq!(c.paired.diff.n, 3);
    close(c.paired.diff.mean, 1.5);
    close(c.paired.t, 5.196_152_422_706_632);
    close(c.paired.p, 0.035_098_718_645_984_65);
    // S = 64: 7 ± 2.48 vs 59 ± 12.7 are disjoint.
    let c = s
        .comparison("perplexity", &[("quantizer.codebook_size", "64")])
        .unwrap();
    assert!(c.significant);
    assert!(c.welch.p < 0.05);
    // The diverged seed 2 of deferred drops its pair.
    assert_eq!((c.paired.diff.n, c.other.n, c.baseline.n), (2, 2, 3));
    close(c.paired.diff.mean, 52.5); // 58 − 6, 60 − 7
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
    let s = Results::load(dir.path()).unwrap().summary;
    assert!(s.params.is_empty());
    assert_eq!(s.rows.len(), metric_names().len());
    assert!(s.comparisons.is_empty());
}

#[test]
fn written_files_read_back() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let s = Results::load(dir.path()).unwrap().summary;
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
            "n_failed",
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
    assert_eq!(c.headers[..2], ["quantizer.codebook_size", "schedule.kind"]);
    assert_eq!(c.headers[2..], COMPARISON_COLUMNS);
    assert_eq!(c.get(0, "arm").unwrap(), "schedule.kind=deferred");
    assert_eq!(c.get(0, "schedule.kind").unwrap(), "deferred");
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
    assert!(Results::load(dir.path()).is_err());
}

/// Init × schedule, three seeds, perplexity per seed given by hand.
fn zoo_fixture(dir: &Path) {
    let mut lines = vec![header()];
    let arms: [(&str, &str, [&str; 3]); 4] = [
        ("kmeans", "early", ["5", "6", "7"]),
        ("kmeans", "deferred", ["58", "60", "59"]),
        ("uniform", "early", ["3", "5", "4"]),
        ("uniform", "deferred", ["50", "55", "x"]),
    ];
    let mut i = 0;
    for (init, kind, ppl) in arms {
        for (seed, p) in ppl.iter().enumerate() {
            let status = if *p == "x" { "diverged" } else { "ok" };
            let set = [("quantizer.init", init), ("schedule.kind", kind)];
            lines.push(row(i, status, seed as u64, &set, &[("perplexity", p)]));
            i += 1;
        }
    }
    fs::write(dir.join("runs.csv"), lines.join("\n") + "\n").unwrap();
}

#[test]
fn a_declared_baseline_compares_every_other_arm_with_it() {
    let dir = tempfile::tempdir().unwrap();
    zoo_fixture(dir.path());
    let baseline = vec![
        ("quantizer.init".to_string(), "kmeans".to_string()),
        ("schedule.kind".to_string(), "early".to_string()),
    ];
    let runs = Table::read(&dir.path().join("runs.csv")).unwrap();
    let s = Summary::new(&runs, Some(baseline.clone()), None).unwrap();
    assert!(s.declared);
    assert_eq!(s.arm_params, ["quantizer.init", "schedule.kind"]);
    assert!(s.compare_params.is_empty());
    assert_eq!(s.comparisons.len(), 3 * metric_names().len());
    let labels: Vec<&str> = s
        .comparisons
        .iter()
        .filter(|c| c.metric == "perplexity")
        .map(|c| c.label.as_str())
        .collect();
    assert_eq!(
        labels,
        [
            "schedule.kind=deferred",
            "init=uniform",
            "init=uniform, schedule.kind=deferred"
        ]
    );
    let c = s
        .comparison(
            "perplexity",
            &[("quantizer.init", "uniform"), ("schedule.kind", "early")],
        )
        .unwrap();
    // 3, 5, 4 vs 5, 6, 7: differences −2, −1, −3 (scipy ttest_rel: t = −3.464102, p = 0.074180).
    close(c.paired.diff.mean, -2.0);
    close(c.paired.t, -3.464_101_615_137_755);
    close(c.paired.p, 0.074_179_900_227_448_54);
    assert_eq!(
        s.arms(),
        [
            vec!["kmeans".to_string(), "early".to_string()],
            vec!["kmeans".to_string(), "deferred".to_string()],
            vec!["uniform".to_string(), "early".to_string()],
            vec!["uniform".to_string(), "deferred".to_string()],
        ]
    );
    // The plain deferred arm is the one that changes only the schedule.
    let d = s.deferred_vs_early("perplexity", &[]).unwrap();
    assert_eq!(d.label, "schedule.kind=deferred");
    assert_eq!(
        arm_label(&baseline, &["kmeans".into(), "early".into()]),
        "baseline"
    );
}

#[test]
fn the_default_baseline_makes_init_a_configuration() {
    let dir = tempfile::tempdir().unwrap();
    zoo_fixture(dir.path());
    let s = Results::load(dir.path()).unwrap().summary;
    assert!(!s.declared);
    assert_eq!(
        s.baseline,
        [("schedule.kind".to_string(), "early".to_string())]
    );
    assert_eq!(s.compare_params, ["quantizer.init"]);
    assert_eq!(s.comparisons.len(), 2 * metric_names().len());
    let c = s
        .deferred_vs_early("perplexity", &[("quantizer.init", "uniform")])
        .unwrap();
    close(c.baseline.mean, 4.0);
    close(c.other.mean, 52.5);
}

#[test]
fn the_baseline_comes_from_scenario_toml() {
    let dir = tempfile::tempdir().unwrap();
    zoo_fixture(dir.path());
    fs::write(
        dir.path().join("scenario.toml"),
        "[sweep]\n\"quantizer.init\" = [\"kmeans\", \"uniform\"]\n\
         \"schedule.kind\" = [\"early\", \"deferred\"]\n\
         [compare]\nbaseline = { \"quantizer.init\" = \"uniform\", \"schedule.kind\" = \"early\" }\n",
    )
    .unwrap();
    let s = Results::load(dir.path()).unwrap().summary;
    assert!(s.declared);
    assert_eq!(s.arms()[0], ["uniform", "early"]);
    assert_eq!(s.comparisons.len(), 3 * metric_names().len());
}

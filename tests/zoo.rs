//! Remedies compared: the zoo tables, zoo.csv, the figure and the sentences on a hand-written
//! results directory (runs.csv and a scenario.toml declaring the baseline).

use std::fs;
use std::path::Path;

mod common;

use common::{header, row};
use vqsim::report::plot::{Figure, Projection, Zoo};
use vqsim::report::results::Results;
use vqsim::report::table::Table;
use vqsim::report::zoo::{self, METRICS};

const SCENARIO: &str = r#"
seeds = [0, 1, 2]
[sweep]
"quantizer.codebook_size" = [64, 1024]
"quantizer.init" = ["kmeans", "uniform"]
"schedule.kind" = ["early", "deferred"]
[compare]
baseline = { "schedule.kind" = "early", "quantizer.init" = "kmeans" }
"#;

/// Perplexity per seed of each (init, schedule) arm at S = 64; at S = 1024 the same × 16.
/// The other metrics follow perplexity so each arm's order is the same in every panel.
const ARMS: [(&str, &str, [f64; 3]); 4] = [
    ("kmeans", "early", [6.0, 5.0, 7.0]),
    ("kmeans", "deferred", [59.0, 60.0, 58.0]),
    ("uniform", "early", [3.0, 4.0, 4.5]),
    ("uniform", "deferred", [30.0, 36.0, 31.0]),
];

fn fixture(dir: &Path, with_scenario: bool) {
    fixture_with(dir, with_scenario, None);
}

/// As `fixture`, with every run of the (init, schedule) arm `diverged` recorded as diverged.
fn fixture_with(dir: &Path, with_scenario: bool, diverged: Option<(&str, &str)>) {
    let mut lines = vec![header()];
    let mut i = 0;
    for size in ["64", "1024"] {
        let scale: f64 = size.parse::<f64>().unwrap() / 64.0;
        for (init, kind, ppl) in ARMS {
            for (seed, p) in ppl.iter().enumerate() {
                let p = p * scale;
                let vals = [
                    ("perplexity", p.to_string()),
                    ("shrink_ratio", (p / (64.0 * scale)).to_string()),
                    ("mse", (6.0 / p).to_string()),
                    ("modes_hit", (p / 6.0).min(10.0).round().to_string()),
                ];
                let vals: Vec<(&str, &str)> = vals.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let set = [
                    ("quantizer.codebook_size", size),
                    ("quantizer.init", init),
                    ("schedule.kind", kind),
                ];
                let (status, vals) = if diverged == Some((init, kind)) {
                    ("diverged", Vec::new())
                } else {
                    ("ok", vals)
                };
                lines.push(row(i, status, seed as u64, &set, &vals));
                i += 1;
            }
        }
    }
    fs::write(dir.join("runs.csv"), lines.join("\n") + "\n").unwrap();
    if with_scenario {
        fs::write(dir.join("scenario.toml"), SCENARIO).unwrap();
    }
}

fn close(got: f64, want: f64) {
    assert!((got - want).abs() < 1e-9, "got {got}, want {want}");
}

#[test]
fn one_table_per_codebook_size_sorted_by_perplexity_per_code() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), true);
    let tables = zoo::tables(&Results::load(dir.path()).unwrap().summary);
    assert_eq!(tables.len(), 2);
    for (t, size) in tables.iter().zip(["64", "1024"]) {
        assert_eq!(
            t.config,
            [("quantizer.codebook_size".to_string(), size.to_string())]
        );
        // The baseline's init is the default, so only the schedule names it.
        assert_eq!(t.baseline, "schedule.kind=early");
        let labels: Vec<&str> = t.rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "schedule.kind=deferred",
                "init=uniform, schedule.kind=deferred",
                "baseline",
                "init=uniform"
            ]
        );
        let flags: Vec<(bool, bool)> = t.rows.iter().map(|r| (r.baseline, r.deferred)).collect();
        assert_eq!(
            flags,
            [(false, true), (false, false), (true, false), (false, false)]
        );
        // Perplexity per code: 59 / 64 at either size (× 16 at S = 1024).
        close(t.rows[0].cells[0].ci.mean, 59.0 / 64.0);
        assert_eq!(t.rows[0].cells.len(), METRICS.len());
        // Baseline has no p against itself; deferred − early per seed = 53, 55, 51 at S = 64:
        // scipy ttest_rel([59, 60, 58], [6, 5, 7]) → p = 0.000 474 3.
        assert!(t.rows[2].cells[0].paired_p.is_nan());
        if size == "64" {
            close(t.rows[0].cells[0].paired_p, 0.000_474_327_075_185_526_45);
        }
        assert!(t.rows[0].cells[0].disjoint);
    }
}

#[test]
fn sentences_say_what_each_method_does_against_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), true);
    let tables = zoo::tables(&Results::load(dir.path()).unwrap().summary);
    let s = zoo::sentences(&tables[0]);
    assert_eq!(s.len(), 3);
    assert!(
        s[0].starts_with("schedule.kind=deferred: perplexity/S 0.922 [0.883, 0.961] vs 0.0938"),
        "{}",
        s[0]
    );
    assert!(s[0].contains("paired p = 4.7e-4"), "{}", s[0]);
    assert!(s[0].ends_with("beats the baseline in perplexity (95% CIs disjoint)."));
    // 3, 4, 4.5 vs 6, 5, 7: lower, but the intervals overlap.
    assert!(s[2].starts_with("init=uniform: "), "{}", s[2]);
    assert!(s[2].contains("does not beat the baseline"), "{}", s[2]);
}

#[test]
fn figure_and_table_per_configuration() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), true);
    let results = Results::load(dir.path()).unwrap();
    let files = Zoo.draw(&results, Projection::Pca).unwrap();
    results.write_tables().unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "zoo_S64.png",
            "zoo_S64.svg",
            "zoo_S1024.png",
            "zoo_S1024.svg"
        ]
    );
    for f in &files {
        assert!(fs::metadata(f).unwrap().len() > 1000, "{}", f.display());
    }
    let svg = fs::read_to_string(dir.path().join("figures/zoo_S64.svg")).unwrap();
    for text in [
        "init=uniform,",
        "perplexity/S",
        "MSE (log)",
        "plain deferred",
    ] {
        assert!(svg.contains(text), "{text} missing from the figure");
    }
    let t = Table::read(&dir.path().join("zoo.csv")).unwrap();
    assert_eq!(t.rows.len(), 8);
    assert_eq!(
        t.headers[..5],
        [
            "quantizer.codebook_size",
            "rank",
            "arm",
            "baseline",
            "deferred"
        ]
    );
    assert_eq!(t.get(0, "arm").unwrap(), "schedule.kind=deferred");
    assert_eq!(t.get(2, "baseline").unwrap(), "true");
    assert_eq!(t.get(2, "perplexity_paired_p").unwrap(), "NaN");
    close(t.num(0, "perplexity_per_code_mean").unwrap(), 59.0 / 64.0);
    assert!(t.headers.contains(&"modes_hit_paired_p".to_string()));
}

#[test]
fn no_zoo_without_a_declared_baseline_or_with_two_arms() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), false);
    let results = Results::load(dir.path()).unwrap();
    assert!(zoo::tables(&results.summary).is_empty());
    assert!(!Zoo.fits(&results));
    assert!(Zoo.draw(&results, Projection::Pca).unwrap().is_empty());
    results.write_tables().unwrap();
    assert!(!dir.path().join("zoo.csv").exists());

    // Baseline on the schedule only: init becomes a configuration, two arms in each.
    let two = SCENARIO.replace(", \"quantizer.init\" = \"kmeans\"", "");
    fs::write(dir.path().join("scenario.toml"), two).unwrap();
    assert!(zoo::tables(&Results::load(dir.path()).unwrap().summary).is_empty());
}

#[test]
fn the_preregistered_claim_is_deferred_beats_plain_early_in_every_configuration() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), true);
    let s = Results::load(dir.path()).unwrap().summary;
    let v = vqsim::report::claims::remedies(&s).unwrap();
    assert!(v.supported, "{}", v.evidence);
    assert!(v
        .evidence
        .contains("[quantizer.codebook_size=64] early 6.00 [3.52, 8.48]"));
    assert!(v.evidence.contains("[quantizer.codebook_size=1024]"));
    // Checked on the zoo scenario only, or on a scenario with a declared baseline.
    fs::remove_file(dir.path().join("scenario.toml")).unwrap();
    let s = Results::load(dir.path()).unwrap().summary;
    assert!(vqsim::report::claims::remedies(&s).is_none());
}

#[test]
fn an_arm_whose_runs_all_diverged_is_reported_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    fixture_with(dir.path(), true, Some(("uniform", "deferred")));
    let tables = zoo::tables(&Results::load(dir.path()).unwrap().summary);
    let t = &tables[0];
    let lost = t
        .rows
        .iter()
        .find(|r| r.label == "init=uniform, schedule.kind=deferred")
        .expect("the diverged arm keeps its row");
    assert_eq!((lost.diverged, lost.cells[0].ci.n), (3, 0));
    let said = zoo::sentences(t).join("\n");
    assert!(
        said.contains("init=uniform, schedule.kind=deferred: all 3 runs diverged"),
        "{said}"
    );
    let csv = zoo::write_csv(dir.path(), &tables).unwrap().unwrap();
    let text = fs::read_to_string(csv).unwrap();
    assert!(text.lines().next().unwrap().contains(",diverged,"));
    // The figure draws the other arms and names the lost one.
    let files = Zoo
        .draw(&Results::load(dir.path()).unwrap(), Projection::Pca)
        .unwrap();
    assert!(files.iter().any(|f| f.to_string_lossy().contains("zoo")));
}

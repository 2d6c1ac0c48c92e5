//! Scenarios on a data file (`[data] path`): read once per sweep and shared, run ids that follow
//! the file's content (not its place), class means as the modes, and NaN mode metrics without
//! labels.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use vqsim::study::scenario::Scenario;
use vqsim::study::sweep::{self, ProgressMode, SweepOptions};

/// Two well-separated clusters of 60 points in 3-D as CSV (with a header), and their labels.
fn write_data(dir: &Path, shift: f32) {
    let mut x = String::from("a,b,c\n");
    let mut y = String::new();
    for i in 0..120 {
        let c = i % 2;
        let t = (i as f32 * 0.37).sin();
        let base = if c == 0 { -5.0 } else { 5.0 + shift };
        x.push_str(&format!("{},{},{}\n", base + t, base - t, 0.5 * t));
        y.push_str(&format!("{}\n", 7 * c));
    }
    fs::write(dir.join("x.csv"), x).unwrap();
    fs::write(dir.join("y.csv"), y).unwrap();
}

const SCENARIO: &str = r#"
seeds = [0, 1]

[data]
path = "x.csv"
labels = "y.csv"

[quantizer]
codebook_size = 8

[train]
epochs = 3
batch_size = 32

[schedule]
continuous_epochs = 3

[sweep]
"schedule.kind" = ["early", "deferred"]
"#;

fn load(dir: &Path, text: &str) -> Scenario {
    let path = dir.join("s.toml");
    fs::write(&path, text).unwrap();
    Scenario::load(&path).unwrap()
}

fn ids(s: &Scenario) -> Vec<String> {
    s.runs.iter().map(|r| r.id.clone()).collect()
}

fn column(runs_csv: &Path, name: &str) -> Vec<String> {
    let mut r = csv::Reader::from_path(runs_csv).unwrap();
    let col = r.headers().unwrap().iter().position(|h| h == name).unwrap();
    r.records().map(|x| x.unwrap()[col].to_string()).collect()
}

fn run(scenario: &Scenario, out: &Path) -> std::path::PathBuf {
    let mut o = SweepOptions::new(out);
    o.threads = Some(2);
    o.progress = ProgressMode::Quiet;
    let report = sweep::run_sweep(scenario, &o).unwrap();
    assert_eq!(report.ran, scenario.runs.len());
    report.dir.join("runs.csv")
}

const MODE_METRICS: [&str; 5] = [
    "modes_hit",
    "mode_entropy",
    "token_mode_entropy",
    "gen_modes_hit",
    "gen_mode_entropy",
];

#[test]
fn a_sweep_reads_the_file_once_and_never_again() {
    let tmp = tempfile::tempdir().unwrap();
    write_data(tmp.path(), 0.0);
    let scenario = load(tmp.path(), SCENARIO);
    // One read at load: every run holds the very same data (one allocation, shared).
    let shared = scenario.base.data.file.as_ref().unwrap();
    assert_eq!(scenario.runs.len(), 4);
    for r in &scenario.runs {
        let f = r.config.data.file.as_ref().unwrap();
        assert!(
            Arc::ptr_eq(&f.data, &shared.data),
            "run {} has a copy",
            r.id
        );
    }
    assert_eq!((shared.data.len(), scenario.base.data.dim), (120, 3));
    assert_eq!(shared.data.modes(), 2);
    // No read after load: with the files gone, the whole sweep still runs.
    fs::remove_file(tmp.path().join("x.csv")).unwrap();
    fs::remove_file(tmp.path().join("y.csv")).unwrap();
    let runs = run(&scenario, &tmp.path().join("out"));
    assert!(column(&runs, "status").iter().all(|s| s == "ok"));
    // Labelled: two classes, both reconstructed by the deferred arm at least.
    let hit = column(&runs, "modes_hit");
    assert!(hit.iter().all(|h| h == "1" || h == "2"), "{hit:?}");
    assert!(hit.iter().any(|h| h == "2"), "{hit:?}");
}

#[test]
fn without_labels_the_mode_metrics_are_nan_not_made_up() {
    let tmp = tempfile::tempdir().unwrap();
    write_data(tmp.path(), 0.0);
    let scenario = load(tmp.path(), &SCENARIO.replace("labels = \"y.csv\"\n", ""));
    let runs = run(&scenario, &tmp.path().join("out"));
    for name in MODE_METRICS {
        assert!(
            column(&runs, name).iter().all(|v| v == "NaN"),
            "{name} should be NaN: {:?}",
            column(&runs, name)
        );
    }
    for name in ["mse", "perplexity", "gen_precision"] {
        assert!(column(&runs, name)
            .iter()
            .all(|v| v.parse::<f64>().unwrap().is_finite()));
    }
}

#[test]
fn run_ids_follow_the_content_not_the_place() {
    let a = tempfile::tempdir().unwrap();
    write_data(a.path(), 0.0);
    let original = ids(&load(a.path(), SCENARIO));

    // The same files elsewhere (a scenario moved with its data): the same ids.
    let b = tempfile::tempdir().unwrap();
    write_data(b.path(), 0.0);
    assert_eq!(ids(&load(b.path(), SCENARIO)), original);
    // Another name for the same file: the same ids.
    fs::rename(b.path().join("x.csv"), b.path().join("moved.csv")).unwrap();
    let renamed = SCENARIO.replace("x.csv", "moved.csv");
    assert_eq!(ids(&load(b.path(), &renamed)), original);

    // Edited values, edited labels, standardizing: new ids, so stored runs are not reused.
    write_data(a.path(), 0.5);
    let edited = ids(&load(a.path(), SCENARIO));
    write_data(a.path(), 0.0);
    fs::write(a.path().join("y.csv"), "0\n1\n".repeat(60)).unwrap();
    let relabelled = ids(&load(a.path(), SCENARIO));
    write_data(a.path(), 0.0);
    let standardized = ids(&load(
        a.path(),
        &SCENARIO.replace(
            "labels = \"y.csv\"",
            "labels = \"y.csv\"\nstandardize = true",
        ),
    ));
    for other in [&edited, &relabelled, &standardized] {
        for id in other {
            assert!(!original.contains(id), "id {id} reused");
        }
    }
    // And the file's content enters the id, not only its shape: the mixture default differs.
    let mixture = ids(&load(
        a.path(),
        &SCENARIO.replace("path = \"x.csv\"\nlabels = \"y.csv\"\n", ""),
    ));
    assert!(mixture.iter().all(|id| !original.contains(id)));
}

#[test]
fn the_resolved_scenario_names_the_files_and_reloads_to_the_same_runs() {
    let tmp = tempfile::tempdir().unwrap();
    write_data(tmp.path(), 0.0);
    let scenario = load(
        tmp.path(),
        &SCENARIO.replace("[quantizer]", "standardize = true\n\n[quantizer]"),
    );
    let text = scenario.resolved_toml();
    let x = tmp.path().join("x.csv").canonicalize().unwrap();
    assert!(
        text.contains(&format!("path = \"{}\"", x.display())),
        "{text}"
    );
    assert!(text.contains("standardize = true  # z-score"), "{text}");
    assert!(text.contains("# dim = 3  # from the data file"), "{text}");
    // Reloaded from another directory: absolute paths, the same ids.
    let elsewhere = tempfile::tempdir().unwrap();
    assert_eq!(ids(&load(elsewhere.path(), &text)), ids(&scenario));
}

#[test]
fn standardize_gives_unit_variance_columns_to_the_runs() {
    let tmp = tempfile::tempdir().unwrap();
    write_data(tmp.path(), 0.0);
    let text = SCENARIO.replace("[quantizer]", "standardize = true\n\n[quantizer]");
    let scenario = load(tmp.path(), &text);
    let x = &scenario.base.data.file.as_ref().unwrap().data.x;
    for col in x.columns() {
        let n = col.len() as f64;
        let mean = col.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = col.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(
            mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
            "{mean} {var}"
        );
    }
}

#[test]
fn class_means_are_the_modes_of_the_metrics_and_no_labels_give_nan() {
    use ndarray::array;
    use vqsim::sim::data::Mixture;
    use vqsim::sim::metrics::{measure, Observation};
    // Class 4 around (0, 0), class 9 around (10, 0): means (0, 0) and (10, 0). Reconstructions
    // all land near class 4's mean, so one mode is hit and the shares are (1, 0).
    let x = array![[-1.0f32, 0.0], [1.0, 0.0], [9.0, 1.0], [11.0, -1.0]];
    let labelled = Mixture::from_file(x.clone(), Some(&[4, 4, 9, 9]), false);
    assert_eq!(labelled.means, array![[0.0f32, 0.0], [10.0, 0.0]]);
    let recon = array![[0.0f32, 0.0], [1.0, 0.0], [2.0, 0.0], [4.0, 0.0]];
    let observe = |m: &Mixture, recon: &ndarray::Array2<f32>| {
        measure(&Observation {
            x: m.x.view(),
            means: m.means.view(),
            z: m.x.view(),
            recon: recon.view(),
            quantized: None,
            subsample: &[0, 1, 2, 3],
            heldout: &[],
        })
    };
    let collapsed = observe(&labelled, &recon);
    assert_eq!(collapsed.modes_hit, 1.0);
    assert_eq!(collapsed.mode_entropy, 0.0);
    let perfect = observe(&labelled, &x);
    assert_eq!(perfect.modes_hit, 2.0);
    assert!((perfect.mode_entropy - 2f64.ln()).abs() < 1e-12);

    let unlabelled = Mixture::from_file(x.clone(), None, false);
    let m = observe(&unlabelled, &x);
    assert!(m.modes_hit.is_nan() && m.mode_entropy.is_nan());
    assert!(m.mse == 0.0);
}

#[test]
fn plot_redraws_a_results_folder_whose_data_file_is_gone() {
    let tmp = tempfile::tempdir().unwrap();
    write_data(tmp.path(), 0.0);
    let scenario = load(tmp.path(), SCENARIO);
    let dir = run(&scenario, &tmp.path().join("out"))
        .parent()
        .unwrap()
        .to_path_buf();
    fs::remove_file(tmp.path().join("x.csv")).unwrap();
    fs::remove_file(tmp.path().join("y.csv")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vqsim"))
        .arg("plot")
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "vqsim plot failed: {stderr}");
    assert!(dir.join("summary.csv").is_file());
    assert!(dir.join("figures").join("shrinkage.png").is_file());
    assert!(dir.join("figures").join("dynamics.svg").is_file());
}

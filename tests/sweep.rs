//! The sweep engine on tiny scenarios: determinism across thread counts, resume after a
//! cancel, shards and merge, stale results, divergence, bad input.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

mod common;

use common::tables::{assert_same_tables, runs_without_seconds};
use vqsim::report::results::Results;
use vqsim::report::text;
use vqsim::study::scenario::Scenario;
use vqsim::study::shard::Shard;
use vqsim::study::sweep::{self, ProgressMode, Snapshots, SweepError, SweepOptions};

/// 2 codebook sizes × 2 schedules × 2 seeds = 8 runs of a few milliseconds each.
const TINY: &str = r#"
name = "tiny"
seeds = [0, 1]

[data]
modes = 4
points_per_mode = 100

[model]
width = 16

[quantizer]
codebook_size = 8

[train]
epochs = 3
batch_size = 64

[schedule]
continuous_epochs = 3

[sweep]
"quantizer.codebook_size" = [4, 8]
"schedule.kind" = ["early", "deferred"]
"#;

fn load(dir: &Path, file: &str, text: &str) -> Scenario {
    let path = dir.join(file);
    fs::write(&path, text).unwrap();
    Scenario::load(&path).unwrap()
}

/// Every run keeps its snapshot, so that tests can compare them all.
fn opts(out: &Path, threads: usize) -> SweepOptions {
    let mut o = SweepOptions::new(out);
    o.threads = Some(threads);
    o.progress = ProgressMode::Quiet;
    o.snapshots = Snapshots::All;
    o
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn column(dir: &Path, name: &str) -> Vec<String> {
    let mut r = csv::Reader::from_path(dir.join("runs.csv")).unwrap();
    let col = r.headers().unwrap().iter().position(|h| h == name).unwrap();
    r.records().map(|x| x.unwrap()[col].to_string()).collect()
}

fn run_dirs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A reference: the whole scenario in one process, one thread.
fn reference(tmp: &Path, scenario: &Scenario) -> PathBuf {
    let out = tmp.join("reference");
    let report = sweep::run_sweep(scenario, &opts(&out, 1)).unwrap();
    assert_eq!(report.ran, scenario.runs.len());
    report.dir
}

#[test]
fn thread_count_does_not_change_the_results() {
    let tmp = tempfile::tempdir().unwrap();
    let s = load(tmp.path(), "tiny.toml", TINY);
    assert_eq!(s.runs.len(), 8);
    let one = sweep::run_sweep(&s, &opts(&tmp.path().join("t1"), 1)).unwrap();
    let two = sweep::run_sweep(&s, &opts(&tmp.path().join("t2"), 2)).unwrap();
    assert_eq!((one.threads, two.threads), (1, 2));
    assert_same_tables(&one.dir, &two.dir);
    assert_eq!(
        column(&one.dir, "run_index"),
        (0..8).map(|i| i.to_string()).collect::<Vec<_>>()
    );
    // The per-run snapshots too, byte for byte.
    for id in run_dirs(&one.dir) {
        for file in ["history.csv", "snapshot.npz"] {
            let a = one.dir.join("runs").join(&id).join(file);
            let b = two.dir.join("runs").join(&id).join(file);
            assert_eq!(fs::read(&a).ok(), fs::read(&b).ok(), "{file}");
        }
    }
    let history = read(&one.dir.join("history.csv"));
    assert!(history.starts_with("run_id,phase,epoch,total_epoch,mse,"));
    assert!(read(&one.dir.join("manifest.toml")).contains("missing = 0"));
}

/// Two runs large enough that their k-means (init and restart), evaluations and searches are
/// split into tasks, wide enough (m > 8) for the matrix-product screen.
const WIDE: &str = r#"name = "wide"
seeds = [0]
[data]
modes = 4
points_per_mode = 1500
dim = 12
[model]
latent_dim = 10
width = 32
[quantizer]
codebook_size = 300
kmeans_every = 1
[train]
epochs = 2
[sweep]
"quantizer.restart" = ["none", "kmeans"]
"#;

/// `WIDE` in the default dimensions (data and latent 2), with codes, coverage draws and the
/// subsample large enough for the evaluation's trees.
fn narrow() -> String {
    let lines: Vec<&str> = WIDE
        .lines()
        .filter(|l| !l.starts_with("dim =") && !l.starts_with("latent_dim ="))
        .collect();
    lines.join("\n").replace("\"wide\"", "\"narrow\"")
}

#[test]
fn threads_idle_beside_fewer_runs_change_no_result() {
    // 4 threads for 2 runs: the idle ones take tasks from inside the runs.
    let tmp = tempfile::tempdir().unwrap();
    for (file, text) in [("wide.toml", WIDE.to_string()), ("narrow.toml", narrow())] {
        let s = load(tmp.path(), file, &text);
        assert_eq!(s.runs.len(), 2);
        let one = sweep::run_sweep(&s, &opts(&tmp.path().join("t1"), 1)).unwrap();
        let four = sweep::run_sweep(&s, &opts(&tmp.path().join("t4"), 4)).unwrap();
        assert_same_tables(&one.dir, &four.dir);
        for id in run_dirs(&one.dir) {
            for file in ["history.csv", "snapshot.npz"] {
                let a = one.dir.join("runs").join(&id).join(file);
                let b = four.dir.join("runs").join(&id).join(file);
                assert_eq!(fs::read(&a).ok(), fs::read(&b).ok(), "{file}");
            }
        }
    }
}

#[test]
fn resume_after_cancel_skips_finished_runs_and_ends_with_the_same_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let s = load(tmp.path(), "tiny.toml", TINY);
    let whole = reference(tmp.path(), &s);

    // Cancel from the hook once 3 runs are published; with one thread no other run is in
    // flight, so exactly 3 remain.
    let out = tmp.path().join("resumed");
    let mut first = opts(&out, 1);
    let done = Arc::new(AtomicUsize::new(0));
    let (flag, counter) = (first.cancel.clone(), done.clone());
    first.on_run_done = Some(Arc::new(move |_, _| {
        if counter.fetch_add(1, Ordering::SeqCst) + 1 == 3 {
            flag.store(true, Ordering::SeqCst);
        }
    }));
    let err = sweep::run_sweep(&s, &first).unwrap_err();
    assert!(
        matches!(
            err,
            SweepError::Cancelled {
                finished: 3,
                runs: 8,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.exit_code(), 130);
    let dir = out.join("tiny");
    let kept = run_dirs(&dir);
    assert_eq!(kept.len(), 3, "{kept:?}");
    let stamps: BTreeMap<String, SystemTime> = kept
        .iter()
        .map(|id| {
            let meta = fs::metadata(dir.join("runs").join(id).join("run.csv")).unwrap();
            (id.clone(), meta.modified().unwrap())
        })
        .collect();
    // The partial tables already hold the finished runs.
    assert_eq!(column(&dir, "run_id").len(), 3);

    let mut second = opts(&out, 2);
    let recomputed = Arc::new(AtomicUsize::new(0));
    let counter = recomputed.clone();
    let finished_before = stamps.clone();
    second.on_run_done = Some(Arc::new(move |spec, _| {
        counter.fetch_add(1, Ordering::SeqCst);
        assert!(
            !finished_before.contains_key(&spec.id),
            "run {} recomputed",
            spec.id
        );
    }));
    let report = sweep::run_sweep(&s, &second).unwrap();
    assert_eq!((report.skipped, report.ran), (3, 5));
    assert_eq!(recomputed.load(Ordering::SeqCst), 5);
    for (id, stamp) in &stamps {
        let meta = fs::metadata(dir.join("runs").join(id).join("run.csv")).unwrap();
        assert_eq!(meta.modified().unwrap(), *stamp, "run {id} rewritten");
    }
    assert_eq!(run_dirs(&dir).len(), 8);
    assert_same_tables(&whole, &dir);
}

#[test]
fn cancel_abandons_runs_in_flight_and_leaves_no_temp_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let s = load(tmp.path(), "tiny.toml", TINY);
    let out = tmp.path().join("out");
    let mut o = opts(&out, 2);
    let flag = o.cancel.clone();
    o.on_run_done = Some(Arc::new(move |_, _| flag.store(true, Ordering::SeqCst)));
    let err = sweep::run_sweep(&s, &o).unwrap_err();
    assert_eq!(err.exit_code(), 130);
    let dir = out.join("tiny");
    let names = run_dirs(&dir);
    assert!(!names.is_empty() && names.len() <= 2, "{names:?}");
    for name in &names {
        assert!(!name.starts_with('.'), "temp left behind: {name}");
        assert!(dir.join("runs").join(name).join("run.csv").is_file());
        assert!(dir.join("runs").join(name).join("history.csv").is_file());
    }
    let top: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n != ".vqsim.lock")
        .collect();
    assert!(top.is_empty(), "{top:?}");
}

#[test]
fn shards_in_one_dir_and_in_separate_dirs_merge_to_the_single_process_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let s = load(tmp.path(), "tiny.toml", TINY);
    let whole = reference(tmp.path(), &s);

    // Three shards one after the other into one directory.
    let shared = tmp.path().join("shared");
    for i in 1..=3 {
        let mut o = opts(&shared, 1);
        o.shard = Shard::new(i, 3).unwrap();
        let report = sweep::run_sweep(&s, &o).unwrap();
        let expected: Vec<usize> = (0..8).filter(|r| r % 3 < i).collect();
        assert_eq!(report.assembly.finished, expected, "after shard {i}/3");
        assert_eq!(report.ran, (0..8).filter(|r| r % 3 + 1 == i).count());
    }
    assert_same_tables(&whole, &shared.join("tiny"));

    // Three shards into three directories, copied together, then merged.
    let merged = tmp.path().join("merged");
    fs::create_dir_all(merged.join("runs")).unwrap();
    for i in 1..=3 {
        let out = tmp.path().join(format!("part{i}"));
        let mut o = opts(&out, 1);
        o.shard = format!("{i}/3").parse().unwrap();
        let report = sweep::run_sweep(&s, &o).unwrap();
        let missing: Vec<usize> = (0..8).filter(|r| r % 3 + 1 != i).collect();
        assert_eq!(report.assembly.missing, missing);
        let dir = out.join("tiny");
        fs::copy(dir.join("scenario.toml"), merged.join("scenario.toml")).unwrap();
        for id in run_dirs(&dir) {
            let to = merged.join("runs").join(&id);
            fs::create_dir(&to).unwrap();
            for f in fs::read_dir(dir.join("runs").join(&id)).unwrap() {
                let f = f.unwrap();
                fs::copy(f.path(), to.join(f.file_name())).unwrap();
            }
        }
        if i == 1 {
            // A merge of an incomplete directory lists what is missing.
            let part = sweep::merge(&merged).unwrap();
            let ids: Vec<String> = missing.iter().map(|&r| s.runs[r].id.clone()).collect();
            let expect: Vec<(usize, String)> = missing.iter().copied().zip(ids).collect();
            assert_eq!(part.missing, expect);
        }
    }
    let report = sweep::merge(&merged).unwrap();
    assert!(report.missing.is_empty());
    assert_eq!(report.runs, 8);
    assert_same_tables(&whole, &merged);
}

#[test]
fn a_changed_scenario_does_not_reuse_old_results() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let base = TINY.replace(r#""schedule.kind" = ["early", "deferred"]"#, "");
    let s1 = load(tmp.path(), "a.toml", &base);
    assert_eq!(sweep::run_sweep(&s1, &opts(&out, 2)).unwrap().ran, 4);

    // One more epoch changes every run's configuration: nothing is reused, and the
    // tables hold only the new runs.
    let s2 = load(
        tmp.path(),
        "b.toml",
        &base.replace("epochs = 3", "epochs = 4"),
    );
    let report = sweep::run_sweep(&s2, &opts(&out, 2)).unwrap();
    assert_eq!((report.skipped, report.ran), (0, 4));
    let ids: Vec<String> = s2.runs.iter().map(|r| r.id.clone()).collect();
    assert_eq!(column(&out.join("tiny"), "run_id"), ids);
    assert_eq!(column(&out.join("tiny"), "train.epochs"), vec!["4"; 4]);

    // Changing one axis value reuses exactly the runs whose configuration is unchanged,
    // at their new positions.
    let s3 = load(
        tmp.path(),
        "c.toml",
        &base
            .replace("[4, 8]", "[2, 4]")
            .replace("epochs = 3", "epochs = 4"),
    );
    let report = sweep::run_sweep(&s3, &opts(&out, 2)).unwrap();
    assert_eq!((report.skipped, report.ran), (2, 2));
    let dir = out.join("tiny");
    let sizes: Vec<String> = s3
        .runs
        .iter()
        .map(|r| r.config.quantizer.codebook_size.to_string())
        .collect();
    assert_eq!(column(&dir, "quantizer.codebook_size"), sizes);
    assert_eq!(column(&dir, "run_index"), vec!["0", "1", "2", "3"]);
}

#[test]
fn by_default_only_the_runs_the_figures_draw_keep_a_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let s = load(tmp.path(), "tiny.toml", TINY);
    let lowest = *s.seeds.iter().min().unwrap();
    assert!(s.seeds.len() > 1, "the test needs several seeds");
    for (policy, keeps) in [
        (
            Snapshots::Figures,
            &(|seed: u64| seed == lowest) as &dyn Fn(u64) -> bool,
        ),
        (Snapshots::None, &|_| false),
    ] {
        let mut o = opts(&tmp.path().join(format!("{policy:?}")), 2);
        o.snapshots = policy;
        let dir = sweep::run_sweep(&s, &o).unwrap().dir;
        for run in &s.runs {
            let npz = dir.join("runs").join(&run.id).join("snapshot.npz");
            assert_eq!(
                npz.is_file(),
                keeps(run.seed),
                "{policy:?} seed {}",
                run.seed
            );
        }
    }
}

#[test]
fn diverged_runs_are_recorded_while_the_others_finish() {
    let tmp = tempfile::tempdir().unwrap();
    let text = TINY
        .replace(r#""schedule.kind" = ["early", "deferred"]"#, "")
        .replace(
            r#""quantizer.codebook_size" = [4, 8]"#,
            r#""train.lr" = [1e-3, 1e6]"#,
        );
    let s = load(tmp.path(), "tiny.toml", &text);
    let report = sweep::run_sweep(&s, &opts(&tmp.path().join("out"), 2)).unwrap();
    assert_eq!((report.ran, report.diverged), (4, 2));
    let huge: Vec<usize> = (0..4)
        .filter(|&i| s.runs[i].config.train.lr > 1.0)
        .collect();
    assert_eq!(report.assembly.diverged, huge);
    let dir = report.dir;
    let status = column(&dir, "status");
    let epoch = column(&dir, "diverged_epoch");
    let mse = column(&dir, "mse");
    for (i, run) in s.runs.iter().enumerate() {
        let latent = dir.join("runs").join(&run.id).join("snapshot.npz");
        if huge.contains(&i) {
            assert_eq!(status[i], "diverged");
            assert!(epoch[i].parse::<usize>().is_ok(), "{epoch:?}");
            assert_eq!(mse[i], "NaN");
            // No snapshot for a diverged run.
            assert!(!latent.exists());
        } else {
            assert_eq!(status[i], "ok");
            assert_eq!(epoch[i], "");
            assert!(mse[i].parse::<f64>().unwrap().is_finite());
            assert!(latent.is_file());
        }
    }
    assert!(read(&dir.join("manifest.toml")).contains("diverged = 2"));
    let summary = text::summary(&Results::load(&dir).unwrap()).unwrap();
    assert!(
        summary.contains("4 runs: 4 finished (2 diverged), 0 missing"),
        "{summary}"
    );
}

#[test]
fn summary_has_one_row_per_configuration_with_means_over_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let s = load(tmp.path(), "tiny.toml", TINY);
    let dir = sweep::run_sweep(&s, &opts(&tmp.path().join("out"), 2))
        .unwrap()
        .dir;
    let text = text::summary(&Results::load(&dir).unwrap()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Header, rule, 4 configurations, completeness line.
    assert_eq!(lines.len(), 7, "{text}");
    assert!(lines[0].contains("quantizer.codebook_size") && lines[0].contains("schedule.kind"));
    assert!(!lines[0].contains("seed") && !lines[0].contains("model.width"));
    let cells: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(cells[2..4], ["2", "0"], "two seeds, none diverged");
    let size = column(&dir, "quantizer.codebook_size");
    let kind = column(&dir, "schedule.kind");
    let ppl: Vec<f64> = column(&dir, "perplexity")
        .iter()
        .zip(size.iter().zip(&kind))
        .filter(|(_, (s, k))| (s.as_str(), k.as_str()) == (cells[0], cells[1]))
        .map(|(p, _)| p.parse().unwrap())
        .collect();
    assert_eq!(ppl.len(), 2);
    let mean = (ppl[0] + ppl[1]) / 2.0;
    let shown: f64 = cells[4].parse().unwrap();
    assert!(
        (shown - mean).abs() <= 0.01 * mean.abs().max(1.0),
        "{shown} vs {mean}"
    );
}

#[test]
fn an_out_path_that_is_a_file_is_rejected_before_anything_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    let s = load(tmp.path(), "tiny.toml", TINY);
    let file = tmp.path().join("results");
    fs::write(&file, "not a directory").unwrap();
    let err = sweep::run_sweep(&s, &opts(&file, 1)).unwrap_err();
    assert!(matches!(err, SweepError::OutIsFile(_)));
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("results"), "{err}");
    assert_eq!(read(&file), "not a directory");

    let out = tmp.path().join("fresh");
    let err = sweep::run_sweep(&s, &opts(&out, 0)).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(!out.exists());
}

#[test]
fn merge_of_a_directory_without_a_scenario_is_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let err = sweep::merge(tmp.path()).unwrap_err();
    assert!(matches!(err, SweepError::NotASweep(_)));
    assert_eq!(err.exit_code(), 2);
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
}

fn vqsim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vqsim"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn concurrent_shard_processes_merge_to_the_single_process_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let s = load(tmp.path(), "tiny.toml", TINY);
    let whole = reference(tmp.path(), &s);
    let scenario = tmp.path().join("tiny.toml");
    let out = tmp.path().join("cluster");
    let children: Vec<_> = (1..=3)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_vqsim"))
                .arg("run")
                .arg(&scenario)
                .arg("--out")
                .arg(&out)
                .args(["--shard", &format!("{i}/3"), "--threads", "1"])
                .stderr(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        // stderr is a pipe, so progress comes as plain lines.
        assert!(stderr.contains(" diverged, eta "), "{stderr}");
    }
    let dir = out.join("tiny");
    let merged = vqsim(&["merge", dir.to_str().unwrap()]);
    assert!(
        merged.status.success(),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    assert_same_tables(&whole, &dir);
}

#[test]
fn malformed_shards_and_file_outs_exit_2_and_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("tiny.toml");
    fs::write(&scenario, TINY).unwrap();
    let out = tmp.path().join("out");
    for bad in ["0/3", "4/3", "a/b", "1/0"] {
        let o = vqsim(&[
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--shard",
            bad,
        ]);
        assert_eq!(o.status.code(), Some(2), "--shard {bad}");
        assert!(!String::from_utf8_lossy(&o.stderr).is_empty());
        assert!(!out.exists(), "--shard {bad} created {}", out.display());
    }
    let file = tmp.path().join("file");
    fs::write(&file, "x").unwrap();
    for out in [file.clone(), file.join("below")] {
        let o = vqsim(&[
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains(file.to_str().unwrap()));
    }
    assert_eq!(read(&file), "x");
}

/// `path`'s CSV without column `name`, as a run directory written before it existed holds it.
fn drop_column(path: &Path, name: &str) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().clone();
    let col = header.iter().position(|h| h == name).unwrap();
    let keep = |rec: &csv::StringRecord| -> Vec<String> {
        rec.iter()
            .enumerate()
            .filter(|(i, _)| *i != col)
            .map(|(_, v)| v.to_string())
            .collect()
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(keep(&header)).unwrap();
    for rec in r.records() {
        w.write_record(keep(&rec.unwrap())).unwrap();
    }
    fs::write(path, w.into_inner().unwrap()).unwrap();
}

#[test]
fn runs_stored_before_a_metric_or_key_existed_are_kept_with_nan_and_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let s = load(tmp.path(), "tiny.toml", TINY);
    let dir = reference(tmp.path(), &s);
    let fresh = runs_without_seconds(&dir);
    // Take a metric and a key out of one stored run, as an older vqsim would have written it.
    let id = &s.runs[0].id;
    let run = dir.join("runs").join(id);
    drop_column(&run.join("run.csv"), "heldout_mse");
    drop_column(&run.join("run.csv"), "data.std_ratio");
    drop_column(&run.join("history.csv"), "coverage");

    let report = sweep::run_sweep(&s, &opts(dir.parent().unwrap(), 1)).unwrap();
    assert_eq!(
        (report.ran, report.skipped),
        (0, 8),
        "the old run is reused"
    );
    // The key comes back from the configuration (its id matched), the metric was empty anyway.
    assert_eq!(runs_without_seconds(&dir), fresh);
    let mut r = csv::Reader::from_path(dir.join("history.csv")).unwrap();
    let col = r
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "coverage")
        .unwrap();
    let (old, new): (Vec<_>, Vec<_>) = r
        .records()
        .map(|x| x.unwrap())
        .partition(|rec| &rec[0] == id.as_str());
    assert!(!old.is_empty() && old.iter().all(|rec| &rec[col] == "NaN"));
    assert!(new.iter().any(|rec| &rec[col] != "NaN"));
}

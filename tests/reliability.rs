//! The promises of the "Reliability" section of docs/operations.md, each tried on the real binary:
//! SIGKILL at random moments and resume, two processes on one `--out`, a read-only or full
//! file system, Ctrl-C while figures are drawn, and the `--threads` bound.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::tables::assert_same_tables;
use rand::{Rng, SeedableRng};

/// 4 codebook sizes × 2 schedules × 3 seeds = 24 small runs, about two seconds on 2 threads.
const SWEEP: &str = r#"
name = "crash"
seeds = [0, 1, 2]

[data]
modes = 4
points_per_mode = 300

[model]
width = 16

[train]
epochs = 12
batch_size = 64

[schedule]
continuous_epochs = 6

[sweep]
"quantizer.codebook_size" = [4, 8, 16, 32]
"schedule.kind" = ["early", "deferred"]
"#;

fn vqsim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vqsim"))
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("run vqsim")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `vqsim run SCENARIO --out OUT` with `extra` arguments, quiet on stdout.
fn run_cmd(scenario: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = vqsim();
    c.arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn scenario(dir: &Path) -> PathBuf {
    let path = dir.join("crash.toml");
    fs::write(&path, SWEEP).unwrap();
    path
}

/// The uninterrupted single-process result, with its per-run files.
fn reference(tmp: &Path, scenario: &Path) -> PathBuf {
    let out = tmp.join("reference");
    let o = output(&mut run_cmd(
        scenario,
        &out,
        &["--threads", "1", "--no-report"],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    out.join("crash")
}

/// Runs in `SWEEP`.
const RUNS: usize = 24;

/// Run directories published in `dir` (temporary ones excluded).
fn published_runs(dir: &Path) -> usize {
    fs::read_dir(dir.join("runs")).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .count()
    })
}

/// Every entry below `dir` whose name is a temporary one.
fn temps_below(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let path = e.path();
        if e.file_name().to_string_lossy().starts_with(".tmp") {
            found.push(path);
        } else if path.is_dir() {
            found.extend(temps_below(&path));
        }
    }
    found
}

/// Every published run directory of `dir` is whole: the same files as the reference's,
/// byte-identical apart from run.csv (whose `seconds` differs).
fn assert_runs_whole(dir: &Path, reference: &Path) {
    let Ok(entries) = fs::read_dir(dir.join("runs")) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let theirs = reference.join("runs").join(&name);
        let mut files: Vec<String> = fs::read_dir(e.path())
            .unwrap()
            .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let mut expected: Vec<String> = fs::read_dir(&theirs)
            .unwrap_or_else(|_| panic!("run {name} is not in the reference"))
            .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        expected.sort();
        assert_eq!(files, expected, "run directory {name} is incomplete");
        for f in files.iter().filter(|f| *f != "run.csv") {
            assert!(
                fs::read(e.path().join(f)).unwrap() == fs::read(theirs.join(f)).unwrap(),
                "{name}/{f} differs from the reference"
            );
        }
    }
}

#[test]
fn sigkill_at_random_moments_then_resume_gives_the_uninterrupted_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = scenario(tmp.path());
    let reference = reference(tmp.path(), &scenario);
    let out = tmp.path().join("out");
    let dir = out.join("crash");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut killed_alive = 0;
    for trial in 0..10 {
        // With the report, so that kills also land in the summary and figure writing.
        let mut child = run_cmd(&scenario, &out, &["--threads", "2"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill after a random number (0–2) of further runs is published, a random moment into
        // the next: tied to the sweep's progress rather than to the clock, so that the kills
        // land while runs are in flight on a fast machine and a loaded one alike. Once every
        // run is done, the kill lands in the summary and figure writing instead.
        let published = || published_runs(&dir);
        let (start, target) = (published(), rng.gen_range(0..=2));
        if start == RUNS {
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..300)));
        } else {
            while published() < (start + target).min(RUNS) && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..40)));
        }
        if child.try_wait().unwrap().is_none() {
            killed_alive += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Whatever the moment, no run directory is half-written.
        assert_runs_whole(&dir, &reference);
        eprintln!("trial {trial}: killed, {killed_alive} kills of a live process so far");
    }
    assert!(
        killed_alive >= 5,
        "only {killed_alive} of 10 kills hit a running process: the sweep is too short to test"
    );
    let o = output(&mut run_cmd(&scenario, &out, &["--threads", "2"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_runs_whole(&dir, &reference);
    assert_same_tables(&reference, &dir);
    let temps = temps_below(&out);
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
    assert!(dir.join("figures").read_dir().unwrap().count() > 0);
}

/// Waits until `lock` names `pid`, i.e. that process holds the sweep.
fn wait_for_lock(lock: &Path, pid: u32, child: &mut Child) {
    let t = Instant::now();
    while !fs::read_to_string(lock).is_ok_and(|s| s.starts_with(&format!("pid {pid} "))) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the first process ended early"
        );
        assert!(t.elapsed() < Duration::from_secs(30), "no lock after 30 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_second_process_on_the_same_out_exits_2_naming_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = scenario(tmp.path());
    let reference = reference(tmp.path(), &scenario);
    let out = tmp.path().join("out");
    let dir = out.join("crash");
    let mut first = run_cmd(&scenario, &out, &["--threads", "1", "--no-report"])
        .spawn()
        .unwrap();
    wait_for_lock(&dir.join(".vqsim.lock"), first.id(), &mut first);
    let second = output(&mut run_cmd(&scenario, &out, &["--threads", "1"]));
    let message = stderr(&second);
    assert_eq!(second.status.code(), Some(2), "{message}");
    assert!(
        message.contains(&format!("pid {}", first.id())) && message.contains("--shard"),
        "{message}"
    );
    // A different shard is not locked out (shards share a directory by design).
    let shard = output(&mut run_cmd(
        &scenario,
        &out,
        &["--threads", "1", "--shard", "2/2"],
    ));
    assert!(shard.status.success(), "{}", stderr(&shard));
    let o = first.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_tables(&reference, &dir);

    // A SIGKILLed holder leaves no stale lock behind: the OS releases it.
    let mut killed = run_cmd(&scenario, &tmp.path().join("again"), &["--threads", "1"])
        .spawn()
        .unwrap();
    let lock = tmp.path().join("again/crash/.vqsim.lock");
    wait_for_lock(&lock, killed.id(), &mut killed);
    killed.kill().unwrap();
    killed.wait().unwrap();
    let o = output(&mut run_cmd(
        &scenario,
        &tmp.path().join("again"),
        &["--threads", "2", "--no-report"],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn ctrl_c_while_figures_are_drawn_exits_130_once_and_leaves_no_temp() {
    let tmp = tempfile::tempdir().unwrap();
    // 8-D embeddings drawn with t-SNE: seconds of figure work after a short sweep.
    let path = tmp.path().join("fig.toml");
    fs::write(
        &path,
        "name = \"fig\"\n[data]\nmodes = 4\npoints_per_mode = 300\ndim = 8\n[model]\nlatent_dim = 8\nwidth = 16\n[train]\nepochs = 2\n[schedule]\ncontinuous_epochs = 2\n[sweep]\n\"schedule.kind\" = [\"early\", \"deferred\"]\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let mut child = run_cmd(&path, &out, &["--tsne"]).spawn().unwrap();
    // runs.csv appears when the sweep is over and the report begins.
    let t = Instant::now();
    while !out.join("fig/runs.csv").exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "ended before the report"
        );
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no runs.csv after 60 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let o = child.wait_with_output().unwrap();
    let message = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{message}");
    assert!(message.contains("vqsim: interrupted\n"), "{message}");
    assert!(!message.contains("again"), "{message}");
    let temps = temps_below(&out);
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
}

#[test]
fn threads_beyond_four_per_core_exit_2_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = scenario(tmp.path());
    let out = tmp.path().join("out");
    let o = output(&mut run_cmd(&scenario, &out, &["--threads", "99999"]));
    let message = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{message}");
    assert!(
        message.contains("--threads 99999 is too many: at most"),
        "{message}"
    );
    assert!(!out.exists());
    let help = output(vqsim().args(["run", "--help"]));
    assert!(String::from_utf8_lossy(&help.stdout).contains("at most 4 × the cores"));
}

/// A tmpfs mounted for one test, unmounted when dropped. None when this process may not
/// mount (not root, or no mount namespace rights): the caller then says it skipped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, bytes: u64) -> Option<Mount> {
        fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mount(at.to_path_buf()))
    }

    fn read_only(&self) {
        let s = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(s.success());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn read_only_out_exits_2_naming_the_path_and_keeps_finished_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = scenario(tmp.path());
    let Some(mount) = Mount::tmpfs(&tmp.path().join("mnt"), 64 << 20) else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root); CI runs as root");
        return;
    };
    let o = output(&mut run_cmd(
        &scenario,
        &mount.0,
        &["--shard", "1/2", "--no-report"],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let runs = mount.0.join("crash/runs");
    let before = fs::read_dir(&runs).unwrap().count();
    assert_eq!(before, 12);
    mount.read_only();
    for out in [mount.0.clone(), mount.0.join("new")] {
        let o = output(&mut run_cmd(&scenario, &out, &[]));
        let message = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{message}");
        assert!(
            message.contains(&format!("cannot write to --out at {}", out.display()))
                && message.contains("Read-only file system"),
            "{message}"
        );
        assert_eq!(
            message.matches("Read-only file system").count(),
            1,
            "{message}"
        );
    }
    assert_eq!(fs::read_dir(&runs).unwrap().count(), before);
}

#[test]
fn a_full_disk_stops_the_sweep_with_exit_1_and_keeps_whole_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = scenario(tmp.path());
    let reference = reference(tmp.path(), &scenario);
    let size: u64 = fs::read_dir(reference.join("runs"))
        .unwrap()
        .flat_map(|r| fs::read_dir(r.unwrap().path()).unwrap())
        .map(|f| f.unwrap().metadata().unwrap().len())
        .sum();
    // Room for about half the runs.
    let Some(mount) = Mount::tmpfs(&tmp.path().join("mnt"), size / 2) else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root); CI runs as root");
        return;
    };
    let o = output(&mut run_cmd(&scenario, &mount.0, &["--threads", "2"]));
    let message = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{message}");
    assert!(
        message.contains(&mount.0.display().to_string())
            && message.contains("No space left on device")
            && message.contains("run the same command again to resume"),
        "{message}"
    );
    let dir = mount.0.join("crash");
    let kept = fs::read_dir(dir.join("runs")).unwrap().count();
    assert!(kept > 0 && kept < 24, "{kept} runs kept");
    assert_runs_whole(&dir, &reference);
    let temps = temps_below(&mount.0);
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
}

#[test]
fn a_scenario_too_big_for_memory_is_refused_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("big.toml");
    fs::write(
        &big,
        "[data]\nmodes = 1000\npoints_per_mode = 10000\ndim = 1024\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    // More than this machine has: the estimate is about 325 GiB (data, whole-set evaluation
    // and the snapshot).
    let o = output(&mut run_cmd(&big, &out, &[]));
    let message = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{message}");
    for key in [
        "`data.points_per_mode`",
        "`data.dim` = 1024",
        "GiB",
        "--max-memory",
    ] {
        assert!(message.contains(key), "{key} not in: {message}");
    }
    assert!(!out.exists());
    // --max-memory overrides the machine's figure, both ways.
    let scenario = scenario(tmp.path());
    let o = output(&mut run_cmd(&scenario, &out, &["--max-memory", "1M"]));
    let message = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{message}");
    assert!(message.contains("is available (--max-memory)"), "{message}");
    let o = output(&mut run_cmd(
        &scenario,
        &out,
        &["--max-memory", "64G", "--no-report"],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = output(&mut run_cmd(&scenario, &out, &["--max-memory", "lots"]));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn damaged_or_misnamed_result_directories_get_a_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = scenario(tmp.path());
    let out = tmp.path().join("out");
    let o = output(&mut run_cmd(
        &scenario,
        &out,
        &["--shard", "1/4", "--no-report"],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    // The parent directory instead of OUT/<name>: say which sweeps it holds.
    for command in ["plot", "merge"] {
        let o = output(vqsim().arg(command).arg(&out));
        let message = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{command}: {message}");
        let inside = out.join("crash").display().to_string();
        assert!(
            message.contains(&format!("such as `{inside}`")),
            "{message}"
        );
    }
    // A run directory without its history: name it and say how to recover.
    let run = fs::read_dir(out.join("crash/runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    fs::remove_file(run.join("history.csv")).unwrap();
    let o = output(vqsim().arg("merge").arg(out.join("crash")));
    let message = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{message}");
    assert!(
        message.contains(&run.join("history.csv").display().to_string())
            && message.contains("delete that run directory"),
        "{message}"
    );
}

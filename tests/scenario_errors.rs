//! `vqsim check` on malformed scenarios: every file in `tests/bad_scenarios/` must be rejected
//! with exit status 2 and a one-line `error:` naming what its `# expect:` lines say (a TOML
//! syntax error adds the offending line and a caret).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vqsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vqsim"))
        .args(args)
        .output()
        .expect("run vqsim")
}

fn bad_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/bad_scenarios exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// The texts of the leading `# expect: …` lines.
fn expectations(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("readable test file");
    text.lines()
        .map_while(|l| l.strip_prefix("# expect: "))
        .map(String::from)
        .collect()
}

/// Asserts a clean rejection: status 2, nothing on stdout, one `error:` line, no panic.
fn assert_rejected(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: exit status; stderr: {stderr}"
    );
    assert!(out.stdout.is_empty(), "{what}: stdout should be empty");
    assert!(stderr.starts_with("error: "), "{what}: {stderr}");
    // One line, or for a TOML syntax error the line and a caret under it (`N | text`).
    let extra: Vec<&str> = stderr.trim_end().lines().skip(1).collect();
    assert!(
        extra.is_empty()
            || (extra.len() == 3 && extra.iter().all(|l| l.contains(" | ") || l.ends_with(" |"))),
        "{what}: one paragraph: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    stderr
}

#[test]
fn every_bad_scenario_is_rejected_with_its_key_named() {
    let files = bad_files();
    assert!(files.len() >= 30, "only {} bad scenarios", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let expected = expectations(path);
        assert!(
            !expected.is_empty(),
            "{} has no `# expect:` line",
            path.display()
        );
        let out = vqsim(&["check", path.to_str().expect("utf-8 path")]);
        let stderr = assert_rejected(&out, &path.display().to_string());
        // The message names the file it is about.
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(stderr.contains(name.as_ref()), "{stderr}");
        for e in expected {
            if !stderr.contains(&e) {
                failures.push(format!("{name}: expected `{e}` in: {stderr}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn missing_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let out = vqsim(&["check", path.to_str().unwrap()]);
    let stderr = assert_rejected(&out, "missing file");
    assert!(stderr.contains("nope.toml: cannot read"), "{stderr}");
}

#[test]
fn directory_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let out = vqsim(&["check", dir.path().to_str().unwrap()]);
    assert_rejected(&out, "directory");
}

#[test]
fn non_utf8_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("binary.toml");
    std::fs::write(&path, [b'a', b' ', b'=', b' ', 0xff, 0xfe, b'\n']).unwrap();
    let out = vqsim(&["check", path.to_str().unwrap()]);
    assert_rejected(&out, "non-utf8");
}

#[test]
fn invalid_file_stem_needs_an_explicit_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("my scenario.toml");
    std::fs::write(&path, "").unwrap();
    let stderr = assert_rejected(&vqsim(&["check", path.to_str().unwrap()]), "stem");
    assert!(
        stderr.contains("`my scenario`") && stderr.contains("set `name"),
        "{stderr}"
    );
    std::fs::write(&path, "name = \"mine\"\n").unwrap();
    assert_eq!(
        vqsim(&["check", path.to_str().unwrap()]).status.code(),
        Some(0)
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(vqsim(&[]).status.code(), Some(2));
    assert_eq!(vqsim(&["check"]).status.code(), Some(2));
    assert_eq!(vqsim(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        vqsim(&["check", "--no-such-flag", "x.toml"]).status.code(),
        Some(2)
    );
    assert_eq!(vqsim(&["--help"]).status.code(), Some(0));
}

#[test]
fn good_scenario_prints_its_expansion() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scaling.toml");
    std::fs::write(
        &path,
        "replicates = 3\n[sweep]\n\"schedule.kind\" = [\"early\", \"deferred\"]\n\"quantizer.codebook_size\" = [16, 64, 256]\n",
    )
    .unwrap();
    let out = vqsim(&["check", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
    assert!(
        stdout.starts_with("scaling: 2 × 3 × 3 seeds = 18 runs\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  schedule.kind = [\"early\", \"deferred\"]\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  quantizer.codebook_size = [16, 64, 256]\n"),
        "{stdout}"
    );
    assert!(stdout.contains("  seeds = [0, 1, 2]\n"), "{stdout}");
}

#[test]
fn resolved_output_is_itself_a_valid_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.toml");
    std::fs::write(
        &path,
        "[model]\nwidth = 8\n[sweep]\n\"train.lr\" = [1, 0.1]\n",
    )
    .unwrap();
    let out = vqsim(&["check", "--resolved", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let resolved = &stdout[stdout.find("# Resolved").expect("resolved text")..];
    assert!(
        resolved.contains("\nwidth = 8  # units per hidden layer\n"),
        "{resolved}"
    );
    let again = dir.path().join("again.toml");
    std::fs::write(&again, resolved).unwrap();
    let out = vqsim(&["check", again.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("small: 2 × 1 seed = 2 runs"));
}

#[test]
fn syntax_errors_show_the_line_a_caret_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.toml");
    std::fs::write(&path, "seeds = [0]\n[model]\nwidth = 8\ndepth = = 2\n").unwrap();
    let stderr = assert_rejected(&vqsim(&["check", path.to_str().unwrap()]), "syntax");
    let expected = format!("{}:4:9: invalid TOML at `model.depth`", path.display());
    assert!(
        stderr.starts_with(&format!("error: {expected}")),
        "{stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines[1..],
        ["  |", "4 | depth = = 2", "  |         ^"],
        "{stderr}"
    );
}

#[test]
fn names_must_be_short_and_not_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.toml");
    for bad in [".hidden".to_string(), "x".repeat(101)] {
        std::fs::write(&path, format!("name = \"{bad}\"\n")).unwrap();
        let stderr = assert_rejected(&vqsim(&["check", path.to_str().unwrap()]), &bad);
        assert!(
            stderr.contains("1 to 100 letters") && stderr.contains("not starting with `.`"),
            "{stderr}"
        );
    }
    std::fs::write(&path, format!("name = \"{}\"\n", "x".repeat(100))).unwrap();
    assert_eq!(
        vqsim(&["check", path.to_str().unwrap()]).status.code(),
        Some(0)
    );
}

#[test]
fn check_reports_every_file_not_just_the_first_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let a = write("a.toml", "[model]\nwidht = 3\n");
    let b = write("b.toml", "seeds = [0, 1]\n");
    let c = write("c.toml", "[train]\nlr = -1\n");
    let out = vqsim(&["check", &a, &b, &c]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("b: 2 seeds = 2 runs"));
    assert!(
        stderr.contains("a.toml: unknown key `model.widht`"),
        "{stderr}"
    );
    assert!(stderr.contains("c.toml: `train.lr`"), "{stderr}");
    assert!(
        stderr.contains("2 of 3 scenario files are invalid"),
        "{stderr}"
    );
}

#[test]
fn a_closed_stdout_pipe_ends_quietly_not_in_a_panic() {
    // The reader is gone before vqsim writes a byte, so every write fails with EPIPE.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vqsim"))
        .arg("keys")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

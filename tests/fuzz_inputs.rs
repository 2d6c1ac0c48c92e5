//! Property tests: every file reader fed mutated versions of valid files never panics, and
//! every rejection names the file and a position or a key.
//!
//! - Scenario files: the valid scenarios of `scenarios/` with byte flips, truncation,
//!   duplicated lines, random unicode, extreme numbers (huge, negative, NaN, inf) and deep
//!   nesting, through `Scenario::load` (what `vqsim check` and `vqsim run` call; a
//!   `ScenarioError` exits 2).
//! - Results: the CSVs of a small sweep (runs.csv, a run's run.csv / history.csv and its
//!   snapshot) mutated the same way, through the readers of `vqsim merge` and `vqsim plot`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use vqsim::report::plot::Snapshot;
use vqsim::report::results::Results;
use vqsim::study::scenario::Scenario;
use vqsim::study::sweep::{self, ProgressMode, SweepOptions};

/// One way to damage a text. Positions and lines are taken modulo the text's length.
#[derive(Debug, Clone)]
enum Mutation {
    FlipByte {
        at: usize,
        xor: u8,
    },
    Truncate {
        at: usize,
    },
    DuplicateLine {
        line: usize,
    },
    DeleteLine {
        line: usize,
    },
    InsertText {
        at: usize,
        text: String,
    },
    /// Replace the `nth` number in the text by `by`.
    ReplaceNumber {
        nth: usize,
        by: String,
    },
    /// Insert a line `k = [[[…]]]` or `k = {a={a=…}}` nested `depth` deep.
    Nest {
        line: usize,
        depth: usize,
        table: bool,
    },
}

const EXTREMES: &[&str] = &[
    "-1",
    "-0",
    "0",
    "-9223372036854775808",
    "9223372036854775807",
    "18446744073709551616",
    "1e400",
    "-1e400",
    "1e308",
    "5e-324",
    "nan",
    "+nan",
    "-nan",
    "inf",
    "-inf",
    "0x7fffffff",
    "1_000_000_000",
    "1.5",
    "\"7\"",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, xor)| Mutation::FlipByte { at, xor }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
        any::<usize>().prop_map(|line| Mutation::DeleteLine { line }),
        (any::<usize>(), "\\PC{1,8}|[\\[\\]{}=\"'#.,\\n]{1,4}")
            .prop_map(|(at, text)| Mutation::InsertText { at, text }),
        (any::<usize>(), proptest::sample::select(EXTREMES))
            .prop_map(|(nth, by)| Mutation::ReplaceNumber { nth, by: by.into() }),
        (any::<usize>(), 1..3000usize, any::<bool>())
            .prop_map(|(line, depth, table)| Mutation::Nest { line, depth, table }),
    ]
}

/// Byte offset of the start of line `line` (modulo the line count), and the line's end.
fn line_span(text: &[u8], line: usize) -> (usize, usize) {
    let starts: Vec<usize> = std::iter::once(0)
        .chain(
            text.iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let start = starts[line % starts.len()];
    let end = text[start..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(text.len(), |i| start + i + 1);
    (start, end)
}

fn apply(text: &[u8], m: &Mutation) -> Vec<u8> {
    let mut out = text.to_vec();
    let at = |p: usize| {
        if out.is_empty() {
            0
        } else {
            p % (out.len() + 1)
        }
    };
    match m {
        Mutation::FlipByte { at: p, xor } if !out.is_empty() => {
            let i = p % out.len();
            out[i] ^= xor;
        }
        Mutation::FlipByte { .. } => {}
        Mutation::Truncate { at: p } => out.truncate(at(*p)),
        Mutation::DuplicateLine { line } => {
            let (s, e) = line_span(&out, *line);
            let copy = out[s..e].to_vec();
            out.splice(e..e, copy);
        }
        Mutation::DeleteLine { line } => {
            let (s, e) = line_span(&out, *line);
            out.drain(s..e);
        }
        Mutation::InsertText { at: p, text } => {
            let i = at(*p);
            out.splice(i..i, text.bytes());
        }
        Mutation::ReplaceNumber { nth, by } => {
            let mut spans = Vec::new();
            let mut i = 0;
            while i < out.len() {
                if out[i].is_ascii_digit() {
                    let s = i;
                    while i < out.len() && (out[i].is_ascii_alphanumeric() || out[i] == b'.') {
                        i += 1;
                    }
                    spans.push((s, i));
                } else {
                    i += 1;
                }
            }
            if !spans.is_empty() {
                let (s, e) = spans[nth % spans.len()];
                out.splice(s..e, by.bytes());
            }
        }
        Mutation::Nest { line, depth, table } => {
            let (s, _) = line_span(&out, *line);
            let nested = if *table {
                format!("k = {}1{}\n", "{a = ".repeat(*depth), "}".repeat(*depth))
            } else {
                format!("k = {}1{}\n", "[".repeat(*depth), "]".repeat(*depth))
            };
            out.splice(s..s, nested.bytes());
        }
    }
    out
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn scenario_texts() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = fs::read_dir(repo().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&p).unwrap())
        })
        .collect();
    v.sort();
    assert!(v.len() >= 5, "the paper scenarios are in scenarios/");
    v
}

/// A position `:LINE:COLUMN` or `line N`/`record N`, or a `key` in backquotes.
fn names_position_or_key(message: &str) -> bool {
    let position = message.split(':').collect::<Vec<_>>().windows(2).any(|w| {
        !w[0].is_empty()
            && w[0].bytes().all(|b| b.is_ascii_digit())
            && w[1].bytes().next().is_some_and(|b| b.is_ascii_digit())
    });
    position || message.contains("line ") || message.contains("line: ") || message.contains('`')
}

#[test]
fn mutated_scenarios_never_panic_and_errors_name_file_and_position_or_key() {
    let texts = scenario_texts();
    let tmp = tempfile::tempdir().unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 3000,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0..texts.len(), proptest::collection::vec(mutation(), 1..4));
    runner
        .run(&strategy, |(which, mutations)| {
            let (name, text) = &texts[which];
            let bytes = mutations.iter().fold(text.clone(), |t, m| apply(&t, m));
            let path = tmp.path().join(name);
            fs::write(&path, &bytes).unwrap();
            if let Err(e) = Scenario::load(&path) {
                let message = e.to_string();
                prop_assert!(
                    message.starts_with(&path.display().to_string()),
                    "does not name the file: {message}"
                );
                prop_assert!(
                    names_position_or_key(&message),
                    "names neither a position nor a key: {message}"
                );
            }
            Ok(())
        })
        .unwrap();
}

/// A finished two-run sweep (with snapshots), made once.
fn sweep_dir() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        // In memory where possible: every case rewrites tables with fsync.
        let shm = Path::new("/dev/shm");
        let tmp = if shm.is_dir() {
            tempfile::tempdir_in(shm).unwrap()
        } else {
            tempfile::tempdir().unwrap()
        };
        let path = tmp.path().join("fz.toml");
        fs::write(
            &path,
            "[data]\nmodes = 3\npoints_per_mode = 20\n[model]\nwidth = 8\n[quantizer]\ncodebook_size = 4\n[train]\nepochs = 2\n[schedule]\ncontinuous_epochs = 1\n[sweep]\n\"schedule.kind\" = [\"early\", \"deferred\"]\n",
        )
        .unwrap();
        let mut opts = SweepOptions::new(tmp.path().join("out"));
        opts.threads = Some(1);
        opts.progress = ProgressMode::Quiet;
        let report = sweep::run_sweep(&Scenario::load(&path).unwrap(), &opts).unwrap();
        (tmp, report.dir)
    })
    .1
}

/// The result files that `merge` and `plot` read, relative to the sweep directory.
fn result_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("runs.csv")];
    let mut runs: Vec<PathBuf> = fs::read_dir(dir.join("runs"))
        .unwrap()
        .map(|e| PathBuf::from("runs").join(e.unwrap().file_name()))
        .collect();
    runs.sort();
    for run in &runs {
        for f in ["run.csv", "history.csv", "snapshot.npz"] {
            if dir.join(run).join(f).is_file() {
                files.push(run.join(f));
            }
        }
    }
    files
}

#[test]
fn mutated_result_files_never_panic_merge_or_plot_readers() {
    let dir = sweep_dir();
    let files = result_files(dir);
    // Restored after every case: the damaged file and the tables `merge` rewrites.
    let pristine: Vec<(PathBuf, Vec<u8>)> = files
        .iter()
        .map(PathBuf::as_path)
        .chain([Path::new("history.csv"), Path::new("manifest.toml")])
        .map(|f| (dir.join(f), fs::read(dir.join(f)).unwrap()))
        .collect();
    let mut runner = TestRunner::new(Config {
        cases: 1000,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0..files.len(), proptest::collection::vec(mutation(), 1..3));
    runner
        .run(&strategy, |(which, mutations)| {
            let file = dir.join(&files[which]);
            let bytes = mutations
                .iter()
                .fold(pristine[which].1.clone(), |t, m| apply(&t, m));
            fs::write(&file, &bytes).unwrap();

            let check = |what: &str, message: String| -> Result<(), TestCaseError> {
                prop_assert!(
                    message.contains(&dir.display().to_string()),
                    "{what}: does not name a file: {message}"
                );
                prop_assert!(
                    names_position_or_key(&message) || message.contains("delete that run"),
                    "{what}: names neither a position nor a column: {message}"
                );
                Ok(())
            };
            let merged = sweep::merge(dir);
            // merge rewrote runs.csv from the run directories; damage it again for the
            // readers of `plot`, which read it directly.
            fs::write(&file, &bytes).unwrap();
            let results = Results::load(dir);
            let mut snapshots = Vec::new();
            if let Ok(results) = &results {
                let runs = &results.runs;
                for row in 0..runs.len() {
                    snapshots.push(Snapshot::read(dir, runs.text(row, "run_id")));
                }
            }
            for (path, bytes) in &pristine {
                fs::write(path, bytes).unwrap();
            }
            if let Err(e) = merged {
                check("merge", e.to_string())?;
            }
            if let Err(e) = results {
                check("results", e.to_string())?;
            }
            for e in snapshots.into_iter().filter_map(Result::err) {
                check("snapshot", e.to_string())?;
            }
            Ok(())
        })
        .unwrap();
}

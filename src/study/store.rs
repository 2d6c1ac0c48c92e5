//! The results directory of a sweep, `<out>/<name>/`, and how it is written so that nothing
//! half-written is ever visible.
//!
//! - `runs/<run_id>/`: one finished run (`run.csv`, `history.csv`, and when the run kept its
//!   snapshot `snapshot.npz`). A run is complete iff its directory
//!   exists under its final name: it is filled under a temporary name and renamed into
//!   place (`crate::atomic`).
//! - `runs.csv`, `history.csv`: assembled from the run directories, in expansion order.
//! - `scenario.toml` (resolved) and `manifest.toml`.
//!
//! Numbers are written with Rust's `{}` (shortest round-trip, `NaN`), so the bytes depend only
//! on the values, never on the thread that computed them.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ndarray::Array1;
use ndarray_npy::NpzWriter;
use serde::{Deserialize, Serialize};
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

use crate::atomic::{self, Published};
use crate::sim::metrics::Metrics;
use crate::sim::train::{Phase, RunOutcome, Snapshot, Status};
use crate::sim::vq;
use crate::study::scenario::{flatten, RunSpec, Scenario};

/// Leading columns of `runs.csv`; the parameters, `seed` and the metrics follow. `message` says
/// why a `failed` run failed (empty otherwise).
pub const RUN_COLUMNS: [&str; 6] = [
    "run_id",
    "run_index",
    "status",
    "diverged_epoch",
    "message",
    "seconds",
];
/// The leading column a run directory written before it existed lacks: read as empty.
const MESSAGE: &str = "message";
/// Leading columns of `history.csv`; the metrics follow.
pub const HISTORY_COLUMNS: [&str; 4] = ["run_id", "phase", "epoch", "total_epoch"];

pub const RUNS_DIR: &str = "runs";
pub const RUNS_CSV: &str = "runs.csv";
pub const HISTORY_CSV: &str = "history.csv";
pub const SCENARIO_TOML: &str = "scenario.toml";
pub const MANIFEST_TOML: &str = "manifest.toml";
const RUN_CSV: &str = "run.csv";
/// A run's end-of-training snapshot (see `snapshot_npz`).
pub const SNAPSHOT_NPZ: &str = "snapshot.npz";

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: {message}; delete that run directory to have the run recomputed")]
    Corrupt { path: PathBuf, message: String },
}

fn write_err(path: &Path) -> impl FnOnce(io::Error) -> OutputError + '_ {
    move |source| OutputError::Write {
        path: path.to_path_buf(),
        source,
    }
}

fn read_err(path: &Path) -> impl FnOnce(io::Error) -> OutputError + '_ {
    move |source| OutputError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// The metric names in `Metrics` field order, which is their column order.
pub fn metric_names() -> Vec<String> {
    metric_cells(&Metrics::nan()).0
}

/// Names and `{}`-formatted values of the metrics, in struct order. serde gives the order;
/// csv formats floats with ryu, which round-trips exactly, so parsing its text back and
/// re-displaying yields Rust's `{}` form.
fn metric_cells(m: &Metrics) -> (Vec<String>, Vec<String>) {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.serialize(m).expect("Metrics serializes to CSV");
    let bytes = w.into_inner().expect("writing to memory cannot fail");
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&bytes[..]);
    let mut records = r
        .records()
        .map(|r| r.expect("csv reads back what it wrote"));
    let names = records.next().unwrap().iter().map(String::from).collect();
    let values = records
        .next()
        .unwrap()
        .iter()
        .map(|v| fmt_f64(v.parse().expect("ryu text parses as f64")))
        .collect();
    (names, values)
}

/// The columns of each level of a residual quantizer with `levels` levels, after the metrics:
/// `perplexity_l1` … `perplexity_lL`, then `codes_used_l1` … (none for one level, so that
/// tables of single-codebook runs keep their columns).
pub fn level_names(levels: usize) -> Vec<String> {
    if levels < 2 {
        return Vec::new();
    }
    let per = |name: &'static str| (1..=levels).map(move |l| format!("{name}_l{l}"));
    per("perplexity").chain(per("codes_used")).collect()
}

/// The cells of `level_names(levels)` for `m` (NaN for levels it does not have).
fn level_cells(m: &Metrics, levels: usize) -> Vec<String> {
    if levels < 2 {
        return Vec::new();
    }
    let per =
        |pick: fn((f64, f64)) -> f64| (0..levels).map(move |l| fmt_f64(pick(m.levels.level(l))));
    per(|(p, _)| p).chain(per(|(_, c)| c)).collect()
}

/// The residual levels of a table of runs: the most any of them has.
fn table_levels(scenario: &Scenario) -> usize {
    let most = scenario
        .runs
        .iter()
        .map(|r| vq::levels(&r.config.quantizer))
        .max();
    most.unwrap_or_else(|| vq::levels(&scenario.base.quantizer))
}

fn fmt_f64(x: f64) -> String {
    format!("{x}")
}

fn status_text(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Diverged => "diverged",
        Status::Failed => "failed",
    }
}

fn phase_text(p: Phase) -> &'static str {
    match p {
        Phase::Continuous => "continuous",
        Phase::Quantized => "quantized",
    }
}

/// Header of `runs.csv` for runs whose parameters are `params` (as from `flatten`) and with
/// at most `levels` residual levels.
pub fn run_header(params: &[(String, String)], levels: usize) -> Vec<String> {
    let mut h: Vec<String> = RUN_COLUMNS.iter().map(|s| s.to_string()).collect();
    h.extend(params.iter().map(|(k, _)| k.clone()));
    h.push("seed".into());
    h.extend(metric_names());
    h.extend(level_names(levels));
    h
}

/// The `runs.csv` row of a finished run.
pub fn run_row(spec: &RunSpec, outcome: &RunOutcome) -> Vec<String> {
    let mut row = vec![
        spec.id.clone(),
        spec.index.to_string(),
        status_text(outcome.status).into(),
        outcome
            .diverged_epoch
            .map(|e| e.to_string())
            .unwrap_or_default(),
        outcome.message.clone(),
        fmt_f64(outcome.seconds),
    ];
    row.extend(flatten(&spec.config).into_iter().map(|(_, v)| v));
    row.push(spec.seed.to_string());
    row.extend(metric_cells(&outcome.metrics).1);
    row.extend(level_cells(
        &outcome.metrics,
        vq::levels(&spec.config.quantizer),
    ));
    row
}

/// Header of `history.csv` for runs with at most `levels` residual levels.
pub fn history_header(levels: usize) -> Vec<String> {
    let mut h: Vec<String> = HISTORY_COLUMNS.iter().map(|s| s.to_string()).collect();
    h.extend(metric_names());
    h.extend(level_names(levels));
    h
}

fn csv_bytes(header: &[String], rows: &[Vec<String>]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).expect("writing to memory");
    for r in rows {
        w.write_record(r).expect("writing to memory");
    }
    w.into_inner().expect("writing to memory")
}

/// Every file of one run directory, as (file name, contents).
fn run_files(spec: &RunSpec, outcome: &RunOutcome) -> Vec<(&'static str, Vec<u8>)> {
    let params = flatten(&spec.config);
    let levels = vq::levels(&spec.config.quantizer);
    let mut files = vec![(
        RUN_CSV,
        csv_bytes(&run_header(&params, levels), &[run_row(spec, outcome)]),
    )];
    let history: Vec<Vec<String>> = outcome
        .history
        .iter()
        .map(|h| {
            let mut r = vec![
                spec.id.clone(),
                phase_text(h.phase).into(),
                h.epoch.to_string(),
                h.total_epoch.to_string(),
            ];
            r.extend(metric_cells(&h.metrics).1);
            r.extend(level_cells(&h.metrics, levels));
            r
        })
        .collect();
    files.push((HISTORY_CSV, csv_bytes(&history_header(levels), &history)));
    if let Some(s) = &outcome.snapshot {
        files.push((SNAPSHOT_NPZ, snapshot_npz(s)));
    }
    files
}

/// The end-of-training snapshot as one `.npz` of binary arrays, readable by numpy and by
/// `vqsim diagnose` as `snapshot.npz:z`; deflated at the fastest level, which packs the f32
/// noise of the arrays about as tightly as the default level for a fraction of the time (the
/// default's deflate was 2% of an S = 1 024 run). Integers are i64, numpy's default.
fn snapshot_npz(s: &Snapshot) -> Vec<u8> {
    let ints = |v: &[usize]| Array1::from_iter(v.iter().map(|&c| c as i64));
    let usage = s.usage.mapv(|u| u as i64);
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(1));
    let mut npz = NpzWriter::new_with_options(io::Cursor::new(Vec::new()), options);
    let written = (|| {
        npz.add_array("label", &ints(&s.labels))?;
        npz.add_array("x", &s.x)?;
        npz.add_array("z", &s.z)?;
        npz.add_array("r", &s.recon)?;
        npz.add_array("code", &ints(&s.code))?;
        npz.add_array("codebook", &s.codebook)?;
        npz.add_array("usage", &usage)?;
        npz.add_array("means", &s.means)
    })();
    written.expect("writing arrays to memory cannot fail");
    npz.finish()
        .expect("writing arrays to memory cannot fail")
        .into_inner()
}

/// Replace `path` with `bytes` atomically (see `crate::atomic`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    atomic::write(path, bytes).map_err(write_err(path))
}

/// Publish one finished run as `runs_dir/<run_id>/`, complete or not at all; with its
/// snapshot when the run kept one.
pub fn write_run(
    runs_dir: &Path,
    spec: &RunSpec,
    outcome: &RunOutcome,
) -> Result<Published, OutputError> {
    let target = runs_dir.join(&spec.id);
    atomic::publish_dir(&target, &run_files(spec, outcome)).map_err(write_err(&target))
}

/// Remove the temp entries of dead processes from the sweep directory `dir` and its `runs/`.
pub fn remove_stale_temps(dir: &Path) -> Result<(), OutputError> {
    for d in [dir.to_path_buf(), dir.join(RUNS_DIR)] {
        atomic::remove_stale_temps(&d).map_err(write_err(&d))?;
    }
    Ok(())
}

/// Run ids with a published directory in `runs_dir`.
pub fn finished_ids(runs_dir: &Path) -> Result<BTreeSet<String>, OutputError> {
    let entries = match fs::read_dir(runs_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(read_err(runs_dir)(e)),
    };
    let mut ids = BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(read_err(runs_dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.path().is_dir() {
            ids.insert(name);
        }
    }
    Ok(ids)
}

/// What the assembled tables hold, against the scenario's expansion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assembly {
    /// Expansion positions with a result, in order.
    pub finished: Vec<usize>,
    /// Expansion positions whose result is `diverged`.
    pub diverged: Vec<usize>,
    /// Expansion positions with no result yet.
    pub missing: Vec<usize>,
}

fn read_csv(path: &Path) -> Result<(csv::StringRecord, Vec<csv::StringRecord>), OutputError> {
    let corrupt = |e: csv::Error| OutputError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let file = fs::File::open(path).map_err(|e| match e.kind() {
        // Only a run directory made by hand (or damaged) lacks a file: say how to recover.
        io::ErrorKind::NotFound => OutputError::Corrupt {
            path: path.to_path_buf(),
            message: "file missing".into(),
        },
        _ => read_err(path)(e),
    })?;
    let mut r = csv::Reader::from_reader(io::BufReader::new(file));
    let header = r.headers().map_err(corrupt)?.clone();
    let rows = r.records().collect::<Result<_, _>>().map_err(corrupt)?;
    Ok((header, rows))
}

/// Rebuild `runs.csv` and `history.csv` in `dir` from the run directories of the runs of
/// `scenario`. Directories of other scenarios' runs are ignored.
///
/// Shards sharing `dir` may publish runs while we read. After writing, we list the runs
/// again and redo the tables if the set changed: whoever writes the tables last has then
/// seen every run published before its check, and any later run's owner writes after it.
pub fn assemble(dir: &Path, scenario: &Scenario) -> Result<Assembly, OutputError> {
    let runs_dir = dir.join(RUNS_DIR);
    let wanted: BTreeSet<&str> = scenario.runs.iter().map(|r| r.id.as_str()).collect();
    let listed = |ids: BTreeSet<String>| -> BTreeSet<String> {
        ids.into_iter()
            .filter(|id| wanted.contains(id.as_str()))
            .collect()
    };
    let mut present = listed(finished_ids(&runs_dir)?);
    for _ in 0..20 {
        let assembly = write_tables(dir, scenario, &present)?;
        let now = listed(finished_ids(&runs_dir)?);
        if now == present {
            return Ok(assembly);
        }
        present = now;
    }
    write_tables(dir, scenario, &present)
}

fn write_tables(
    dir: &Path,
    scenario: &Scenario,
    present: &BTreeSet<String>,
) -> Result<Assembly, OutputError> {
    let runs_dir = dir.join(RUNS_DIR);
    let levels = table_levels(scenario);
    let header = match scenario.runs.first() {
        Some(r) => run_header(&flatten(&r.config), levels),
        None => run_header(&flatten(&scenario.base), levels),
    };
    let index_col = RUN_COLUMNS.iter().position(|c| *c == "run_index").unwrap();
    let status_col = RUN_COLUMNS.iter().position(|c| *c == "status").unwrap();
    let hist_header = history_header(levels);

    let mut assembly = Assembly::default();
    let mut rows = Vec::new();
    let mut hist_rows = Vec::new();
    // A run listed twice in the expansion is read once and reported at both positions.
    let mut cache: HashMap<&str, (Vec<String>, Vec<Vec<String>>)> = HashMap::new();
    for spec in &scenario.runs {
        if !present.contains(&spec.id) {
            assembly.missing.push(spec.index);
            continue;
        }
        if !cache.contains_key(spec.id.as_str()) {
            let run = read_run(&runs_dir.join(&spec.id), spec, &header, &hist_header)?;
            cache.insert(&spec.id, run);
        }
        let (row, hist) = &cache[spec.id.as_str()];
        let mut row = row.clone();
        // The stored index is the run's position in the scenario that computed it; the
        // current scenario may list the same configuration elsewhere.
        row[index_col] = spec.index.to_string();
        if row[status_col] == status_text(Status::Diverged) {
            assembly.diverged.push(spec.index);
        }
        assembly.finished.push(spec.index);
        rows.push(row);
        hist_rows.extend(hist.iter().cloned());
    }
    write_atomic(&dir.join(RUNS_CSV), &csv_bytes(&header, &rows))?;
    write_atomic(&dir.join(HISTORY_CSV), &csv_bytes(&hist_header, &hist_rows))?;
    Ok(assembly)
}

/// The `runs.csv` row and `history.csv` rows stored in one run directory of `spec`, on this
/// vqsim's columns (see `onto_columns`).
fn read_run(
    run_dir: &Path,
    spec: &RunSpec,
    header: &[String],
    hist_header: &[String],
) -> Result<(Vec<String>, Vec<Vec<String>>), OutputError> {
    let path = run_dir.join(RUN_CSV);
    let (h, rows) = read_csv(&path)?;
    let [row] = &rows[..] else {
        return Err(OutputError::Corrupt {
            path,
            message: format!("expected one row, found {}", rows.len()),
        });
    };
    // The id matched, so any key the stored row lacks has the value this spec gives it.
    let params: HashMap<String, String> = flatten(&spec.config).into_iter().collect();
    let row = onto_columns(&path, &h, row, header, &RUN_COLUMNS, |c| {
        params.get(c).cloned()
    })?;
    let path = run_dir.join(HISTORY_CSV);
    let (h, hist) = read_csv(&path)?;
    let hist = hist
        .iter()
        .map(|r| onto_columns(&path, &h, r, hist_header, &HISTORY_COLUMNS, |_| None))
        .collect::<Result<_, _>>()?;
    Ok((row, hist))
}

/// `record` (read under `stored` columns) laid out on `header`. A run directory written before
/// a metric existed lacks its column: the metric is NaN there, never a reason to drop the run.
/// A missing key column takes `param`'s value; a missing leading column (`required`) means the
/// file is not a vqsim result. Columns this vqsim no longer writes are left out.
fn onto_columns(
    path: &Path,
    stored: &csv::StringRecord,
    record: &csv::StringRecord,
    header: &[String],
    required: &[&str],
    param: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, OutputError> {
    let mut metrics = metric_names();
    metrics.extend(level_names(vq::MAX_LEVELS));
    header
        .iter()
        .map(|column| {
            if let Some(i) = stored.iter().position(|c| c == column) {
                return Ok(record.get(i).unwrap_or_default().to_string());
            }
            if column == MESSAGE {
                return Ok(String::new());
            }
            if required.contains(&column.as_str()) || column == "seed" {
                return Err(OutputError::Corrupt {
                    path: path.to_path_buf(),
                    message: format!("no `{column}` column"),
                });
            }
            if metrics.contains(column) {
                return Ok(fmt_f64(f64::NAN));
            }
            param(column).ok_or_else(|| OutputError::Corrupt {
                path: path.to_path_buf(),
                message: format!("no `{column}` column"),
            })
        })
        .collect()
}

/// `manifest.toml`: what produced the tables, and how complete they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub vqsim_version: String,
    /// `run` or `merge`.
    pub command: String,
    pub scenario: String,
    /// Runs in the scenario's expansion.
    pub runs: usize,
    /// Runs with a result in the directory (diverged included).
    pub finished: usize,
    pub diverged: usize,
    pub missing: usize,
    /// UTC, RFC 3339.
    pub started_at: String,
    pub finished_at: String,
    /// Wall time of this command.
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

impl Manifest {
    /// The manifest of `command` on `scenario`, started at `started`, ending now with `assembly`.
    pub fn new(
        command: &str,
        scenario: &Scenario,
        assembly: &Assembly,
        started: SystemTime,
        seconds: f64,
    ) -> Manifest {
        Manifest {
            vqsim_version: env!("CARGO_PKG_VERSION").into(),
            command: command.into(),
            scenario: scenario.name.clone(),
            runs: scenario.runs.len(),
            finished: assembly.finished.len(),
            diverged: assembly.diverged.len(),
            missing: assembly.missing.len(),
            started_at: utc_timestamp(started),
            finished_at: utc_timestamp(SystemTime::now()),
            seconds,
            threads: None,
            shard: None,
        }
    }
}

pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), OutputError> {
    let text = toml::to_string(manifest).expect("the manifest serializes to TOML");
    write_atomic(&dir.join(MANIFEST_TOML), text.as_bytes())
}

/// `t` as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_timestamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant, "chrono-compatible date algorithms").
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_failed_run_keeps_its_message_and_older_run_files_read_without_one() {
        let scenario = Scenario::from_str("seeds = [0]\n", None, "t").unwrap();
        let spec = &scenario.runs[0];
        let message = "k-means codebook init failed: no inertia, \"-inf\"";
        let outcome = RunOutcome {
            status: Status::Failed,
            diverged_epoch: None,
            message: message.into(),
            seconds: 0.25,
            metrics: Metrics::nan(),
            history: Vec::new(),
            snapshot: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join(RUNS_DIR);
        fs::create_dir_all(&runs).unwrap();
        write_run(&runs, spec, &outcome).unwrap();
        let file = runs.join(&spec.id).join(RUN_CSV);
        let header = run_header(&flatten(&spec.config), 1);
        let col = |name: &str| header.iter().position(|c| c == name).unwrap();
        let (h, rows) = read_csv(&file).unwrap();
        assert_eq!(h.iter().collect::<Vec<_>>(), header);
        assert_eq!(&rows[0][col("status")], "failed");
        assert_eq!(&rows[0][col("diverged_epoch")], "");
        assert_eq!(&rows[0][col(MESSAGE)], message);

        // A run directory written before the message column existed.
        let keep: Vec<usize> = (0..header.len()).filter(|&i| i != col(MESSAGE)).collect();
        let pick = |r: &csv::StringRecord| keep.iter().map(|&i| r[i].to_string()).collect();
        let old: Vec<String> = keep.iter().map(|&i| header[i].clone()).collect();
        fs::write(&file, csv_bytes(&old, &[pick(&rows[0])])).unwrap();
        let (row, _) = read_run(&runs.join(&spec.id), spec, &header, &history_header(1)).unwrap();
        assert_eq!(row[col(MESSAGE)], "");
        assert_eq!(row[col("status")], "failed");
    }

    #[test]
    fn timestamps_are_utc_civil_dates() {
        let at = |s| utc_timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_709_251_199), "2024-02-29T23:59:59Z");
    }

    #[test]
    fn metric_cells_use_display_formatting() {
        let mut m = Metrics::nan();
        m.mse = 1e-7;
        m.perplexity = 59.25;
        m.codes_used = 64.0;
        let (names, values) = metric_cells(&m);
        assert_eq!(names[..3], ["mse", "quant_mse", "perplexity"]);
        assert_eq!(values[0], format!("{}", 1e-7));
        assert_eq!(values[1], "NaN");
        assert_eq!(values[2], "59.25");
        assert_eq!(values[3], "64");
    }
}

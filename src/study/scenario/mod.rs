//! Scenario files: one TOML file → a named, validated list of runs.
//!
//! Everything is checked before anything runs: the TOML syntax, every key against the
//! configuration's keys, every value against its rule (`validate.rs`), and every sweep
//! combination as a whole (cross-key rules such as codebook_size ≤ data points).
//!
//! Axes keep their order in the file; the first axis varies slowest, the last fastest, and
//! seeds are innermost. A run's id hashes its values and seed only (`expand::run_id`).

mod compare;
mod data;
mod error;
mod expand;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub use crate::sim::config::{Field, FieldValue, RangeError, Rule};
pub use crate::sim::valid::{fields, keys_markdown, label, validate};
pub use compare::Baseline;
pub use error::ScenarioError;
pub use expand::{run_id, Identified, MAX_RUNS, RESULTS_VERSION};

use crate::sim::checked::ValidRun;
use crate::sim::config::key::{check_value, describe, ValueError};
use crate::sim::config::RunConfig;
use crate::sim::data::DataFile;
use crate::sim::valid::{self as validate, section_keys, MIXTURE_KEYS, SECTIONS};
use error::closest;

/// Keys outside the sections; they describe the scenario, not a run, so they cannot be swept.
const TOP_LEVEL_KEYS: [&str; 3] = ["name", "seeds", "replicates"];
/// Scenario names become directory names; keep them short.
pub(crate) const MAX_NAME_LEN: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Directory name under `out/`.
    pub name: String,
    /// The file it was read from, if any.
    pub path: Option<PathBuf>,
    pub seeds: Vec<u64>,
    /// The sections as written, defaults filled in, before any sweep value is applied.
    pub base: RunConfig,
    pub axes: Vec<Axis>,
    pub runs: Vec<RunSpec>,
    /// The `[compare]` baseline, when the file declares one.
    pub baseline: Option<Baseline>,
    /// The data file (`data.path`), read once and shared by every run.
    pub data: Option<DataFile>,
}

/// One `[sweep]` entry: a dotted configuration key and its distinct values, in file order;
/// or the `arms` axis, whose values are tables of dotted keys (one method each).
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<toml::Value>,
}

/// The sweep entry whose values are whole settings rather than values of one key.
pub const ARMS: &str = "arms";

impl Axis {
    /// The (dotted key, value) pairs that value `i` of this axis sets.
    pub fn settings(&self, i: usize) -> Vec<(String, toml::Value)> {
        match &self.values[i] {
            toml::Value::Table(arm) if self.key == ARMS => {
                arm.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
            }
            value => vec![(self.key.clone(), value.clone())],
        }
    }

    /// Whether some value of this axis sets dotted `key`.
    pub fn sets(&self, key: &str) -> bool {
        (0..self.values.len()).any(|i| self.settings(i).iter().any(|(k, _)| k == key))
    }

    /// The value `key` takes at each value of this axis (`base`'s where an arm leaves it).
    pub fn values_of(&self, key: &str, base: &RunConfig) -> Vec<toml::Value> {
        let default = fields(base)
            .into_iter()
            .find(|f| f.key == key)
            .map(|f| f.value.to_toml());
        (0..self.values.len())
            .filter_map(|i| {
                self.settings(i)
                    .into_iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v)
                    .or_else(|| default.clone())
            })
            .collect()
    }

    /// The keys this axis sets, in order of first appearance.
    pub fn keys(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for i in 0..self.values.len() {
            for (k, _) in self.settings(i) {
                if !out.contains(&k) {
                    out.push(k);
                }
            }
        }
        out
    }
}

/// One run: a validated configuration and its seed.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// Position in the expansion order.
    pub index: usize,
    /// 16 hex digits identifying (config, seed); see `run_id`.
    pub id: String,
    pub seed: u64,
    pub config: ValidRun,
}

const BUILTIN: &str = r#"
name = "default"
seeds = [0, 1, 2]

[sweep]
"schedule.kind" = ["early", "deferred"]
"#;

impl Scenario {
    /// Reads and validates the scenario at `path`; its name defaults to the file stem.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let (text, stem) = read(path)?;
        Scenario::from_str(&text, Some(path), &stem)
    }

    /// Parses and validates scenario `text`; `path` is only used to name it in errors (and is
    /// kept in the result), `default_name` applies when the text has no `name`.
    pub fn from_str(
        text: &str,
        path: Option<&Path>,
        default_name: &str,
    ) -> Result<Scenario, ScenarioError> {
        let Parsed {
            file,
            name,
            seeds,
            mut table,
            axes,
            compare,
        } = parse(text, path, default_name)?;
        let dir = path.and_then(Path::parent).unwrap_or(Path::new(""));
        let data_file = data::load(&file, dir, &mut table)?;
        let base = expand::deserialize(&file, table.clone())?;
        let runs = expand::expand(&file, &table, &axes, &seeds, data_file.as_ref())?;
        let baseline = baseline(&file, compare.as_ref(), &axes, &base)?;
        Ok(Scenario {
            name,
            path: path.map(Path::to_path_buf),
            seeds,
            base,
            axes,
            runs,
            baseline,
            data: data_file,
        })
    }

    /// Built-in default: the built-in defaults, sweep "schedule.kind" = ["early","deferred"], seeds
    /// [0,1,2], name "default".
    pub fn builtin_default() -> Scenario {
        Scenario::from_str(BUILTIN, None, "default")
            .unwrap_or_else(|e| unreachable!("the built-in scenario is valid: {e}"))
    }

    /// The scenario written back as TOML with every key explicit (defaults filled in),
    /// re-loadable to an equal Scenario.
    pub fn resolved_toml(&self) -> String {
        // Writing to a String cannot fail, hence the ignored results.
        let mut out =
            String::from("# Resolved scenario: every key explicit, defaults filled in.\n");
        let _ = writeln!(out, "name = {}", toml::Value::String(self.name.clone()));
        let seeds: Vec<String> = self.seeds.iter().map(u64::to_string).collect();
        let _ = writeln!(out, "seeds = [{}]", seeds.join(", "));
        let all = fields(&self.base);
        for section in SECTIONS {
            let _ = writeln!(out, "\n[{section}]");
            for field in &all {
                if let Some(key) = field
                    .key
                    .strip_prefix(section)
                    .and_then(|k| k.strip_prefix('.'))
                {
                    // With a data file the mixture keys are the file's or unused, not
                    // settings: shown, but commented out so the text reloads.
                    let note = match (&self.data, field.key) {
                        (Some(_), "data.modes" | "data.points_per_mode" | "data.dim") => {
                            "# from the data file; "
                        }
                        (Some(_), key) if MIXTURE_KEYS.contains(&key) => {
                            "# unused with a data file; "
                        }
                        _ => "",
                    };
                    let _ = writeln!(
                        out,
                        "{}{key} = {}  # {}{}",
                        if note.is_empty() { "" } else { "# " },
                        field.value.to_toml(),
                        note.trim_start_matches("# "),
                        field.doc
                    );
                }
            }
        }
        if !self.axes.is_empty() {
            out.push_str("\n[sweep]\n");
            for axis in &self.axes {
                let values = toml::Value::Array(axis.values.clone());
                let _ = writeln!(out, "\"{}\" = {values}", axis.key);
            }
        }
        if let Some(b) = &self.baseline {
            let _ = writeln!(out, "\n[compare]\n{}", b.to_toml_line());
        }
        out
    }

    /// Number of runs per seed (the product of the axis lengths).
    pub fn combinations(&self) -> usize {
        self.axes.iter().map(|a| a.values.len()).product()
    }
}

/// Every configuration key as (dotted key, value text), in a fixed order (data, model,
/// quantizer, train, schedule; keys in struct order) — the parameter columns of runs.csv.
pub fn flatten(cfg: &RunConfig) -> Vec<(String, String)> {
    fields(cfg)
        .into_iter()
        .map(|f| (f.key.to_string(), f.value.to_string()))
        .collect()
}

/// Whether `value` (as `flatten` writes it) is the default of `key`: labels name only what a
/// run changes.
pub fn is_default(key: &str, value: &str) -> bool {
    static DEFAULTS: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    DEFAULTS
        .get_or_init(|| flatten(&RunConfig::default()))
        .iter()
        .any(|(k, v)| k == key && v == value)
}

/// What the resolved scenario of a results directory asked for, read without its data file
/// (which may have moved since the sweep): the report needs the seeds, the number of
/// configurations and the baseline, not the runs themselves.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredScenario {
    pub name: String,
    pub seeds: Vec<u64>,
    /// Runs per seed (the product of the axis lengths).
    pub combinations: usize,
    /// The `[compare]` baseline, when the file declares one.
    pub baseline: Option<Baseline>,
}

impl StoredScenario {
    /// Reads and checks the scenario at `path` as `Scenario::load` does, except that the data
    /// file it names is not read and its runs are not expanded.
    pub fn load(path: &Path) -> Result<StoredScenario, ScenarioError> {
        let (text, stem) = read(path)?;
        let p = parse(&text, Some(path), &stem)?;
        let base = expand::deserialize(&p.file, p.table)?;
        Ok(StoredScenario {
            baseline: baseline(&p.file, p.compare.as_ref(), &p.axes, &base)?,
            name: p.name,
            seeds: p.seeds,
            combinations: p.axes.iter().map(|a| a.values.len()).product(),
        })
    }
}

/// A scenario file's text (checked to be UTF-8) and its stem, the default name.
fn read(path: &Path) -> Result<(String, String), ScenarioError> {
    let bytes = std::fs::read(path).map_err(|io| ScenarioError::Read {
        file: path.display().to_string(),
        io,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let lossy = String::from_utf8_lossy(e.as_bytes());
        // Lossy decoding keeps the valid prefix byte for byte, so `at` is a position in it.
        located(
            &path.display().to_string(),
            &lossy,
            at,
            format!("not UTF-8 text (byte 0x{:02x})", e.as_bytes()[at]),
        )
    })?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((text, stem))
}

/// A scenario's text checked key by key, before its data file is read and its runs expanded.
struct Parsed {
    /// How errors name the file.
    file: String,
    name: String,
    seeds: Vec<u64>,
    /// The configuration sections as written (`sections`).
    table: toml::Table,
    axes: Vec<Axis>,
    compare: Option<toml::Value>,
}

fn parse(text: &str, path: Option<&Path>, default_name: &str) -> Result<Parsed, ScenarioError> {
    let file = path.map_or_else(|| "<input>".to_string(), |p| p.display().to_string());
    let doc: toml::Table = text.parse().map_err(|e| syntax_error(&file, text, e))?;

    for key in doc.keys() {
        let known = TOP_LEVEL_KEYS.contains(&key.as_str())
            || SECTIONS.contains(&key.as_str())
            || key == "sweep"
            || key == "compare";
        if !known {
            return Err(unknown_top_level_key(&file, key));
        }
    }
    let name = name(&file, doc.get("name"), default_name)?;
    let seeds = seeds(&file, doc.get("seeds"), doc.get("replicates"))?;
    let table = sections(&file, &doc)?;
    let axes = match doc.get("sweep") {
        Some(sweep) => expand::axes(&file, text, sweep)?,
        None => Vec::new(),
    };
    data::check_keys(&file, &table, &axes)?;
    Ok(Parsed {
        file,
        name,
        seeds,
        table,
        axes,
        compare: doc.get("compare").cloned(),
    })
}

/// The declared `[compare]` baseline, else the first arm of an `arms` axis.
fn baseline(
    file: &str,
    compare: Option<&toml::Value>,
    axes: &[Axis],
    base: &RunConfig,
) -> Result<Option<Baseline>, ScenarioError> {
    match compare {
        Some(compare) => Ok(Some(compare::parse(file, compare, axes, base)?)),
        None => Ok(compare::first_arm(axes, base)),
    }
}

fn syntax_error(file: &str, text: &str, e: toml::de::Error) -> ScenarioError {
    let at = e.span().map_or(0, |s| s.start);
    located(file, text, at, e.message().trim().replace('\n', "; "))
}

/// A syntax error at byte `at` of `text`, with its line, column, key and snippet.
fn located(file: &str, text: &str, at: usize, message: String) -> ScenarioError {
    let at = floor_boundary(text, at.min(text.len()));
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let source_line = text[line_start..].lines().next().unwrap_or("");
    ScenarioError::Syntax {
        file: file.into(),
        line,
        column,
        key: key_on_line(&text[..line_start], source_line),
        message,
        snippet: snippet(line, column, source_line),
    }
}

/// The toml crate's picture of an error: the line, numbered, and a caret under `column`
/// (1-based, in chars). Long lines are cut to a window around the caret; control characters
/// are shown as `�` so they cannot disturb the terminal.
fn snippet(line: usize, column: usize, source_line: &str) -> String {
    const BEFORE: usize = 60;
    const AFTER: usize = 40;
    let chars: Vec<char> = source_line
        .chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    let from = column.saturating_sub(1 + BEFORE);
    let to = chars.len().min(column + AFTER);
    let mut shown: String = chars[from.min(to)..to].iter().collect();
    let mut pad: String = chars[from.min(to)..(column - 1).min(to)]
        .iter()
        .map(|&c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    if from > 0 {
        shown.insert(0, '…');
        pad.insert(0, ' ');
    }
    if to < chars.len() {
        shown.push('…');
    }
    let number = line.to_string();
    let gutter = " ".repeat(number.len());
    format!("{gutter} |\n{number} | {shown}\n{gutter} | {pad}^")
}

/// The dotted key assigned on `source_line` (prefixed by the table opened last in
/// `preceding`), or the table a `[header]` line opens; None when the line has neither.
fn key_on_line(preceding: &str, source_line: &str) -> Option<String> {
    let header = |l: &str| {
        let l = l.trim();
        (l.starts_with('[') && !l.starts_with("[[")).then(|| {
            l.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
    };
    let line = source_line.trim();
    if line.starts_with('[') {
        return header(line).filter(|h| !h.is_empty());
    }
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if key.is_empty() || !key.chars().all(plain) {
        return None;
    }
    match preceding.lines().rev().find_map(header) {
        Some(table) if !table.is_empty() => Some(format!("{table}.{key}")),
        _ => Some(key.to_string()),
    }
}

/// The largest char boundary of `text` at or before byte `at`.
fn floor_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn unknown_top_level_key(file: &str, key: &str) -> ScenarioError {
    let mut candidates: Vec<&str> = TOP_LEVEL_KEYS.to_vec();
    candidates.extend(SECTIONS);
    candidates.extend(["sweep", "compare"]);
    // A section key written at the top level (`lr = 0.1` above `[train]`) is a common slip.
    let suggestion = closest(key, candidates)
        .map(String::from)
        .or_else(|| in_its_section(key));
    ScenarioError::UnknownKey {
        file: file.into(),
        key: key.into(),
        accepts: "the top level accepts name, seeds, replicates and the sections [data], [model], [quantizer], [train], [schedule], [sweep], [compare]".into(),
        suggestion,
    }
}

fn name(
    file: &str,
    value: Option<&toml::Value>,
    default_name: &str,
) -> Result<String, ScenarioError> {
    let (name, from_file_name) = match value {
        None => (default_name.to_string(), true),
        Some(toml::Value::String(s)) => (s.clone(), false),
        Some(other) => {
            return Err(ScenarioError::WrongType {
                file: file.into(),
                key: "name".into(),
                expected: "a string".into(),
                found: describe(other),
            })
        }
    };
    // A leading `.` would hide the results directory (and covers `.` and `..`).
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(name)
    } else {
        Err(ScenarioError::InvalidName {
            file: file.into(),
            name,
            from_file_name,
        })
    }
}

fn seeds(
    file: &str,
    seeds: Option<&toml::Value>,
    replicates: Option<&toml::Value>,
) -> Result<Vec<u64>, ScenarioError> {
    match (seeds, replicates) {
        (Some(_), Some(_)) => Err(ScenarioError::SeedsAndReplicates { file: file.into() }),
        (None, None) => Ok(vec![0]),
        (None, Some(n)) => match n {
            toml::Value::Integer(n) if (1..=MAX_RUNS as i64).contains(n) => {
                Ok((0..*n as u64).collect())
            }
            toml::Value::Integer(n) => Err(ScenarioError::OutOfRange {
                file: file.into(),
                key: "replicates".into(),
                value: n.to_string(),
                allowed: format!("an integer ≥ 1 and ≤ {MAX_RUNS}"),
                context: String::new(),
            }),
            other => Err(ScenarioError::WrongType {
                file: file.into(),
                key: "replicates".into(),
                expected: "an integer".into(),
                found: describe(other),
            }),
        },
        (Some(list), None) => {
            let items = match list {
                toml::Value::Array(items) if !items.is_empty() => items,
                other => {
                    return Err(ScenarioError::WrongType {
                        file: file.into(),
                        key: "seeds".into(),
                        expected: "a non-empty array of non-negative integers".into(),
                        found: describe(other),
                    })
                }
            };
            let mut out: Vec<u64> = Vec::with_capacity(items.len());
            // First index of each seed; a map keeps long lists linear.
            let mut seen: HashMap<u64, usize> = HashMap::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let seed = match item {
                    toml::Value::Integer(s) if *s >= 0 => *s as u64,
                    toml::Value::Integer(s) => {
                        return Err(ScenarioError::OutOfRange {
                            file: file.into(),
                            key: format!("seeds[{i}]"),
                            value: s.to_string(),
                            allowed: "an integer ≥ 0".into(),
                            context: String::new(),
                        })
                    }
                    other => {
                        return Err(ScenarioError::WrongType {
                            file: file.into(),
                            key: format!("seeds[{i}]"),
                            expected: "a non-negative integer".into(),
                            found: describe(other),
                        })
                    }
                };
                if let Some(&first) = seen.get(&seed) {
                    return Err(ScenarioError::DuplicateSeed {
                        file: file.into(),
                        seed,
                        first,
                        second: i,
                    });
                }
                seen.insert(seed, i);
                out.push(seed);
            }
            Ok(out)
        }
    }
}

/// The configuration sections of `doc`, every key known and every value of the right type
/// (normalised: integers given for float keys are floats).
fn sections(file: &str, doc: &toml::Table) -> Result<toml::Table, ScenarioError> {
    let mut out = toml::Table::new();
    for section in SECTIONS {
        let Some(value) = doc.get(section) else {
            continue;
        };
        let toml::Value::Table(table) = value else {
            return Err(ScenarioError::WrongType {
                file: file.into(),
                key: section.into(),
                expected: format!("a table (a [{section}] section)"),
                found: describe(value),
            });
        };
        let keys = section_keys(section);
        let mut checked = toml::Table::new();
        for (key, raw) in table {
            let dotted = format!("{section}.{key}");
            let Some(rule) = validate::rule_of(&dotted) else {
                return Err(unknown_section_key(file, section, key, &keys));
            };
            let v = check_value(&rule, raw).map_err(|e| match e {
                ValueError::Type { expected, found } => ScenarioError::WrongType {
                    file: file.into(),
                    key: dotted.clone(),
                    expected: expected.into(),
                    found,
                },
                ValueError::Range { value, allowed } => ScenarioError::OutOfRange {
                    file: file.into(),
                    key: dotted.clone(),
                    value,
                    allowed,
                    context: String::new(),
                },
            })?;
            checked.insert(key.clone(), v);
        }
        out.insert(section.into(), toml::Value::Table(checked));
    }
    Ok(out)
}

fn unknown_section_key(file: &str, section: &str, key: &str, keys: &[&str]) -> ScenarioError {
    // A typo within the section, else the same key in the section it belongs to.
    let suggestion = closest(key, keys.iter().copied())
        .map(String::from)
        .or_else(|| in_its_section(key));
    ScenarioError::UnknownKey {
        file: file.into(),
        key: format!("{section}.{key}"),
        accepts: format!("[{section}] accepts {}", keys.join(", ")),
        suggestion,
    }
}

/// `key` as a dotted key of the section that has it (`lr` → `train.lr`), if any does.
fn in_its_section(key: &str) -> Option<String> {
    SECTIONS
        .iter()
        .find(|s| section_keys(s).contains(&key))
        .map(|s| format!("{s}.{key}"))
}

#[cfg(test)]
mod tests;

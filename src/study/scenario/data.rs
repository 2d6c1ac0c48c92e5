//! `[data] path = "FILE"`: the user's own data set in place of the mixture, read once when the
//! scenario is loaded and shared (behind an `Arc`) by every run and thread of the sweep.
//!
//! The paths are resolved against the scenario file's directory and written back absolute,
//! so the resolved scenario names the files read and loads again from anywhere. The mixture
//! keys then come from the file: `dim` its columns, `modes` its classes (1 without labels),
//! `points_per_mode` its rows per class rounded; `DataConfig::points` gives the exact rows.

use std::path::Path;
use std::sync::Arc;

use super::error::ScenarioError;
use super::expand::Fnv1a;
use super::Axis;
use crate::arrays::{self, ArrayError, Problem, Shape, Source};
use crate::sim::data::{DataFile, Mixture};
use crate::sim::valid::{FILE_KEYS, MIXTURE_KEYS};

/// Rejects the combinations a data file rules out: mixture keys next to `data.path`, the
/// other file keys without it, and file keys as sweep axes (one sweep reads one file).
pub(super) fn check_keys(
    file: &str,
    base: &toml::Table,
    axes: &[Axis],
) -> Result<(), ScenarioError> {
    for axis in axes {
        if let Some(key) = axis.keys().into_iter().find(|k| FILE_KEYS.contains(&&**k)) {
            return Err(ScenarioError::DataFileSwept {
                file: file.into(),
                axis: key,
            });
        }
    }
    let data = base.get("data").and_then(toml::Value::as_table);
    let given = |key: &str| {
        let name = key.trim_start_matches("data.");
        data.is_some_and(|t| t.contains_key(name))
    };
    if !has_path(base) {
        // Set to something other than their defaults ("", false), as a resolved file has them.
        let set = |key: &str| {
            let name = key.trim_start_matches("data.");
            data.and_then(|t| t.get(name)).is_some_and(|v| {
                v != &toml::Value::String(String::new()) && v != &toml::Value::Boolean(false)
            })
        };
        return match FILE_KEYS[1..].iter().find(|k| set(k)) {
            Some(key) => Err(ScenarioError::NeedsDataPath {
                file: file.into(),
                key: key.to_string(),
            }),
            None => Ok(()),
        };
    }
    let mut clashing: Vec<String> = MIXTURE_KEYS
        .iter()
        .filter(|k| given(k))
        .map(|k| format!("`{k}`"))
        .collect();
    for axis in axes {
        for key in axis.keys() {
            if MIXTURE_KEYS.contains(&key.as_str()) {
                clashing.push(format!("`{key}` (swept)"));
            }
        }
    }
    if clashing.is_empty() {
        Ok(())
    } else {
        Err(ScenarioError::MixtureKeysWithDataFile {
            file: file.into(),
            keys: clashing.join(", "),
        })
    }
}

fn has_path(base: &toml::Table) -> bool {
    base.get("data")
        .and_then(|d| d.get("path"))
        .and_then(toml::Value::as_str)
        .is_some_and(|p| !p.is_empty())
}

/// Reads the data file `base` names, if any: resolves `data.path` and `data.labels` against
/// `dir` (written back absolute), and sets the mixture keys from the file. One read per file.
pub(super) fn load(
    file: &str,
    dir: &Path,
    base: &mut toml::Table,
) -> Result<Option<DataFile>, ScenarioError> {
    if !has_path(base) {
        return Ok(None);
    }
    let Some(toml::Value::Table(data)) = base.get_mut("data") else {
        unreachable!("has_path found a [data] table");
    };
    let text = |data: &toml::Table, key: &str| {
        data.get(key)
            .and_then(toml::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    let error = |key: &str| {
        let key = format!("data.{key}");
        move |error: ArrayError| ScenarioError::DataFile {
            file: file.into(),
            key,
            error: Box::new(error),
        }
    };
    let path = resolve(dir, &text(data, "path").expect("has_path")).map_err(error("path"))?;
    let source = Source::new(&path, text(data, "array"));
    let x = arrays::read_matrix(&source, Shape::Matrix).map_err(error("path"))?;
    let labels = match text(data, "labels") {
        Some(l) => {
            let l = resolve(dir, &l).map_err(error("labels"))?;
            let read = arrays::read_labels_for(&Source::new(&l, None), x.nrows());
            data.insert("labels".into(), path_value(&l));
            Some(read.map_err(error("labels"))?)
        }
        None => None,
    };
    data.insert("path".into(), path_value(&path));
    let standardize = data
        .get("standardize")
        .and_then(toml::Value::as_bool)
        .unwrap_or(false);
    let fingerprint = fingerprint(&x, labels.as_deref());
    let mixture = Mixture::from_file(x, labels.as_deref(), standardize);
    let (n, d) = mixture.x.dim();
    let modes = mixture.modes().max(1);
    for (key, value) in [
        ("dim", d),
        ("modes", modes),
        (
            "points_per_mode",
            ((n as f64 / modes as f64).round() as usize).max(1),
        ),
    ] {
        data.insert(key.into(), toml::Value::Integer(value as i64));
    }
    Ok(Some(DataFile {
        data: Arc::new(mixture),
        fingerprint,
    }))
}

/// `path` relative to `dir` unless absolute, made canonical (so `a/../b` and symlinks name the
/// file itself); a missing file is an error naming the path tried.
fn resolve(dir: &Path, path: &str) -> Result<std::path::PathBuf, ArrayError> {
    let joined = dir.join(path);
    joined.canonicalize().map_err(|io| ArrayError {
        source_name: joined.display().to_string(),
        problem: Problem::Io(io),
    })
}

fn path_value(path: &Path) -> toml::Value {
    toml::Value::String(path.display().to_string())
}

/// Hash of the shape, the values (f32 bits) and the labels as read, before standardizing
/// (`data.standardize` and `data.array` enter the run id as keys of their own).
fn fingerprint(x: &ndarray::Array2<f32>, labels: Option<&[usize]>) -> u64 {
    let mut h = Fnv1a::new();
    h.write(format!("{}x{}\n", x.nrows(), x.ncols()).as_bytes());
    for v in x.iter() {
        h.write(&v.to_bits().to_le_bytes());
    }
    if let Some(labels) = labels {
        h.write(b"labels\n");
        for &l in labels {
            h.write(&(l as u64).to_le_bytes());
        }
    }
    h.finish()
}

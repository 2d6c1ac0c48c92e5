//! The `[sweep]` table: its axes in file order, their cartesian product × seeds, and run ids.
//!
//! `toml::Value` tables are sorted maps (toml's `preserve_order` feature is off), so the file
//! order of the axes is recovered from the spans of their values in a second, span-aware pass
//! over the text.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use toml::Spanned;

use super::error::{closest, ScenarioError};
use super::{Axis, RunSpec, ARMS, TOP_LEVEL_KEYS};
use crate::sim::checked::ValidRun;
use crate::sim::config::key::{check_value, describe, ValueError};
use crate::sim::config::RunConfig;
use crate::sim::data::DataFile;
use crate::sim::valid::{self as validate, rule_of, section_keys, SECTIONS};

/// More runs than this is a mistake in the file, not an experiment.
pub const MAX_RUNS: usize = 100_000;

/// The axes of a `[sweep]` table, in the order they appear in `text`, each checked: a known
/// section key, a non-empty array of distinct values of that key's type (normalised, so
/// `"train.lr" = [1, 0.1]` holds floats).
pub(super) fn axes(
    file: &str,
    text: &str,
    sweep: &toml::Value,
) -> Result<Vec<Axis>, ScenarioError> {
    let toml::Value::Table(table) = sweep else {
        return Err(ScenarioError::WrongType {
            file: file.into(),
            key: "sweep".into(),
            expected: "a table of axes such as `\"model.width\" = [32, 64]`".into(),
            found: describe(sweep),
        });
    };
    let mut leaves = Vec::new();
    collect_leaves("", table, &mut leaves);
    let order = value_offsets(text, table);
    // Stable sort: leaves whose offset is unknown keep their (alphabetical) order at the end.
    leaves.sort_by_key(|(key, _)| {
        order
            .iter()
            .find(|(k, _)| k == key)
            .map_or(usize::MAX, |(_, at)| *at)
    });

    let mut axes: Vec<Axis> = Vec::new();
    for (key, value) in leaves {
        if axes.iter().any(|a| a.key == key) {
            return Err(ScenarioError::DuplicateAxis {
                file: file.into(),
                axis: key,
            });
        }
        axes.push(axis(file, key, value)?);
    }
    // A key both swept on its own and set by an arm would have two values in one run.
    if let Some(arms) = axes.iter().find(|a| a.key == ARMS) {
        if let Some(key) = arms
            .keys()
            .into_iter()
            .find(|k| axes.iter().any(|a| a.key == *k))
        {
            return Err(ScenarioError::AxisAlsoInArms {
                file: file.into(),
                axis: key,
            });
        }
    }
    Ok(axes)
}

/// Dotted paths of the non-table values under `table`: `"model.width" = [..]` and
/// `model.width = [..]` (a nested table) both give `model.width`.
pub(super) fn collect_leaves<'a>(
    prefix: &str,
    table: &'a toml::Table,
    out: &mut Vec<(String, &'a toml::Value)>,
) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) if !inner.is_empty() => collect_leaves(&path, inner, out),
            _ => out.push((path, value)),
        }
    }
}

fn axis(file: &str, key: String, value: &toml::Value) -> Result<Axis, ScenarioError> {
    if key == ARMS {
        return arms(file, value);
    }
    if TOP_LEVEL_KEYS.contains(&key.as_str()) {
        return Err(ScenarioError::TopLevelAxis {
            file: file.into(),
            axis: key,
        });
    }
    let Some(rule) = rule_of(&key) else {
        return Err(unknown_axis(file, key));
    };
    let values = match value {
        toml::Value::Array(values) if !values.is_empty() => values,
        _ => {
            return Err(ScenarioError::AxisNotArray {
                file: file.into(),
                axis: key,
                found: describe(value),
            })
        }
    };
    if values.len() > MAX_RUNS {
        return Err(ScenarioError::TooManyRuns {
            file: file.into(),
            runs: format!("at least {}", values.len()),
            max: MAX_RUNS,
        });
    }
    let mut checked: Vec<toml::Value> = Vec::with_capacity(values.len());
    // First index of each value, by its TOML text (values are normalised, so equal values have
    // equal text); a map keeps long axes linear.
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(values.len());
    for (i, raw) in values.iter().enumerate() {
        let place = format!("sweep.\"{key}\"[{i}]");
        let v = check_value(&rule, raw).map_err(|e| value_error(file, place, e))?;
        if let Some(&first) = seen.get(&v.to_string()) {
            return Err(ScenarioError::DuplicateAxisValue {
                file: file.into(),
                axis: key,
                value: v.to_string(),
                first,
                second: i,
            });
        }
        seen.insert(v.to_string(), i);
        checked.push(v);
    }
    Ok(Axis {
        key,
        values: checked,
    })
}

/// `arms = [{ "quantizer.restart" = "lru" }, { "schedule.kind" = "deferred" }, …]`: one axis
/// whose values are whole settings, for comparisons that are a list of methods rather than a
/// product of keys (a method zoo). `{}` is the base configuration. Each arm's keys and values
/// are checked like an axis's; its value is a table of dotted keys in file order.
fn arms(file: &str, value: &toml::Value) -> Result<Axis, ScenarioError> {
    let expected = "an array of inline tables of configuration keys, such as \
                    `[{}, { \"quantizer.restart\" = \"lru\" }]`";
    let wrong = |key: String, found: String| ScenarioError::WrongType {
        file: file.into(),
        key,
        expected: expected.into(),
        found,
    };
    let items = match value {
        toml::Value::Array(items) if !items.is_empty() => items,
        other => return Err(wrong(format!("sweep.{ARMS}"), describe(other))),
    };
    let mut checked: Vec<toml::Value> = Vec::with_capacity(items.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let toml::Value::Table(table) = item else {
            return Err(wrong(format!("sweep.{ARMS}[{i}]"), describe(item)));
        };
        let mut leaves = Vec::new();
        collect_leaves("", table, &mut leaves);
        let mut arm = toml::Table::new();
        for (key, raw) in leaves {
            let place = format!("sweep.{ARMS}[{i}].\"{key}\"");
            let Some(rule) = rule_of(&key) else {
                let mut e = unknown_axis(file, key);
                if let ScenarioError::UnknownAxis { axis, .. } = &mut e {
                    *axis = place;
                }
                return Err(e);
            };
            let v = check_value(&rule, raw).map_err(|e| value_error(file, place, e))?;
            arm.insert(key, v);
        }
        let text = toml::Value::Table(arm.clone()).to_string();
        if let Some(&first) = seen.get(&text) {
            return Err(ScenarioError::DuplicateAxisValue {
                file: file.into(),
                axis: ARMS.into(),
                value: text,
                first,
                second: i,
            });
        }
        seen.insert(text, i);
        checked.push(toml::Value::Table(arm));
    }
    Ok(Axis {
        key: ARMS.into(),
        values: checked,
    })
}

fn value_error(file: &str, place: String, e: ValueError) -> ScenarioError {
    match e {
        ValueError::Type { expected, found } => ScenarioError::WrongType {
            file: file.into(),
            key: place,
            expected: expected.into(),
            found,
        },
        ValueError::Range { value, allowed } => ScenarioError::OutOfRange {
            file: file.into(),
            key: place,
            value,
            allowed,
            context: String::new(),
        },
    }
}

fn unknown_axis(file: &str, key: String) -> ScenarioError {
    let all: Vec<String> = validate::fields(&RunConfig::default())
        .iter()
        .map(|f| f.key.to_string())
        .collect();
    // A key without its section (`codebook_size`) is too far from `quantizer.codebook_size`
    // for a typo: match it by the name after the section.
    let by_name = || {
        let name = key.rsplit('.').next().unwrap_or(&key);
        let mut same = all.iter().filter(|k| k.rsplit('.').next() == Some(name));
        same.next().filter(|_| same.next().is_none())
    };
    let suggestion = closest(&key, all.iter().map(String::as_str))
        .or_else(|| by_name().map(String::as_str))
        .map(String::from);
    let accepts = match key
        .split_once('.')
        .map(|(s, _)| s)
        .filter(|s| SECTIONS.contains(s))
    {
        Some(section) => format!(
            "axes are `section.key`; [{section}] accepts {}",
            section_keys(section).join(", ")
        ),
        None => format!(
            "axes are `section.key` with section one of {}",
            SECTIONS.join(", ")
        ),
    };
    ScenarioError::UnknownAxis {
        file: file.into(),
        axis: key,
        accepts,
        suggestion,
    }
}

/// Byte offsets of the values under `[sweep]` in `text`, by dotted path; `sweep` is the
/// already parsed table, which tells the second pass where tables are. Only leaves are wrapped
/// in `Spanned`: toml has no span for the implicit tables of dotted keys. Empty if the text
/// cannot be read this way (then axes fall back to alphabetical order).
fn value_offsets(text: &str, sweep: &toml::Table) -> Vec<(String, usize)> {
    let mut shape = toml::Table::new();
    shape.insert("sweep".into(), toml::Value::Table(sweep.clone()));
    let seed = Offsets {
        shape: &shape,
        prefix: String::new(),
    };
    let offsets =
        de::DeserializeSeed::deserialize(seed, toml::Deserializer::new(text)).unwrap_or_default();
    offsets
        .into_iter()
        .filter_map(|(path, at)| Some((path.strip_prefix("sweep.")?.to_string(), at)))
        .collect()
}

/// Reads a table whose shape is known, collecting where each non-table value starts.
struct Offsets<'a> {
    shape: &'a toml::Table,
    prefix: String,
}

impl<'de> de::DeserializeSeed<'de> for Offsets<'_> {
    type Value = Vec<(String, usize)>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Offsets<'_> {
    type Value = Vec<(String, usize)>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a TOML table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.prefix.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.prefix)
            };
            match self.shape.get(&key) {
                Some(toml::Value::Table(inner)) => out.extend(map.next_value_seed(Offsets {
                    shape: inner,
                    prefix: path,
                })?),
                Some(_) => {
                    let leaf = map.next_value::<Spanned<IgnoredAny>>()?;
                    out.push((path, leaf.span().start));
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// The runs of a scenario: every combination of axis values (first axis slowest, last axis
/// fastest) × every seed (innermost), each config deserialized, given the scenario's data file
/// (shared, not copied) and validated.
pub(super) fn expand(
    file: &str,
    base: &toml::Table,
    axes: &[Axis],
    seeds: &[u64],
    data: Option<&DataFile>,
) -> Result<Vec<RunSpec>, ScenarioError> {
    let combos = axes
        .iter()
        .try_fold(1usize, |n, a| n.checked_mul(a.values.len()));
    let total = combos.and_then(|c| c.checked_mul(seeds.len()));
    let (combos, total) = match (combos, total) {
        (Some(c), Some(t)) if t <= MAX_RUNS => (c, t),
        _ => {
            let runs = axes
                .iter()
                .fold(seeds.len() as f64, |n, a| n * a.values.len() as f64);
            return Err(ScenarioError::TooManyRuns {
                file: file.into(),
                runs: format!("{runs:.0}"),
                max: MAX_RUNS,
            });
        }
    };

    let base_cfg = deserialize(file, base.clone())?;
    let mut runs = Vec::with_capacity(total);
    let mut picks = vec![0usize; axes.len()];
    for combo in 0..combos {
        // Mixed-radix digits of `combo`, last axis least significant.
        let mut rest = combo;
        for (pick, axis) in picks.iter_mut().zip(axes).rev() {
            *pick = rest % axis.values.len();
            rest /= axis.values.len();
        }
        let mut table = base.clone();
        for (axis, &pick) in axes.iter().zip(&picks) {
            for (key, value) in axis.settings(pick) {
                set(&mut table, &key, value);
            }
        }
        let config = deserialize(file, table)?;
        let config = validate::validate(&config, data).map_err(|e| {
            let context = if let Some(i) = axes.iter().position(|a| a.sets(&e.key)) {
                format!(" (from `sweep.\"{}\"`[{}])", e.key, picks[i])
            } else if axes.is_empty()
                || validate::validate(&base_cfg, data).is_err_and(|b| b.key == e.key)
            {
                String::new()
            } else {
                let combo: Vec<String> = axes
                    .iter()
                    .zip(&picks)
                    .map(|(a, &p)| format!("{} = {}", a.key, a.values[p]))
                    .collect();
                format!(" in the sweep run with {}", combo.join(", "))
            };
            ScenarioError::OutOfRange {
                file: file.into(),
                key: e.key,
                value: e.value,
                allowed: e.allowed,
                context,
            }
        })?;
        for &seed in seeds {
            runs.push(RunSpec {
                index: runs.len(),
                id: run_id(&config, seed),
                seed,
                config: config.clone(),
            });
        }
    }
    Ok(runs)
}

/// Sets dotted `section.key` in a table of sections.
fn set(table: &mut toml::Table, dotted: &str, value: toml::Value) {
    // Axes were checked to be `section.key`.
    let (section, key) = dotted.split_once('.').unwrap_or((dotted, ""));
    let entry = table
        .entry(section)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(inner) = entry {
        inner.insert(key.to_string(), value);
    }
}

pub(super) fn deserialize(file: &str, table: toml::Table) -> Result<RunConfig, ScenarioError> {
    let mut cfg: RunConfig =
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ScenarioError::Invalid {
                file: file.into(),
                message: format!("invalid configuration: {}", e.message()),
            })?;
    // A remedy's key written at its default equals one left out.
    cfg.quantizer.params.drop_defaults(validate::remedy_keys());
    Ok(cfg)
}

/// Bumped whenever a change of algorithm alters the results of some configuration, so that
/// stored runs computed by the old algorithm are never reused:
/// 1. the original tag of every id;
/// 2. `coverage` on equal-size sets (Naeem et al. 2020), the generation metrics, and with
///    `data.holdout` a k-means init on the training points only;
/// 3. the entropy loss no longer turns a batch-mean probability that underflows to 0 into an
///    infinite gradient (every `entropy_weight` run of version 2 diverged from it).
/// 4. the matrix products run on faer's kernels instead of matrixmultiply: the default model's
///    runs are bit for bit as before, but some products round differently in the last bits
///    (seen: SimVQ's E = C·W at S = 1024).
/// 5. remedies as their authors built them: k-means re-init in the first third of training
///    only; threshold restarts counted in shares of batch/S, on full batches, tiled with noise;
///    IBQ's loss as SEED-Voken's; the entropy loss and IBQ at temperatures relative to the
///    latents' scale; SimVQ's random basis with a biased linear map; `affine` learned (the
///    running-statistics rule is now `affine_running`); LRU jitter 0.01; the metric
///    `code_travel`. Runs that use none of these remedies train bit for bit as in version 4.
/// 6. threshold restarts as Jukebox trains from scratch: every count starts at the threshold,
///    and a restarted code keeps its count (redrawn until it earns its points). Runs without
///    `restart = "threshold"` train bit for bit as in version 5.
/// 7. `codebook_cos` in closed form (O(S·m) instead of a sum over pairs): the same mean up to
///    rounding, in the last digits. Training and every other metric are bit for bit as in
///    version 6.
pub const RESULTS_VERSION: u32 = 7;

/// The keys every id has hashed since version 1, whatever their value: hashing them only when
/// they differ from their default would rename every stored run. Keys added later enter the
/// id only when they differ from their default, so adding an option (off by default) leaves
/// every existing id, and so every stored result, valid.
const ALWAYS_HASHED: [&str; 23] = [
    "data.modes",
    "data.points_per_mode",
    "data.dim",
    "data.mean_range",
    "data.std",
    "data.weight_ratio",
    "data.std_ratio",
    "data.holdout",
    "model.latent_dim",
    "model.width",
    "model.depth",
    "model.activation",
    "quantizer.codebook_size",
    "quantizer.update",
    "quantizer.beta",
    "quantizer.ema_decay",
    "quantizer.init",
    "quantizer.init_std",
    "train.lr",
    "train.batch_size",
    "train.epochs",
    "schedule.kind",
    "schedule.continuous_epochs",
];

/// A run's id: 16 hex digits of the FNV-1a hash of its canonical config text and seed.
///
/// Depends only on the values, not on the scenario's name, sweep layout or run order, so the
/// same run reached from another scenario (or an extended sweep) is recognised as done.
pub fn run_id(run: &impl Identified, seed: u64) -> String {
    let text = canonical_text(run.config(), run.data_file(), seed);
    format!("{:016x}", fnv1a(text.as_bytes()))
}

/// What a run's id is computed from: its configuration and, when it has one, its data file.
pub trait Identified {
    fn config(&self) -> &RunConfig;
    fn data_file(&self) -> Option<&DataFile>;
}

impl Identified for RunConfig {
    fn config(&self) -> &RunConfig {
        self
    }

    /// A bare configuration runs on its mixture.
    fn data_file(&self) -> Option<&DataFile> {
        None
    }
}

impl Identified for ValidRun {
    fn config(&self) -> &RunConfig {
        ValidRun::config(self)
    }

    fn data_file(&self) -> Option<&DataFile> {
        ValidRun::data_file(self)
    }
}

/// The keys a data file's content hash stands for in the id: where the files are does not
/// matter, what they hold does.
const REPLACED_BY_CONTENT: [&str; 2] = ["data.path", "data.labels"];

/// One `key=value` line per hashed key (see `ALWAYS_HASHED`), the data file's content hash
/// (`data.content`, with a file), then the seed, under the tag of the results version.
fn canonical_text(config: &RunConfig, file: Option<&DataFile>, seed: u64) -> String {
    let mut text = format!("vqsim-run-v{RESULTS_VERSION}\n");
    let defaults = validate::fields(&RunConfig::default());
    for (field, default) in validate::fields(config).into_iter().zip(defaults) {
        if file.is_some() && REPLACED_BY_CONTENT.contains(&field.key) {
            continue;
        }
        if ALWAYS_HASHED.contains(&field.key) || field.value != default.value {
            // Writing to a String cannot fail.
            let _ = writeln!(text, "{}={}", field.key, field.value);
        }
    }
    if let Some(f) = file {
        let _ = writeln!(text, "data.content={:016x}", f.fingerprint);
    }
    let _ = writeln!(text, "seed={seed}");
    text
}

/// 64-bit FNV-1a: tiny, and unlike std's `DefaultHasher` fixed forever.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a::new();
    h.write(bytes);
    h.finish()
}

/// FNV-1a fed in pieces (a data file's values without copying them into one buffer).
pub(super) struct Fnv1a(u64);

impl Fnv1a {
    pub(super) fn new() -> Fnv1a {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    pub(super) fn write(&mut self, bytes: &[u8]) {
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        self.0 = bytes
            .iter()
            .fold(self.0, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    }

    pub(super) fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_reference_vectors() {
        // From the FNV reference test suite.
        assert_eq!(fnv1a(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn run_id_is_16_lowercase_hex_digits() {
        let id = run_id(&RunConfig::default(), 0);
        assert_eq!(id.len(), 16);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    }

    #[test]
    fn run_id_changes_with_every_key_and_the_seed() {
        let base = RunConfig::default();
        let id = run_id(&base, 0);
        assert_ne!(run_id(&base, 1), id);
        let table = toml::Value::try_from(&base).unwrap();
        for field in validate::fields(&base) {
            let (section, key) = field.key.split_once('.').unwrap();
            let mut t = table.clone();
            let current = field.value.to_toml();
            let changed = match &current {
                toml::Value::Integer(i) => toml::Value::Integer(i + 1),
                // Halving leaves 0 as it is: move it off zero instead.
                toml::Value::Float(x) => toml::Value::Float(if *x == 0.0 { 0.25 } else { x * 0.5 }),
                toml::Value::String(_) => match field.rule {
                    crate::sim::config::Rule::Choice(words) => {
                        let other = words
                            .iter()
                            .find(|w| **w != field.value.to_string())
                            .unwrap();
                        toml::Value::String(other.to_string())
                    }
                    // A config built in code, no file attached: the text itself is hashed.
                    _ => toml::Value::String("other".into()),
                },
                toml::Value::Boolean(b) => toml::Value::Boolean(!b),
                // A list key (fsq_levels): any other list.
                toml::Value::Array(_) => toml::Value::Array(vec![toml::Value::Integer(3)]),
                other => panic!("unexpected {other:?}"),
            };
            t[section]
                .as_table_mut()
                .unwrap()
                .insert(key.into(), changed);
            let cfg: RunConfig = t.try_into().unwrap();
            assert_ne!(run_id(&cfg, 0), id, "{} does not change the id", field.key);
        }
    }

    #[test]
    fn every_always_hashed_key_is_a_configuration_key() {
        let keys: Vec<&str> = validate::fields(&RunConfig::default())
            .iter()
            .map(|f| f.key)
            .collect();
        for key in ALWAYS_HASHED {
            assert!(keys.contains(&key), "{key} is not a key");
        }
    }

    #[test]
    fn keys_added_after_version_1_enter_the_id_only_off_their_default() {
        // The canonical text of a default config names exactly the version-1 keys: a key
        // added since must not appear there, or adding it would have renamed stored runs.
        let text = canonical_text(&RunConfig::default(), None, 0);
        let named: Vec<&str> = text
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            .filter(|k| *k != "seed")
            .collect();
        assert_eq!(named, ALWAYS_HASHED);
    }

    #[test]
    fn run_id_is_pinned() {
        // Ids name finished runs on disk: changing them silently would orphan results.
        // Update this value only together with RESULTS_VERSION.
        assert_eq!(run_id(&RunConfig::default(), 0), fnv_hex_of_default());
    }

    fn fnv_hex_of_default() -> String {
        assert_eq!(
            RESULTS_VERSION, 7,
            "re-pin the id below for the new version"
        );
        // The key lines are version 1's: keys added since stay out of a default config's id.
        let text = "vqsim-run-v7\n\
            data.modes=10\ndata.points_per_mode=1000\ndata.dim=2\ndata.mean_range=10\ndata.std=0.5\n\
            data.weight_ratio=1\ndata.std_ratio=1\ndata.holdout=0\n\
            model.latent_dim=2\nmodel.width=64\nmodel.depth=2\nmodel.activation=relu\n\
            quantizer.codebook_size=64\nquantizer.update=loss\nquantizer.beta=0.25\n\
            quantizer.ema_decay=0.99\nquantizer.init=kmeans\nquantizer.init_std=1\n\
            train.lr=0.001\ntrain.batch_size=256\ntrain.epochs=30\n\
            schedule.kind=early\nschedule.continuous_epochs=30\nseed=0\n";
        format!("{:016x}", fnv1a(text.as_bytes()))
    }
}

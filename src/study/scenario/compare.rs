//! The `[compare]` section: the arm every other arm of the sweep is compared with.
//!
//! ```toml
//! [compare]
//! baseline = { "schedule.kind" = "early" }
//! ```
//!
//! Each baseline key must be a sweep axis and its value one of that axis's values. The keys
//! named by the baseline are the ones that tell arms apart; the other axes are configurations
//! in which every arm is compared with the baseline (`report::summary`).

use super::error::{closest, ScenarioError};
use super::expand::collect_leaves;
use super::{Axis, ARMS};
use crate::sim::config::key::{check_value, describe, ValueError};
use crate::sim::config::RunConfig;

/// Keys of the `[compare]` table.
const KEYS: [&str; 1] = ["baseline"];

/// A declared baseline: swept keys and their baseline values, in the order of the axes.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    pub values: Vec<(String, toml::Value)>,
}

impl Baseline {
    /// (key, value) with values as text, as in the parameter columns of runs.csv.
    pub fn texts(&self) -> Vec<(String, String)> {
        self.values
            .iter()
            .map(|(k, v)| (k.clone(), value_text(v)))
            .collect()
    }

    /// The `baseline = { … }` line of a resolved scenario.
    pub fn to_toml_line(&self) -> String {
        let pairs: Vec<String> = self
            .values
            .iter()
            .map(|(k, v)| format!("{} = {v}", toml::Value::String(k.clone())))
            .collect();
        format!("baseline = {{ {} }}", pairs.join(", "))
    }
}

/// A normalised sweep value as runs.csv writes it (`FieldValue`'s text).
fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(x) => x.to_string(),
        other => other.to_string(),
    }
}

/// Parses and checks the `[compare]` table against the scenario's sweep axes.
pub(super) fn parse(
    file: &str,
    compare: &toml::Value,
    axes: &[Axis],
    base: &RunConfig,
) -> Result<Baseline, ScenarioError> {
    let toml::Value::Table(table) = compare else {
        return Err(ScenarioError::WrongType {
            file: file.into(),
            key: "compare".into(),
            expected: "a table (a [compare] section)".into(),
            found: describe(compare),
        });
    };
    for key in table.keys() {
        if !KEYS.contains(&key.as_str()) {
            return Err(ScenarioError::UnknownKey {
                file: file.into(),
                key: format!("compare.{key}"),
                accepts: format!("[compare] accepts {}", KEYS.join(", ")),
                suggestion: closest(key, KEYS).map(String::from),
            });
        }
    }
    let expected = "a non-empty table of sweep axes and their baseline values, such as \
                    `{ \"schedule.kind\" = \"early\" }`";
    let wrong_type = |found: String| ScenarioError::WrongType {
        file: file.into(),
        key: "compare.baseline".into(),
        expected: expected.into(),
        found,
    };
    let Some(raw) = table.get("baseline") else {
        return Err(wrong_type("nothing".into()));
    };
    let toml::Value::Table(pairs) = raw else {
        return Err(wrong_type(describe(raw)));
    };
    let mut leaves = Vec::new();
    collect_leaves("", pairs, &mut leaves);
    if leaves.is_empty() {
        return Err(wrong_type("an empty table".into()));
    }
    let swept: Vec<String> = axes.iter().flat_map(Axis::keys).collect();
    let mut values: Vec<(usize, String, toml::Value)> = Vec::new();
    for (key, value) in leaves {
        let place = format!("compare.baseline.\"{key}\"");
        let Some(position) = axes.iter().position(|a| a.sets(&key)) else {
            return Err(ScenarioError::BaselineNotSwept {
                file: file.into(),
                key: place,
                axes: if swept.is_empty() {
                    "this scenario has no [sweep]".into()
                } else {
                    format!("this scenario sweeps {}", swept.join(", "))
                },
                suggestion: closest(&key, swept.iter().map(String::as_str)).map(String::from),
            });
        };
        let axis = &axes[position];
        let rule = crate::sim::valid::rule_of(&key).unwrap_or_else(|| {
            unreachable!("sweep axis `{key}` passed validation, so it has a rule")
        });
        let v = check_value(&rule, value).map_err(|e| match e {
            ValueError::Type { expected, found } => ScenarioError::WrongType {
                file: file.into(),
                key: place.clone(),
                expected: expected.into(),
                found,
            },
            ValueError::Range { value, allowed } => ScenarioError::OutOfRange {
                file: file.into(),
                key: place.clone(),
                value,
                allowed,
                context: String::new(),
            },
        })?;
        let taken = axis.values_of(&key, base);
        if !taken.contains(&v) {
            let listed: Vec<String> = taken.iter().map(|x| x.to_string()).collect();
            return Err(ScenarioError::BaselineNotInSweep {
                file: file.into(),
                key: place,
                value: v.to_string(),
                allowed: listed.join(", "),
            });
        }
        values.push((position, key, v));
    }
    values.sort_by_key(|(position, _, _)| *position);
    Ok(Baseline {
        values: values.into_iter().map(|(_, k, v)| (k, v)).collect(),
    })
}

/// The default baseline of a scenario with an `arms` axis and no `[compare]`: the first arm,
/// as the values it gives every key any arm sets.
pub(super) fn first_arm(axes: &[Axis], base: &RunConfig) -> Option<Baseline> {
    let arms = axes.iter().find(|a| a.key == ARMS)?;
    let values = arms
        .keys()
        .into_iter()
        .filter_map(|k| Some((k.clone(), arms.values_of(&k, base).into_iter().next()?)))
        .collect();
    Some(Baseline { values })
}

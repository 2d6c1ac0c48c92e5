//! A configuration key: its value, what it accepts and how it is named and documented. The
//! key table (`crate::sim::valid`) lists every key; a remedy declares its own keys as `Key`s.

use std::borrow::Cow;
use std::fmt;

use crate::sim::config::RunConfig;

/// Above this many points the data set alone (and every full-data metric) becomes absurd.
pub const MAX_TOTAL_POINTS: u64 = 10_000_000;
/// Largest float accepted anywhere: far below f32::MAX, so squares and sums stay finite in f32.
pub const MAX_FLOAT: f64 = 1e6;

/// One configuration key: its dotted name, its value in some config, what is allowed, and how
/// it is named in figures and documented. The key table (`crate::sim::valid::fields`) is the
/// registry every other description of the keys (validation messages, key docs, resolved
/// scenarios, plot labels, run ids) is derived from.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub key: &'static str,
    pub value: FieldValue,
    pub rule: Rule,
    /// Short name for figure titles and legends ("S", "σ", "width").
    pub label: &'static str,
    /// One line: what the key means, with the method's reference where it has one (a
    /// family's choice key composes it from its remedies' docs).
    pub doc: Cow<'static, str>,
}

/// A key as a remedy declares it: everything a `Field` has but the value, which comes from a
/// configuration's `quantizer` section (`Params`), or is `default`.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The dotted key, "quantizer.lru_timeout".
    pub key: &'static str,
    pub default: FieldValue,
    pub rule: Rule,
    pub label: &'static str,
    pub doc: &'static str,
}

impl Key {
    /// An integer key in `min..=max`.
    pub const fn int(
        key: &'static str,
        default: u64,
        (min, max): (u64, u64),
        label: &'static str,
        doc: &'static str,
    ) -> Key {
        Key {
            key,
            default: FieldValue::Int(default),
            rule: Rule::Int {
                min,
                max,
                cap: Cap::None,
            },
            label,
            doc,
        }
    }

    /// A float key between `lo` and `hi`, each (value, `INCL` or `EXCL`).
    pub const fn float(
        key: &'static str,
        default: f64,
        (lo, hi): ((f64, bool), (f64, bool)),
        label: &'static str,
        doc: &'static str,
    ) -> Key {
        Key {
            key,
            default: FieldValue::Float(default),
            rule: Rule::float(lo, hi),
            label,
            doc,
        }
    }

    /// An integer-list key whose default is the empty list.
    pub const fn ints(key: &'static str, min: u64, label: &'static str, doc: &'static str) -> Key {
        Key {
            key,
            default: FieldValue::Ints(Vec::new()),
            rule: Rule::Ints { min },
            label,
            doc,
        }
    }

    /// The key's name within its section ("lru_timeout").
    pub fn name(&self) -> &'static str {
        self.key.split_once('.').map_or(self.key, |(_, k)| k)
    }

    /// This key with `value`.
    pub fn field(&self, value: FieldValue) -> Field {
        Field {
            key: self.key,
            value,
            rule: self.rule.clone(),
            label: self.label,
            doc: Cow::Borrowed(self.doc),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Int(u64),
    Float(f64),
    Word(String),
    Bool(bool),
    /// A list of integers (`fsq_levels = [8, 5, 5, 5]`).
    Ints(Vec<u64>),
}

/// What a key accepts.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// An integer in `min..=max`, further capped by `cap` (which depends on other keys).
    Int { min: u64, max: u64, cap: Cap },
    /// A float between two bounds; the bounds are finite, so NaN and ±inf always fail.
    Float { lo: Bound, hi: Bound },
    /// One of these words (the serde names of an enum).
    Choice(&'static [&'static str]),
    /// Any string; the phrase says what it names ("a file path …").
    Text(&'static str),
    /// true or false.
    Bool,
    /// A list of integers, each at least `min`; empty is allowed.
    Ints { min: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    pub value: f64,
    pub inclusive: bool,
}

/// Cross-key limits on an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    None,
    /// k-means needs at least as many points as codes: codebook_size ≤ modes · points_per_mode.
    DataPoints,
    /// modes · points_per_mode ≤ MAX_TOTAL_POINTS.
    TotalPoints,
    /// A lookup space no wider than the latent space: code_dim ≤ model.latent_dim.
    LatentDim,
}

/// A value outside its allowed range, before the file and sweep context are known.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeError {
    pub key: String,
    pub value: String,
    pub allowed: String,
}

/// Bound inclusivity, for readable `(value, INCL)` pairs.
pub const INCL: bool = true;
pub const EXCL: bool = false;

/// What the cross-key caps of a configuration depend on.
#[derive(Debug, Clone, Copy)]
pub struct Limits<'a> {
    pub cfg: &'a RunConfig,
    /// Number of data points (a data file's rows), saturating rather than overflowing on
    /// absurd inputs.
    pub points: u64,
}

impl Rule {
    /// A float rule between `lo` and `hi`, each (value, `INCL` or `EXCL`).
    pub const fn float(lo: (f64, bool), hi: (f64, bool)) -> Rule {
        Rule::Float {
            lo: Bound {
                value: lo.0,
                inclusive: lo.1,
            },
            hi: Bound {
                value: hi.0,
                inclusive: hi.1,
            },
        }
    }

    /// The largest integer allowed, given the other keys when known.
    pub(crate) fn int_max(&self, limits: Option<Limits>) -> u64 {
        let Rule::Int { max, cap, .. } = *self else {
            return u64::MAX;
        };
        match (cap, limits) {
            (Cap::DataPoints, Some(l)) => max.min(l.points),
            (Cap::TotalPoints, Some(l)) => {
                max.min(MAX_TOTAL_POINTS / (l.cfg.data.modes.max(1) as u64))
            }
            (Cap::LatentDim, Some(l)) => max.min(l.cfg.model.latent_dim as u64),
            _ => max,
        }
    }

    /// What is allowed, as a phrase completing "allowed: …"; `limits` supplies cross-key caps.
    pub fn allowed(&self, limits: Option<Limits>) -> String {
        match self {
            Rule::Int { min, max, cap } => {
                let head = format!("an integer ≥ {min}");
                match (cap, limits) {
                    (Cap::DataPoints, Some(l)) if l.points < *max => format!(
                        "{head} and ≤ the number of data points ({}, data.modes × data.points_per_mode)",
                        l.points
                    ),
                    (Cap::DataPoints, None) => {
                        format!("{head} and ≤ {max} and ≤ the number of data points")
                    }
                    (Cap::LatentDim, Some(l)) => format!(
                        "{head} and ≤ model.latent_dim ({})",
                        self.int_max(Some(l))
                    ),
                    (Cap::LatentDim, None) => format!("{head} and ≤ model.latent_dim"),
                    (Cap::TotalPoints, _) => format!(
                        "{head} and ≤ {} (data.modes × data.points_per_mode may not exceed {MAX_TOTAL_POINTS})",
                        self.int_max(limits)
                    ),
                    _ => format!("{head} and ≤ {max}"),
                }
            }
            Rule::Float { lo, hi } => format!(
                "a float {} {} and {} {}",
                if lo.inclusive { "≥" } else { ">" },
                lo.value,
                if hi.inclusive { "≤" } else { "<" },
                hi.value
            ),
            Rule::Choice(words) => {
                let quoted: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
                format!("one of {}", quoted.join(", "))
            }
            Rule::Text(what) => what.to_string(),
            Rule::Bool => "true or false".into(),
            Rule::Ints { min } => format!("a list of integers, each ≥ {min}"),
        }
    }

    /// What TOML type the key takes, as a phrase completing "must be …".
    pub fn expected_type(&self) -> &'static str {
        match self {
            Rule::Int { .. } => "an integer",
            Rule::Float { .. } => "a float",
            Rule::Choice(_) | Rule::Text(_) => "a string",
            Rule::Bool => "true or false",
            Rule::Ints { .. } => "a list of integers",
        }
    }
}

impl Bound {
    pub(crate) fn admits_above(&self, x: f64) -> bool {
        if self.inclusive {
            x >= self.value
        } else {
            x > self.value
        }
    }
    pub(crate) fn admits_below(&self, x: f64) -> bool {
        if self.inclusive {
            x <= self.value
        } else {
            x < self.value
        }
    }
}

impl fmt::Display for FieldValue {
    /// Plain text, as in the parameter columns of runs.csv.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Int(i) => write!(f, "{i}"),
            FieldValue::Float(x) => write!(f, "{x}"),
            FieldValue::Word(w) => f.write_str(w),
            FieldValue::Bool(b) => write!(f, "{b}"),
            FieldValue::Ints(v) => write!(f, "{v:?}"),
        }
    }
}

impl FieldValue {
    /// The value as a TOML literal (strings quoted, floats with a decimal point).
    pub fn to_toml(&self) -> toml::Value {
        match self {
            // Integers above i64::MAX cannot come from a file and fail validation anyway.
            FieldValue::Int(i) => toml::Value::Integer(i64::try_from(*i).unwrap_or(i64::MAX)),
            FieldValue::Float(x) => toml::Value::Float(*x),
            FieldValue::Word(w) => toml::Value::String(w.clone()),
            FieldValue::Bool(b) => toml::Value::Boolean(*b),
            FieldValue::Ints(v) => {
                toml::Value::Array(v.iter().map(|&i| FieldValue::Int(i).to_toml()).collect())
            }
        }
    }
}

/// Why a raw TOML value does not fit a key's rule.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueError {
    /// Wrong TOML type: "must be {expected}, found {found}".
    Type {
        expected: &'static str,
        found: String,
    },
    /// Right type, outside the range that can be judged without the other keys.
    Range { value: String, allowed: String },
}

/// Checks a raw TOML value against `rule` and returns it normalised: an integer given for a
/// float key becomes that float (`lr = 1` means 1.0). Cross-key caps are left to `validate`.
pub fn check_value(rule: &Rule, value: &toml::Value) -> Result<toml::Value, ValueError> {
    let type_error = || ValueError::Type {
        expected: rule.expected_type(),
        found: describe(value),
    };
    match (rule, value) {
        (Rule::Int { min, max, cap }, toml::Value::Integer(i)) => {
            // A capped key's bound depends on other keys: leave all but the sign to `validate`,
            // whose message can then state the actual bound.
            let (min, max) = match cap {
                Cap::None => (*min, *max),
                _ => (0, u64::MAX),
            };
            if *i < 0 || (*i as u64) < min || (*i as u64) > max {
                return Err(ValueError::Range {
                    value: i.to_string(),
                    allowed: rule.allowed(None),
                });
            }
            Ok(value.clone())
        }
        (Rule::Float { .. }, toml::Value::Integer(i)) => Ok(toml::Value::Float(*i as f64)),
        (Rule::Float { .. }, toml::Value::Float(_)) => Ok(value.clone()),
        (Rule::Choice(words), toml::Value::String(s)) => {
            if words.contains(&s.as_str()) {
                Ok(value.clone())
            } else {
                Err(ValueError::Range {
                    value: value.to_string(),
                    allowed: rule.allowed(None),
                })
            }
        }
        (Rule::Text(_), toml::Value::String(_)) | (Rule::Bool, toml::Value::Boolean(_)) => {
            Ok(value.clone())
        }
        (Rule::Ints { min }, toml::Value::Array(items)) => {
            if items.iter().any(|v| !v.is_integer()) {
                return Err(type_error());
            }
            if items
                .iter()
                .any(|v| v.as_integer().is_some_and(|i| i < *min as i64))
            {
                return Err(ValueError::Range {
                    value: value.to_string(),
                    allowed: rule.allowed(None),
                });
            }
            Ok(value.clone())
        }
        _ => Err(type_error()),
    }
}

/// A short description of a TOML value for error messages: its type and (abridged) text.
pub fn describe(value: &toml::Value) -> String {
    let kind = match value {
        toml::Value::String(_) => "string",
        toml::Value::Integer(_) => "integer",
        toml::Value::Float(_) => "float",
        toml::Value::Boolean(_) => "boolean",
        // Display of a datetime Value shows toml's private wrapper table; show the date itself.
        toml::Value::Datetime(d) => return format!("datetime {d}"),
        toml::Value::Array(a) if a.is_empty() => return "an empty array".to_string(),
        toml::Value::Array(_) => "array",
        toml::Value::Table(_) => return "a table".to_string(),
    };
    format!("{kind} {}", abridge(&value.to_string(), 60))
}

/// `text` cut to at most `max` characters, marking the cut.
fn abridge(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let head: String = text.chars().take(max).collect();
        format!("{head}…")
    }
}

/// The serde name of a unit enum variant of the configuration.
pub fn word<T: serde::Serialize>(value: &T) -> String {
    match toml::Value::try_from(value) {
        Ok(toml::Value::String(s)) => s,
        // Only unit variants of the config enums reach here; they always serialize to a string.
        other => unreachable!("config enum serialized as {other:?}"),
    }
}

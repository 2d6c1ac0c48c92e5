//! The successful runs of a results directory, and the vocabulary figures use to describe them:
//! arms (schedule / init), groups (one figure each) and the fixed parameters of a figure.

use std::path::{Path, PathBuf};

use crate::report::table::{Table, TableError};
use crate::sim::config::RunConfig;
use crate::study::scenario::is_default;

/// Parameter columns of runs.csv, in file order: every scenario key.
pub fn params() -> Vec<&'static str> {
    crate::study::scenario::fields(&RunConfig::default())
        .into_iter()
        .map(|f| f.key)
        .collect()
}

/// Parameters whose values are the compared treatments (one line or row each), unless the
/// scenario declares a baseline: then its keys are.
pub const ARM_PARAMS: [&str; 2] = ["schedule.kind", "quantizer.init"];

/// Parameters named in every subtitle when fixed; the others only when a sweep varies them.
const ALWAYS_SHOWN: [&str; 11] = [
    "data.modes",
    "data.dim",
    "model.latent_dim",
    "quantizer.codebook_size",
    "model.depth",
    "model.width",
    "model.activation",
    "quantizer.init",
    "quantizer.update",
    "train.epochs",
    "schedule.continuous_epochs",
];

/// The `ok` rows of runs.csv with what varies among them.
#[derive(Debug, Clone)]
pub struct Runs {
    pub dir: PathBuf,
    /// Name of the results directory (the scenario).
    pub scenario: String,
    /// runs.csv restricted to rows with status `ok`.
    pub table: Table,
    /// Parameters taking more than one value among the ok runs.
    pub varying: Vec<&'static str>,
    /// Arm labels, the declared baseline first, else early before deferred; the index is the
    /// arm's colour.
    pub arms: Vec<String>,
    /// The parameters that tell arms apart: the declared baseline's keys, else `ARM_PARAMS`.
    pub arm_params: Vec<&'static str>,
}

/// Runs that share every varying parameter except a figure's own axes.
#[derive(Debug, Clone)]
pub struct Group {
    pub values: Vec<(&'static str, String)>,
    pub rows: Vec<usize>,
}

impl Runs {
    /// The `ok` rows of runs table `all` of results directory `dir` (named `name`), with
    /// arms told apart by the `declared` baseline's keys (None: `ARM_PARAMS`).
    pub fn new(
        dir: &Path,
        name: &str,
        all: &Table,
        declared: Option<&[(String, String)]>,
    ) -> Result<Runs, TableError> {
        let mut table = all.clone();
        let status = table.column("status")?;
        let params = params();
        for p in params.iter().chain(&["run_id", "seed"]) {
            table.column(p)?;
        }
        table.rows.retain(|r| r[status] == "ok");
        let varying = table.varying(&params);
        let arm_params: Vec<&'static str> = match declared {
            Some(b) => b
                .iter()
                .filter_map(|(k, _)| params.iter().copied().find(|p| p == k))
                .collect(),
            None => ARM_PARAMS.to_vec(),
        };
        let mut runs = Runs {
            dir: dir.to_path_buf(),
            scenario: name.to_string(),
            table,
            varying,
            arms: Vec::new(),
            arm_params,
        };
        // The row of the declared baseline arm, if it ran.
        let baseline = declared
            .and_then(|b| (0..runs.len()).find(|&r| b.iter().all(|(k, v)| runs.text(r, k) == v)));
        let baseline = baseline.map(|r| runs.arm(r));
        let mut arms: Vec<String> = (0..runs.len()).map(|r| runs.arm(r)).collect();
        arms.sort_by_key(|a| (baseline.as_ref() != Some(a), schedule_rank(a), a.clone()));
        arms.dedup();
        runs.arms = arms;
        Ok(runs)
    }

    pub fn len(&self) -> usize {
        self.table.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.rows.is_empty()
    }

    pub fn varies(&self, key: &str) -> bool {
        self.varying.contains(&key)
    }

    /// Text of `key` in `row` (columns were checked at load).
    pub fn text(&self, row: usize, key: &str) -> &str {
        self.table.get(row, key).unwrap_or("")
    }

    pub fn num(&self, row: usize, key: &str) -> f64 {
        self.table.num(row, key).unwrap_or(f64::NAN)
    }

    /// Distinct values of `key`, numerically sorted when they are numbers.
    pub fn distinct(&self, key: &str) -> Vec<String> {
        let mut v: Vec<String> = (0..self.len())
            .map(|r| self.text(r, key).to_string())
            .collect();
        sort_values(&mut v);
        v
    }

    /// The arm parameters that vary (the others are fixed and go in the subtitle).
    pub fn arm_keys(&self) -> Vec<&'static str> {
        self.arm_params
            .iter()
            .copied()
            .filter(|k| self.varies(k))
            .collect()
    }

    /// Label of the arm `row` belongs to, e.g. "early" or "deferred, init kmeans".
    ///
    /// When more than two arm parameters vary (a method list such as the zoo's), a parameter
    /// at its default is left out, so that each label names only its own remedy.
    pub fn arm(&self, row: usize) -> String {
        let keys = self.arm_keys();
        if keys.is_empty() {
            return self.text(row, "schedule.kind").to_string();
        }
        let terse = keys.len() > 2;
        keys.iter()
            .map(|&k| (k, self.text(row, k)))
            .filter(|&(k, v)| !(terse && k != "schedule.kind" && is_default(k, v)))
            .map(|(k, v)| match k {
                "schedule.kind" => v.to_string(),
                _ => show(k, v),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Colour index of the arm of `row`.
    pub fn arm_index(&self, row: usize) -> usize {
        let a = self.arm(row);
        self.arms.iter().position(|x| *x == a).unwrap_or(0)
    }

    /// Rows split by every varying parameter outside `axes`, the arm parameters and the seed.
    pub fn groups(&self, axes: &[&str]) -> Vec<Group> {
        let keys: Vec<&'static str> = self
            .varying
            .iter()
            .copied()
            .filter(|k| !axes.contains(k) && !self.arm_params.contains(k))
            .collect();
        let mut groups: Vec<Group> = self
            .table
            .group_by(&keys)
            .unwrap_or_default()
            .into_iter()
            .map(|(vals, rows)| Group {
                values: keys.iter().copied().zip(vals).collect(),
                rows,
            })
            .collect();
        // Numeric order of the group values, so files come out as d2, d8, d16.
        groups.sort_by(|a, b| {
            let key = |g: &Group| -> Vec<f64> {
                g.values
                    .iter()
                    .map(|(_, v)| v.parse().unwrap_or(f64::NAN))
                    .collect()
            };
            key(a)
                .iter()
                .zip(key(b).iter())
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        groups
    }

    /// The parameters fixed across `rows`, except the figure's `axes` and the arms.
    pub fn subtitle(&self, rows: &[usize], axes: &[&str]) -> String {
        let deferred = rows
            .iter()
            .any(|&r| self.text(r, "schedule.kind") == "deferred");
        let init = |v: &str| rows.iter().any(|&r| self.text(r, "quantizer.init") == v);
        let ema = rows
            .iter()
            .any(|&r| self.text(r, "quantizer.update") == "ema");
        params()
            .into_iter()
            .filter(|k| !axes.contains(k) && !self.arm_keys().contains(k))
            .filter(|k| ALWAYS_SHOWN.contains(k) || self.varies(k) || k.ends_with("_ratio"))
            .filter(|&k| match k {
                // Mixture shape ratios only when the mixture is not the plain one.
                "data.weight_ratio" | "data.std_ratio" => {
                    rows.iter().any(|&r| self.num(r, k) != 1.0)
                }
                "schedule.continuous_epochs" => deferred,
                "quantizer.init_std" => init("normal"),
                "quantizer.ema_decay" => ema,
                _ => true,
            })
            .filter(|k| {
                rows.iter()
                    .all(|&r| self.text(r, k) == self.text(rows[0], k))
            })
            .map(|k| show(k, self.text(rows[0], k)))
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

impl Group {
    /// File-name suffix, e.g. "_d8_S64"; empty for the only group.
    pub fn slug(&self) -> String {
        let values: Vec<(&str, &str)> = self.values.iter().map(|(k, v)| (*k, v.as_str())).collect();
        slug(&values)
    }

    /// Human description, e.g. "d=8, S=64".
    pub fn describe(&self) -> String {
        self.values
            .iter()
            .map(|(k, v)| show(k, v))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// File-name suffix of a figure for parameter values, e.g. "_d8_S64"; empty for none.
pub fn slug(values: &[(&str, &str)]) -> String {
    values
        .iter()
        .map(|(k, v)| {
            let s: String = format!("{}{}", short(k), v)
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            format!("_{s}")
        })
        .collect()
}

/// At most `k` of `items`, evenly spread and always including the first and the last, so a
/// capped set of per-configuration figures still spans the sweep (e.g. the smallest and the
/// largest codebook) instead of stopping at its first few configurations.
pub fn spread<T: Clone>(items: &[T], k: usize) -> Vec<T> {
    let n = items.len();
    if n <= k {
        return items.to_vec();
    }
    if k <= 1 {
        return items.iter().take(k).cloned().collect();
    }
    (0..k)
        .map(|i| items[(i * (n - 1) + (k - 1) / 2) / (k - 1)].clone())
        .collect()
}

/// Sorts numerically when every value is a number, else lexically.
pub fn sort_values(v: &mut Vec<String>) {
    if v.iter().all(|s| s.parse::<f64>().is_ok()) {
        v.sort_by(|a, b| {
            a.parse::<f64>()
                .unwrap()
                .total_cmp(&b.parse::<f64>().unwrap())
        });
    } else {
        v.sort();
    }
    v.dedup();
}

fn schedule_rank(arm: &str) -> u8 {
    if arm.starts_with("early") {
        0
    } else if arm.starts_with("deferred") {
        1
    } else {
        2
    }
}

/// Short name of a parameter for titles and file names: its label in the key registry.
pub fn short(key: &str) -> &str {
    crate::study::scenario::label(key)
}

/// "K=10", "depth 2", "relu": symbols with "=", words with a space.
pub fn show(key: &str, value: &str) -> String {
    match key {
        "model.activation" => value.to_string(),
        "data.points_per_mode" => format!("{value} pts/mode"),
        "train.epochs" => format!("{value} epochs"),
        "schedule.continuous_epochs" => format!("+{value} continuous epochs (deferred)"),
        "data.weight_ratio" => format!("weights {value}:1"),
        "data.std_ratio" => format!("σ ratio {value}"),
        _ => {
            let s = short(key);
            if s.chars().count() <= 2 {
                format!("{s}={value}")
            } else {
                format!("{s} {value}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn spread_keeps_both_ends_and_spaces_the_rest_evenly() {
        let v: Vec<u32> = (0..8).collect();
        assert_eq!(spread(&v, 4), vec![0, 2, 5, 7]);
        assert_eq!(spread(&v, 8), v);
        assert_eq!(spread(&v[..3], 6), vec![0, 1, 2]);
        assert_eq!(spread(&(0..70).collect::<Vec<u32>>(), 2), vec![0, 69]);
    }
}

//! What can be wrong with a scenario file, each as one line naming the file, the key, the value
//! and what is allowed.

/// A scenario that cannot be run. `file` is the path as the user gave it (or `<input>`).
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}: cannot read the scenario file: {io}")]
    Read { file: String, io: std::io::Error },

    /// Followed by the offending line and a caret under the column, as the toml crate
    /// shows them.
    #[error("{file}:{line}:{column}: invalid TOML{}: {message}\n{snippet}", key.as_ref().map_or(String::new(), |k| format!(" at `{k}`")))]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        /// The dotted key (or table header) on the offending line, when it has one.
        key: Option<String>,
        message: String,
        snippet: String,
    },

    #[error("{file}: unknown key `{key}`; {accepts}{}", did_you_mean(suggestion))]
    UnknownKey {
        file: String,
        key: String,
        /// Which keys the enclosing table accepts, e.g. "[model] accepts latent_dim, width".
        accepts: String,
        suggestion: Option<String>,
    },

    #[error("{file}: `{key}` must be {expected}, found {found}")]
    WrongType {
        file: String,
        key: String,
        expected: String,
        found: String,
    },

    #[error("{file}: `{key}` = {value} is out of range{context}; allowed: {allowed}")]
    OutOfRange {
        file: String,
        key: String,
        value: String,
        allowed: String,
        /// Empty, or " in the sweep run with …" naming the combination that broke the rule.
        context: String,
    },

    #[error(
        "{file}: {} `{name}` cannot be used as a directory name; allowed: 1 to {} letters, digits, `_`, `.` and `-`, not starting with `.`{}",
        if *from_file_name { "the scenario name taken from the file name," } else { "`name` =" },
        super::MAX_NAME_LEN,
        if *from_file_name { " (set `name = \"...\"` in the file)" } else { "" }
    )]
    InvalidName {
        file: String,
        name: String,
        from_file_name: bool,
    },

    #[error("{file}: both `seeds` and `replicates` are given; keep one (`replicates = N` means seeds 0..N-1)")]
    SeedsAndReplicates { file: String },

    #[error("{file}: `seeds` lists {seed} twice (at indices {first} and {second}); seeds must be unique")]
    DuplicateSeed {
        file: String,
        seed: u64,
        first: usize,
        second: usize,
    },

    #[error(
        "{file}: unknown sweep axis `sweep.\"{axis}\"`; {accepts}{}",
        did_you_mean(suggestion)
    )]
    UnknownAxis {
        file: String,
        axis: String,
        accepts: String,
        suggestion: Option<String>,
    },

    #[error("{file}: `sweep.\"{axis}\"` sweeps a top-level key; only section keys such as `model.width` can be swept{}", top_level_hint(axis))]
    TopLevelAxis { file: String, axis: String },

    #[error("{file}: `sweep.\"{axis}\"` must be a non-empty array of values, found {found}")]
    AxisNotArray {
        file: String,
        axis: String,
        found: String,
    },

    #[error("{file}: sweep axis `{axis}` is given twice (once as a quoted dotted key, once as a nested table); keep one")]
    DuplicateAxis { file: String, axis: String },

    #[error("{file}: `{axis}` is both a sweep axis and set by `sweep.arms`; a run can take only one value of it, so keep one")]
    AxisAlsoInArms { file: String, axis: String },

    #[error("{file}: `sweep.\"{axis}\"` lists {value} twice (at indices {first} and {second}); sweep values must be distinct")]
    DuplicateAxisValue {
        file: String,
        axis: String,
        value: String,
        first: usize,
        second: usize,
    },

    #[error(
        "{file}: `{key}` is not a sweep axis; the baseline picks one value of each of some swept keys ({axes}){}",
        did_you_mean(suggestion)
    )]
    BaselineNotSwept {
        file: String,
        key: String,
        axes: String,
        suggestion: Option<String>,
    },

    #[error(
        "{file}: `{key}` = {value} is not a value of that sweep axis; allowed: one of {allowed}"
    )]
    BaselineNotInSweep {
        file: String,
        key: String,
        value: String,
        allowed: String,
    },

    #[error("{file}: the sweep expands to {runs} runs; allowed: at most {max} (split the scenario or shorten its axes)")]
    TooManyRuns {
        file: String,
        runs: String,
        max: usize,
    },

    #[error("{file}: `data.path` reads the data from a file, so {keys} cannot be given (the file gives the dimension, the classes and the points); remove them")]
    MixtureKeysWithDataFile { file: String, keys: String },

    #[error("{file}: `{key}` describes a data file, but `data.path` is not set; set it or remove `{key}`")]
    NeedsDataPath { file: String, key: String },

    #[error("{file}: `{axis}` cannot be swept: a sweep reads one data file, once (write one scenario per file)")]
    DataFileSwept { file: String, axis: String },

    #[error("{file}: `{key}`: {error}{}", array_hint(error))]
    DataFile {
        file: String,
        key: String,
        error: Box<crate::arrays::ArrayError>,
    },

    /// A value passed the key-by-key checks but the config still failed to deserialize; this
    /// should not happen, but must not panic either.
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}

/// The array readers speak of `FILE:NAME` (the command line's syntax); a scenario names the
/// array with `data.array`.
fn array_hint(error: &crate::arrays::ArrayError) -> &'static str {
    use crate::arrays::Problem;
    match error.problem {
        Problem::Ambiguous { .. } => " (in a scenario: `data.array = \"NAME\"`)",
        Problem::NameOnPlainFile(_) => " (in a scenario: remove `data.array`)",
        _ => "",
    }
}

fn top_level_hint(axis: &str) -> &'static str {
    match axis {
        "seeds" | "replicates" => {
            " (seeds are already crossed with every sweep run: list them in `seeds = [...]`)"
        }
        "name" => " (write one scenario file per name)",
        _ => "",
    }
}

/// The candidate closest to `word`, if it is close enough to be a plausible typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_lowercase();
    // Allow about one edit per three characters, at least one.
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and transpositions
/// of neighbours each cost 1, so `widht` is one edit from `width`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j] = distance between a[..i] and b[..j]
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposition_is_one_edit() {
        assert_eq!(edit_distance("widht", "width"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn closest_suggests_typos_only() {
        let keys = ["latent_dim", "width", "depth", "activation"];
        assert_eq!(closest("widht", keys), Some("width"));
        assert_eq!(closest("Depth", keys), Some("depth"));
        assert_eq!(closest("activaton", keys), Some("activation"));
        assert_eq!(closest("banana", keys), None);
    }
}

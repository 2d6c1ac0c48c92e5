//! `--shard I/N`: which deterministic 1/N of a sweep's runs one process takes.
//!
//! Run `index` belongs to shard `(index mod N) + 1`, so shards interleave over the expansion
//! and each gets a similar mix of cheap and expensive configurations.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("malformed shard `{0}`: expected I/N with whole numbers, e.g. `--shard 2/8`")]
    Syntax(String),
    #[error("malformed shard `{0}`: the shard count N must be at least 1")]
    ZeroCount(String),
    #[error("malformed shard `{text}`: I must be between 1 and {count}")]
    OutOfRange { text: String, count: usize },
}

/// One shard of a sweep: `index` in 1..=`count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: usize,
    count: usize,
}

impl Shard {
    /// The whole sweep, `1/1`.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    pub fn new(index: usize, count: usize) -> Result<Shard, ShardError> {
        let text = format!("{index}/{count}");
        if count == 0 {
            return Err(ShardError::ZeroCount(text));
        }
        if index == 0 || index > count {
            return Err(ShardError::OutOfRange { text, count });
        }
        Ok(Shard { index, count })
    }

    /// 1-based shard number I.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Number of shards N.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Whether the run at position `run_index` of the expansion is this shard's.
    pub fn contains(&self, run_index: usize) -> bool {
        run_index % self.count + 1 == self.index
    }
}

impl Default for Shard {
    fn default() -> Self {
        Shard::ALL
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let syntax = || ShardError::Syntax(s.to_string());
        let (i, n) = s.trim().split_once('/').ok_or_else(syntax)?;
        let i: usize = i.trim().parse().map_err(|_| syntax())?;
        let n: usize = n.trim().parse().map_err(|_| syntax())?;
        Shard::new(i, n).map_err(|e| match e {
            // Report the user's spelling, not our normalised one.
            ShardError::ZeroCount(_) => ShardError::ZeroCount(s.to_string()),
            ShardError::OutOfRange { count, .. } => ShardError::OutOfRange {
                text: s.to_string(),
                count,
            },
            other => other,
        })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_shards() {
        assert_eq!("2/3".parse::<Shard>().unwrap(), Shard::new(2, 3).unwrap());
        assert_eq!("1/1".parse::<Shard>().unwrap(), Shard::ALL);
        assert_eq!(" 3 / 3 ".parse::<Shard>().unwrap().to_string(), "3/3");
    }

    #[test]
    fn index_zero_is_out_of_range() {
        assert!(matches!(
            "0/3".parse::<Shard>(),
            Err(ShardError::OutOfRange { count: 3, .. })
        ));
    }

    #[test]
    fn index_above_count_is_out_of_range() {
        assert!(matches!(
            "4/3".parse::<Shard>(),
            Err(ShardError::OutOfRange { count: 3, .. })
        ));
    }

    #[test]
    fn zero_count_is_rejected() {
        assert!(matches!(
            "1/0".parse::<Shard>(),
            Err(ShardError::ZeroCount(_))
        ));
    }

    #[test]
    fn non_numbers_are_syntax_errors() {
        for bad in ["a/b", "1", "1/2/3", "", "-1/2", "1.5/2"] {
            assert!(
                matches!(bad.parse::<Shard>(), Err(ShardError::Syntax(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn shards_partition_the_runs() {
        let shards: Vec<Shard> = (1..=3).map(|i| Shard::new(i, 3).unwrap()).collect();
        for run in 0..20 {
            assert_eq!(shards.iter().filter(|s| s.contains(run)).count(), 1);
        }
        assert!(shards[0].contains(0) && shards[1].contains(1) && shards[2].contains(5));
    }
}

//! A CSV table read back from disk (`runs.csv`, `history.csv`), addressed by column name.
//!
//! Figures and summaries work from the files a sweep wrote, not from memory, so that
//! `vqsim plot DIR` and `vqsim merge DIR` see exactly what a user sees.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: csv::Error },
    #[error("{path}: no column `{column}`")]
    MissingColumn { path: PathBuf, column: String },
}

/// Groups of rows: each group's key values and its row indices.
pub type Groups = Vec<(Vec<String>, Vec<usize>)>;

#[derive(Debug, Clone)]
pub struct Table {
    pub path: PathBuf,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn read(path: &Path) -> Result<Table, TableError> {
        let err = |source| TableError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut reader = csv::Reader::from_path(path).map_err(err)?;
        let headers = reader
            .headers()
            .map_err(err)?
            .iter()
            .map(String::from)
            .collect();
        let rows = reader
            .records()
            .map(|r| r.map(|r| r.iter().map(String::from).collect()))
            .collect::<Result<_, _>>()
            .map_err(err)?;
        Ok(Table {
            path: path.to_path_buf(),
            headers,
            rows,
        })
    }

    pub fn column(&self, name: &str) -> Result<usize, TableError> {
        self.headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| TableError::MissingColumn {
                path: self.path.clone(),
                column: name.to_string(),
            })
    }

    /// The text of column `name` in row `row`.
    pub fn get(&self, row: usize, name: &str) -> Result<&str, TableError> {
        Ok(&self.rows[row][self.column(name)?])
    }

    /// Column `name` of row `row` as a number; empty or unparsable cells are NaN.
    pub fn num(&self, row: usize, name: &str) -> Result<f64, TableError> {
        Ok(self.get(row, name)?.parse().unwrap_or(f64::NAN))
    }

    /// Rows grouped by their values in `keys`, groups in order of first appearance.
    pub fn group_by(&self, keys: &[&str]) -> Result<Groups, TableError> {
        let cols: Vec<usize> = keys
            .iter()
            .map(|k| self.column(k))
            .collect::<Result<_, _>>()?;
        let mut groups: Groups = Vec::new();
        let mut index: BTreeMap<Vec<String>, usize> = BTreeMap::new();
        for (i, row) in self.rows.iter().enumerate() {
            let key: Vec<String> = cols.iter().map(|&c| row[c].clone()).collect();
            let g = *index.entry(key.clone()).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(i);
        }
        Ok(groups)
    }

    /// Columns among `candidates` that take more than one value in this table.
    pub fn varying<'a>(&self, candidates: &[&'a str]) -> Vec<&'a str> {
        candidates
            .iter()
            .filter(|c| {
                self.column(c)
                    .is_ok_and(|i| self.rows.iter().any(|r| r[i] != self.rows[0][i]))
            })
            .copied()
            .collect()
    }
}

//! Numeric `.csv`: one row per point, an optional header (a first row that is not all
//! numbers), every row as long as the first.

use std::path::Path;

use ndarray::ArrayD;

use super::Problem;

/// The chosen columns as f32 (N, m): all of them, or with `name` the header's `name` or
/// `name0, name1, …` (in the order of their number).
pub(super) fn floats(path: &Path, name: Option<&str>) -> Result<ArrayD<f32>, Problem> {
    let table = Table::read(path)?;
    let cols = table.columns(name)?;
    let mut values = Vec::with_capacity(table.rows.len() * cols.len());
    for (r, row) in table.rows.iter().enumerate() {
        for &c in &cols {
            let cell = row[c].trim();
            let v: f64 = cell.parse().map_err(|_| Problem::Csv {
                line: table.line(r),
                message: format!("column {} is `{cell}`, not a number", c + 1),
            })?;
            values.push(v as f32);
        }
    }
    Ok(
        ArrayD::from_shape_vec(vec![table.rows.len(), cols.len()], values)
            .expect("one value per row and column"),
    )
}

/// One integer ≥ 0 per row, from the only column or the column `name`.
pub(super) fn labels(path: &Path, name: Option<&str>) -> Result<Vec<usize>, Problem> {
    let table = Table::read(path)?;
    let cols = table.columns(name)?;
    if cols.len() != 1 {
        return Err(Problem::Rank {
            shape: vec![table.rows.len(), cols.len()],
            expected: "one column of labels (name it as FILE:COLUMN)",
        });
    }
    table
        .rows
        .iter()
        .enumerate()
        .map(|(r, row)| {
            let cell = row[cols[0]].trim();
            cell.parse::<usize>().map_err(|_| Problem::Label {
                row: r,
                value: cell.to_string(),
            })
        })
        .collect()
}

struct Table {
    header: Option<Vec<String>>,
    rows: Vec<csv::StringRecord>,
}

impl Table {
    fn read(path: &Path) -> Result<Table, Problem> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(path)
            .map_err(csv_problem)?;
        let mut rows = Vec::new();
        for record in reader.records() {
            rows.push(record.map_err(csv_problem)?);
        }
        let header = match rows.first() {
            Some(first) if first.iter().any(|c| c.trim().parse::<f64>().is_err()) => {
                Some(first.iter().map(|c| c.trim().to_string()).collect())
            }
            _ => None,
        };
        if header.is_some() {
            rows.remove(0);
        }
        if rows.is_empty() {
            return Err(Problem::Empty(vec![0]));
        }
        Ok(Table { header, rows })
    }

    /// 1-based line of data row `r`.
    fn line(&self, r: usize) -> u64 {
        (r + 1 + usize::from(self.header.is_some())) as u64
    }

    fn columns(&self, name: Option<&str>) -> Result<Vec<usize>, Problem> {
        let width = self.rows[0].len();
        let Some(name) = name else {
            return Ok((0..width).collect());
        };
        let Some(header) = &self.header else {
            return Err(Problem::NoSuchArray {
                name: name.to_string(),
                available: "no header, so no column names".into(),
            });
        };
        if let Some(c) = header.iter().position(|h| h == name) {
            return Ok(vec![c]);
        }
        let mut numbered: Vec<(usize, usize)> = header
            .iter()
            .enumerate()
            .filter_map(|(c, h)| Some((h.strip_prefix(name)?.parse().ok()?, c)))
            .collect();
        numbered.sort_unstable();
        if numbered.is_empty() {
            return Err(Problem::NoSuchArray {
                name: format!("{name} (nor {name}0, {name}1, …)"),
                available: header.join(", "),
            });
        }
        Ok(numbered.into_iter().map(|(_, c)| c).collect())
    }
}

fn csv_problem(e: csv::Error) -> Problem {
    let line = e.position().map_or(0, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Problem::Io(io),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => Problem::Csv {
            line,
            message: format!(
                "{len} fields where the first row has {expected_len}; every row (header included) must have the same number"
            ),
        },
        other => Problem::Csv {
            line,
            message: format!("{other:?}"),
        },
    }
}

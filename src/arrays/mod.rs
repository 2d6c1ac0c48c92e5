//! Reading the user's own arrays: `.npy`, `.npz`, `.safetensors` and numeric `.csv`.
//!
//! Everything comes back as f32 in row-major order: a matrix (N, m) of vectors, or one
//! non-negative integer label per row. A bad file is a typed [`ArrayError`] naming the file
//! and what is wrong, never a panic: the readers check what a header claims against the bytes
//! that are there before allocating for it.
//!
//! A [`Source`] is a path with an optional array name, written `FILE:NAME` on the command line:
//! the array of an `.npz` (`snapshot.npz:z` picks a vqsim snapshot's embeddings), the tensor
//! of a `.safetensors`, or in a `.csv` the columns called `NAME0, NAME1, …` (or the one column
//! `NAME`).

mod csv;
mod npy;
mod safetensors;

use std::fmt;
use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayD, ArrayViewD, CowArray, Ix2, IxDyn};

/// Where an array lives: a file and, for containers, which array in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    pub path: PathBuf,
    pub name: Option<String>,
}

impl Source {
    pub fn new(path: impl Into<PathBuf>, name: Option<String>) -> Source {
        Source {
            path: path.into(),
            name,
        }
    }

    /// `FILE` or `FILE:NAME`. The split is at the last `:` after a known extension, so paths
    /// holding colons elsewhere stay whole.
    pub fn parse(spec: &str) -> Source {
        if let Some((file, name)) = spec.rsplit_once(':') {
            if Format::of(Path::new(file)).is_some() && !name.is_empty() {
                return Source::new(file, Some(name.to_string()));
            }
        }
        Source::new(spec, None)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{}:{name}", self.path.display()),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

/// A file that could not be read as the array asked for.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {problem}")]
pub struct ArrayError {
    /// The file (and array name) as the user wrote it.
    pub source_name: String,
    pub problem: Problem,
}

/// What is wrong with a file, one variant per rule.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("unknown file type; expected .npy, .npz, .safetensors or .csv")]
    Extension,
    #[error("not a valid {format} file: {message}")]
    Format {
        format: &'static str,
        message: String,
    },
    #[error("element type {found} is not allowed; expected {allowed}")]
    Dtype {
        found: String,
        allowed: &'static str,
    },
    #[error("shape {shape:?} is not allowed; expected {expected}")]
    Rank {
        shape: Vec<usize>,
        expected: &'static str,
    },
    #[error("holds no array named `{name}`; it holds: {available}")]
    NoSuchArray { name: String, available: String },
    #[error("holds {count} arrays ({available}); pick one as FILE:NAME")]
    Ambiguous { count: usize, available: String },
    #[error("a .npy file holds one array; drop `:{0}`")]
    NameOnPlainFile(String),
    #[error("has no rows (shape {0:?})")]
    Empty(Vec<usize>),
    #[error("value at row {row}, column {col} is {value} (NaN, infinite or beyond the f32 range); vqsim needs finite values")]
    NonFinite { row: usize, col: usize, value: f64 },
    #[error("has {found} columns but {other} has {expected}; both must have the same dimension")]
    Columns {
        found: usize,
        expected: usize,
        other: String,
    },
    #[error("line {line}: {message}")]
    Csv { line: u64, message: String },
    #[error("label at row {row} is {value}; labels must be integers ≥ 0")]
    Label { row: usize, value: String },
    #[error("holds {found} labels for {expected} rows")]
    LabelCount { found: usize, expected: usize },
}

/// Which shapes a matrix read accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Exactly (N, m): a data set, one row per point.
    Matrix,
    /// Any (…, m) with at least two axes, flattened to (N, m): encoder outputs of images or
    /// sequences, (batch, height, width, m) or (batch, tokens, m).
    Vectors,
}

/// The kinds of file read here, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Npy,
    Npz,
    Safetensors,
    Csv,
}

impl Format {
    fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "npy" => Some(Format::Npy),
            "npz" => Some(Format::Npz),
            "safetensors" => Some(Format::Safetensors),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

impl Problem {
    fn at(self, src: &Source) -> ArrayError {
        ArrayError {
            source_name: src.to_string(),
            problem: self,
        }
    }
}

/// A float array as (N, m) f32, checked finite and non-empty.
pub fn read_matrix(src: &Source, shape: Shape) -> Result<Array2<f32>, ArrayError> {
    read_floats(src)
        .and_then(|a| to_matrix(a, shape))
        .map_err(|p| p.at(src))
}

/// One non-negative integer label per row, from an integer `.npy` / `.npz` / `.safetensors`
/// array of any shape (flattened) or a one-column `.csv`.
pub fn read_labels(src: &Source) -> Result<Vec<usize>, ArrayError> {
    read_integers(src).map_err(|p| p.at(src))
}

/// `read_labels`, checked to give exactly `rows` labels.
pub fn read_labels_for(src: &Source, rows: usize) -> Result<Vec<usize>, ArrayError> {
    let labels = read_labels(src)?;
    label_count(labels, rows).map_err(|p| p.at(src))
}

/// `Columns` error for `src` when its m differs from `other`'s.
pub fn check_columns(
    src: &Source,
    found: usize,
    other: &Source,
    expected: usize,
) -> Result<(), ArrayError> {
    if found == expected {
        return Ok(());
    }
    Err(Problem::Columns {
        found,
        expected,
        other: other.to_string(),
    }
    .at(src))
}

fn format_of(src: &Source) -> Result<Format, Problem> {
    Format::of(&src.path).ok_or(Problem::Extension)
}

fn read_floats(src: &Source) -> Result<ArrayD<f32>, Problem> {
    let name = src.name.as_deref();
    match format_of(src)? {
        Format::Npy => {
            no_name(name)?;
            npy::floats(&std::fs::read(&src.path)?)
        }
        Format::Npz => npy::floats(&npy::npz_entry(&src.path, name)?),
        Format::Safetensors => safetensors::floats(&std::fs::read(&src.path)?, name),
        Format::Csv => csv::floats(&src.path, name),
    }
}

fn read_integers(src: &Source) -> Result<Vec<usize>, Problem> {
    let name = src.name.as_deref();
    let values = match format_of(src)? {
        Format::Npy => {
            no_name(name)?;
            npy::integers(&std::fs::read(&src.path)?)?
        }
        Format::Npz => npy::integers(&npy::npz_entry(&src.path, name)?)?,
        Format::Safetensors => safetensors::integers(&std::fs::read(&src.path)?, name)?,
        Format::Csv => return csv::labels(&src.path, name),
    };
    to_labels(values)
}

fn no_name(name: Option<&str>) -> Result<(), Problem> {
    match name {
        Some(n) => Err(Problem::NameOnPlainFile(n.to_string())),
        None => Ok(()),
    }
}

/// Row-major (N, m), every value finite, N ≥ 1 and m ≥ 1.
fn to_matrix(a: ArrayD<f32>, shape: Shape) -> Result<Array2<f32>, Problem> {
    vectors(a.view(), shape).map(CowArray::into_owned)
}

/// `a` as a row-major (N, m) matrix, with the checks of a file read (rank, no rows or
/// columns, every value finite): for arrays that arrive in memory, as from Python. Copies
/// only when `a` is not in row-major order (a Fortran-ordered or strided array).
pub fn vectors(a: ArrayViewD<'_, f32>, shape: Shape) -> Result<CowArray<'_, f32, Ix2>, Problem> {
    let dims = a.shape().to_vec();
    let ok_rank = match shape {
        Shape::Matrix => dims.len() == 2,
        Shape::Vectors => dims.len() >= 2,
    };
    if !ok_rank {
        return Err(Problem::Rank {
            shape: dims,
            expected: match shape {
                Shape::Matrix => "two axes, (points, dimensions)",
                Shape::Vectors => "at least two axes, (…, dimensions)",
            },
        });
    }
    let m = dims[dims.len() - 1];
    let n: usize = dims[..dims.len() - 1].iter().product();
    if n == 0 || m == 0 {
        return Err(Problem::Empty(dims));
    }
    // Fortran-ordered files arrive column-major; the copy puts them in row order.
    let flat: CowArray<f32, IxDyn> = if a.is_standard_layout() {
        a.into()
    } else {
        a.as_standard_layout().into_owned().into()
    };
    let matrix = flat
        .into_shape_with_order((n, m))
        .expect("a standard-layout array reshapes to its element count");
    let values = matrix.as_slice().expect("standard layout");
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Problem::NonFinite {
            row: i / m,
            col: i % m,
            value: values[i] as f64,
        });
    }
    Ok(matrix)
}

/// Integer labels as class indices, one per row of a matrix of `rows` rows: the checks of
/// `read_labels_for` (every label ≥ 0, as many as rows), for labels that arrive in memory.
pub fn labels_for(
    values: impl IntoIterator<Item = i64>,
    rows: usize,
) -> Result<Vec<usize>, Problem> {
    label_count(to_labels(values)?, rows)
}

/// `labels`, unless there are not exactly `rows` of them.
fn label_count(labels: Vec<usize>, rows: usize) -> Result<Vec<usize>, Problem> {
    if labels.len() != rows {
        return Err(Problem::LabelCount {
            found: labels.len(),
            expected: rows,
        });
    }
    Ok(labels)
}

/// Each value as a label, or the first negative one as an error.
fn to_labels(values: impl IntoIterator<Item = i64>) -> Result<Vec<usize>, Problem> {
    values
        .into_iter()
        .enumerate()
        .map(|(row, v)| {
            usize::try_from(v).map_err(|_| Problem::Label {
                row,
                value: v.to_string(),
            })
        })
        .collect()
}

/// f64 values to f32; values beyond the f32 range become infinite and are caught by the
/// finiteness check.
fn narrow(a: ArrayD<f64>) -> ArrayD<f32> {
    a.mapv(|v| v as f32)
}

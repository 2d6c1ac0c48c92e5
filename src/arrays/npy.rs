//! `.npy` arrays (alone or inside an `.npz`), through ndarray-npy.
//!
//! ndarray-npy allocates the size its header claims before reading, so a lying header could
//! ask for terabytes. The bytes are therefore read first and viewed in place, which checks the
//! header's shape against the bytes there without allocating; only then are they copied.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use ndarray::{ArrayD, ArrayViewD};
use ndarray_npy::{ReadNpyExt, ReadableElement, ViewElement, ViewNpyError, ViewNpyExt};

use super::{narrow, Problem};

const FORMAT: &str = ".npy";
const FLOATS: &str = "float32 or float64 ('<f4', '<f8')";
const INTEGERS: &str = "an integer type ('<i8', '<i4', '|u1', …)";

/// A float32 or float64 array as f32, in whatever order the file stores it.
pub(super) fn floats(bytes: &[u8]) -> Result<ArrayD<f32>, Problem> {
    if let Some(a) = try_elem::<f32>(bytes)? {
        return Ok(a);
    }
    match try_elem::<f64>(bytes)? {
        Some(a) => Ok(narrow(a)),
        None => Err(dtype_problem(bytes, FLOATS)),
    }
}

/// An integer array of any width as i64 values, flattened in logical (row-major) order.
pub(super) fn integers(bytes: &[u8]) -> Result<Vec<i64>, Problem> {
    macro_rules! first_match {
        ($($t:ty),*) => {$(
            if let Some(a) = try_elem::<$t>(bytes)? {
                return a.as_standard_layout().iter().enumerate().map(|(row, &v)| {
                    i64::try_from(v).map_err(|_| Problem::Label { row, value: v.to_string() })
                }).collect();
            }
        )*};
    }
    first_match!(i64, i32, i16, i8, u64, u32, u16, u8);
    Err(dtype_problem(bytes, INTEGERS))
}

/// The bytes of one array of an `.npz`: the one named, or the only one.
pub(super) fn npz_entry(path: &Path, name: Option<&str>) -> Result<Vec<u8>, Problem> {
    let zip_problem = |e: zip::result::ZipError| Problem::Format {
        format: ".npz",
        message: e.to_string(),
    };
    let mut zip = zip::ZipArchive::new(File::open(path)?).map_err(zip_problem)?;
    let names: Vec<String> = zip
        .file_names()
        .map(|n| n.strip_suffix(".npy").unwrap_or(n).to_string())
        .collect();
    let available = || names.join(", ");
    let index = match name {
        Some(want) => names
            .iter()
            .position(|n| n == want)
            .ok_or_else(|| Problem::NoSuchArray {
                name: want.to_string(),
                available: available(),
            })?,
        None if names.len() == 1 => 0,
        None => {
            return Err(Problem::Ambiguous {
                count: names.len(),
                available: available(),
            })
        }
    };
    let mut entry = zip.by_index(index).map_err(zip_problem)?;
    // Grows with the bytes actually decompressed, whatever size the archive claims.
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).map_err(|e| Problem::Format {
        format: ".npz",
        message: e.to_string(),
    })?;
    Ok(bytes)
}

/// The array if the file's element type is `A`; None if it is another type.
fn try_elem<A>(bytes: &[u8]) -> Result<Option<ArrayD<A>>, Problem>
where
    A: ViewElement + ReadableElement + Clone,
{
    match ArrayViewD::<A>::view_npy(bytes) {
        Ok(view) => Ok(Some(view.to_owned())),
        // Length and type were checked before alignment, so reading allocates what is there.
        Err(ViewNpyError::MisalignedData) => ArrayD::<A>::read_npy(bytes)
            .map(Some)
            .map_err(|e| format_problem(e.to_string())),
        Err(ViewNpyError::WrongDescriptor(_)) => Ok(None),
        Err(ViewNpyError::NonNativeEndian) => Err(format_problem(
            "big-endian data; save it little-endian (numpy: a.astype('<f4'))".into(),
        )),
        Err(ViewNpyError::MissingBytes(n)) => Err(format_problem(format!(
            "truncated: the header's shape needs {n} more bytes than the file holds"
        ))),
        Err(e) => Err(format_problem(e.to_string())),
    }
}

fn format_problem(message: String) -> Problem {
    Problem::Format {
        format: FORMAT,
        message,
    }
}

/// The file's own type descriptor, for the message (a view of a type it does not hold).
fn dtype_problem(bytes: &[u8], allowed: &'static str) -> Problem {
    let found = match ArrayViewD::<bool>::view_npy(bytes) {
        Err(ViewNpyError::WrongDescriptor(d)) => d.to_string(),
        _ => "bool".to_string(),
    };
    Problem::Dtype { found, allowed }
}

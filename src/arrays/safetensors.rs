//! `.safetensors` tensors (Hugging Face), through the `safetensors` crate, which checks every
//! tensor's offsets against the buffer before anything is copied.

use half::{bf16, f16};
use ndarray::ArrayD;
use safetensors::{tensor::TensorView, Dtype, SafeTensors};

use super::Problem;

const FLOATS: &str = "F32, F64, F16 or BF16";
const INTEGERS: &str = "an integer type (I64, I32, U8, …)";

/// A float tensor (F32, F64, F16, BF16) as f32, row-major.
pub(super) fn floats(bytes: &[u8], name: Option<&str>) -> Result<ArrayD<f32>, Problem> {
    let st = parse(bytes)?;
    let t = pick(&st, name)?;
    let data = t.data();
    let values: Vec<f32> = match t.dtype() {
        Dtype::F32 => le(data, f32::from_le_bytes),
        Dtype::F64 => le(data, f64::from_le_bytes)
            .into_iter()
            .map(|v: f64| v as f32)
            .collect(),
        Dtype::F16 => le(data, |b| f16::from_le_bytes(b).to_f32()),
        Dtype::BF16 => le(data, |b| bf16::from_le_bytes(b).to_f32()),
        other => return Err(dtype(other, FLOATS)),
    };
    ArrayD::from_shape_vec(t.shape().to_vec(), values).map_err(|e| Problem::Format {
        format: ".safetensors",
        message: format!("shape {:?} does not match the data: {e}", t.shape()),
    })
}

/// An integer tensor of any width as i64 values, row-major.
pub(super) fn integers(bytes: &[u8], name: Option<&str>) -> Result<Vec<i64>, Problem> {
    let st = parse(bytes)?;
    let t = pick(&st, name)?;
    let data = t.data();
    let values: Vec<i64> = match t.dtype() {
        Dtype::I64 => le(data, i64::from_le_bytes),
        Dtype::I32 => le(data, |b| i32::from_le_bytes(b) as i64),
        Dtype::I16 => le(data, |b| i16::from_le_bytes(b) as i64),
        Dtype::I8 => le(data, |b| i8::from_le_bytes(b) as i64),
        Dtype::U32 => le(data, |b| u32::from_le_bytes(b) as i64),
        Dtype::U16 => le(data, |b| u16::from_le_bytes(b) as i64),
        Dtype::U8 => le(data, |b| u8::from_le_bytes(b) as i64),
        other => return Err(dtype(other, INTEGERS)),
    };
    Ok(values)
}

fn parse(bytes: &[u8]) -> Result<SafeTensors<'_>, Problem> {
    SafeTensors::deserialize(bytes).map_err(|e| Problem::Format {
        format: ".safetensors",
        message: e.to_string(),
    })
}

/// The tensor named, or the only one.
fn pick<'a>(st: &SafeTensors<'a>, name: Option<&str>) -> Result<TensorView<'a>, Problem> {
    let mut names = st.names();
    names.sort_unstable();
    let available = names.join(", ");
    match name {
        Some(want) => st.tensor(want).map_err(|_| Problem::NoSuchArray {
            name: want.to_string(),
            available,
        }),
        None if names.len() == 1 => Ok(st.tensor(names[0]).expect("listed by the file")),
        None => Err(Problem::Ambiguous {
            count: names.len(),
            available,
        }),
    }
}

/// Little-endian elements of `N` bytes each.
fn le<const N: usize, T>(data: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    data.chunks_exact(N)
        .map(|c| f(c.try_into().expect("chunks of N bytes")))
        .collect()
}

fn dtype(found: Dtype, allowed: &'static str) -> Problem {
    Problem::Dtype {
        found: format!("{found:?}"),
        allowed,
    }
}

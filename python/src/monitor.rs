//! Code usage while a tokenizer trains: per quantizer level, counts over the last `window`
//! indices (a ring of the indices, so the oldest leaves as each new one arrives) and since
//! the start. An update costs a few memory accesses per index; a report, O(codebook size).

use numpy::PyReadonlyArrayDyn;
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use vqsim::sim::metrics;

/// The counts of one level.
struct Level {
    /// The last `window` indices, oldest at `next` once full.
    ring: Vec<u32>,
    next: usize,
    filled: usize,
    window: Vec<usize>,
    total: Vec<usize>,
}

impl Level {
    fn new(codebook_size: usize, window: usize) -> Level {
        Level {
            ring: vec![0; window],
            next: 0,
            filled: 0,
            window: vec![0; codebook_size],
            total: vec![0; codebook_size],
        }
    }

    /// `codes` were checked to lie in the codebook.
    fn push(&mut self, codes: impl Iterator<Item = i64>) {
        let size = self.ring.len();
        for c in codes {
            let c = c as usize;
            if self.filled == size {
                self.window[self.ring[self.next] as usize] -= 1;
            } else {
                self.filled += 1;
            }
            self.ring[self.next] = c as u32;
            self.window[c] += 1;
            self.total[c] += 1;
            self.next += 1;
            if self.next == size {
                self.next = 0;
            }
        }
    }
}

/// perplexity, perplexity_ratio, codes_used, dead_codes and rare_codes of `counts`, each
/// key prefixed with `prefix`. Rare codes are used, but with a share below 1/(10·S), so
/// that dead and rare codes never overlap.
fn stats(out: &Bound<'_, PyDict>, prefix: &str, counts: &[usize]) -> PyResult<()> {
    let s = counts.len();
    let n: usize = counts.iter().sum();
    let perplexity = metrics::perplexity(counts);
    let rare = counts.iter().filter(|&&c| c > 0 && 10 * s * c < n).count();
    out.set_item(format!("{prefix}perplexity"), perplexity)?;
    out.set_item(format!("{prefix}perplexity_ratio"), perplexity / s as f64)?;
    out.set_item(format!("{prefix}codes_used"), metrics::codes_used(counts))?;
    out.set_item(format!("{prefix}dead_codes"), metrics::dead_codes(counts))?;
    out.set_item(format!("{prefix}rare_codes"), rare)?;
    Ok(())
}

/// The counting core of `vqsim.Monitor`.
#[pyclass(module = "vqsim._vqsim")]
pub struct Usage {
    codebook_size: usize,
    levels: Vec<Level>,
}

#[pymethods]
impl Usage {
    /// The arguments were checked in Python (each at least 1).
    #[new]
    fn new(codebook_size: usize, window: usize, levels: usize) -> PyResult<Usage> {
        if codebook_size > u32::MAX as usize {
            return Err(PyValueError::new_err(format!(
                "codebook_size {codebook_size} is too large; at most {}",
                u32::MAX
            )));
        }
        Ok(Usage {
            codebook_size,
            levels: (0..levels)
                .map(|_| Level::new(codebook_size, window))
                .collect(),
        })
    }

    /// One int64 array per level, any shape; nothing is counted unless every index of every
    /// level lies in the codebook.
    fn update(&mut self, indices: Vec<PyReadonlyArrayDyn<'_, i64>>) -> PyResult<()> {
        if indices.len() != self.levels.len() {
            return Err(PyValueError::new_err(format!(
                "indices: {} levels given for a monitor of {}",
                indices.len(),
                self.levels.len()
            )));
        }
        let views: Vec<_> = indices.iter().map(|a| a.as_array()).collect();
        let s = self.codebook_size;
        for (level, view) in views.iter().enumerate() {
            if let Some((i, &v)) = view
                .iter()
                .enumerate()
                .find(|(_, &v)| v < 0 || v as u64 >= s as u64)
            {
                let at = if self.levels.len() > 1 {
                    format!(" of level {level}")
                } else {
                    String::new()
                };
                return Err(PyValueError::new_err(format!(
                    "indices: value {v} at position {i}{at} is not a code of a codebook of size {s} (0 ≤ index < {s})"
                )));
            }
        }
        for (level, view) in self.levels.iter_mut().zip(&views) {
            level.push(view.iter().copied());
        }
        Ok(())
    }

    /// The statistics of `level` over the window and since the start (`total_` keys).
    fn report<'py>(&self, py: Python<'py>, level: usize) -> PyResult<Bound<'py, PyDict>> {
        let l = self.levels.get(level).ok_or_else(|| {
            PyIndexError::new_err(format!(
                "level {level} of a monitor of {}",
                self.levels.len()
            ))
        })?;
        let out = PyDict::new(py);
        stats(&out, "", &l.window)?;
        stats(&out, "total_", &l.total)?;
        Ok(out)
    }
}

//! Nearest code of every embedding, for N far larger than fits as an N × S matrix.
//!
//! Embeddings are cut into chunks of `CHUNK` rows, handed to rayon's threads; each thread
//! keeps one `nearest::Scratch` and runs the exact search of `sim::nearest` on its chunk (a
//! GEMM screen ‖z‖² − 2 z·eᵀ + ‖e‖² into a reused buffer, then the direct f32 sum on the few
//! candidates that could be nearest). So the answer is the argmin of the direct f32 distance,
//! exact ties going to the lowest code index, the same as in training and whatever the thread
//! count; memory beyond the inputs is one chunk's buffers per thread.

use ndarray::{ArrayView2, Axis};
use rayon::prelude::*;

use crate::sim::nearest::{self, sq_dist, Scratch};

/// Embeddings per chunk: large enough that the GEMM amortises packing the codebook.
const CHUNK: usize = 2048;

/// The nearest code of each embedding and the squared distance to it.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub code: Vec<usize>,
    pub sq_dist: Vec<f32>,
}

/// Nearest row of `codebook` (S, m) for every row of `z` (N, m); S ≥ 1.
pub fn assign(z: ArrayView2<f32>, codebook: ArrayView2<f32>) -> Assignment {
    let n = z.nrows();
    let codes = codebook.as_standard_layout();
    let mut code = vec![0usize; n];
    let mut dist = vec![0.0f32; n];
    code.par_chunks_mut(CHUNK)
        .zip(dist.par_chunks_mut(CHUNK))
        .zip(z.axis_chunks_iter(Axis(0), CHUNK).into_par_iter())
        .for_each_init(Scratch::default, |scratch, ((code, dist), zc)| {
            nearest::nearest_with(zc, codes.view(), code, scratch);
            for ((d, &k), row) in dist.iter_mut().zip(code.iter()).zip(zc.rows()) {
                let row = row.as_standard_layout();
                *d = sq_dist(row.as_slice().expect("standard layout"), codes_row(&codes, k));
            }
        });
    Assignment {
        code,
        sq_dist: dist,
    }
}

fn codes_row<'a>(codes: &'a ndarray::CowArray<'_, f32, ndarray::Ix2>, k: usize) -> &'a [f32] {
    let m = codes.ncols();
    &codes.as_slice().expect("standard layout")[k * m..(k + 1) * m]
}

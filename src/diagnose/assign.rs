//! Nearest code of every embedding, for N far larger than fits as an N × S matrix.
//!
//! The codebook is prepared once (`nearest::Prepared`); embeddings are cut into chunks of
//! `CHUNK` rows handed to rayon's threads, and each thread runs the exact search of
//! `sim::nearest` on its chunk: one GEMM screen ‖z‖² − 2 z·eᵀ + ‖e‖² into a (CHUNK, S) buffer
//! it reuses, then the direct f32 sum on the few codes that could be nearest. So the answer is
//! the argmin of the direct f32 distance, exact ties going to the lowest code index, the same
//! as in training and whatever the thread count; memory beyond the inputs is one chunk buffer
//! per thread (CHUNK × S × 4 bytes: 64 MB at S = 16 384).

use ndarray::{ArrayView2, Axis};
use rayon::prelude::*;

use crate::sim::nearest::{sq_dist, Prepared};

/// Embeddings per GEMM: enough rows that packing the codebook for the product (once per call)
/// costs little next to the product itself.
const CHUNK: usize = 1024;

/// The nearest code of each embedding and the squared distance to it.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub code: Vec<usize>,
    pub sq_dist: Vec<f32>,
}

/// Nearest row of `codebook` (S, m) for every row of `z` (N, m); S ≥ 1.
pub fn assign(z: ArrayView2<f32>, codebook: ArrayView2<f32>) -> Assignment {
    let n = z.nrows();
    let m = codebook.ncols();
    let prepared = Prepared::new(codebook);
    let codes = codebook.as_standard_layout();
    let codes = codes.as_slice().expect("standard layout");
    let mut code = vec![0usize; n];
    let mut dist = vec![0.0f32; n];
    code.par_chunks_mut(CHUNK)
        .zip(dist.par_chunks_mut(CHUNK))
        .zip(z.axis_chunks_iter(Axis(0), CHUNK).into_par_iter())
        .for_each_init(Vec::new, |gram, ((code, dist), zc)| {
            let zc = zc.as_standard_layout();
            prepared.nearest(zc.view(), code, gram);
            for ((d, &k), row) in dist.iter_mut().zip(code.iter()).zip(zc.rows()) {
                let row = row.to_slice().expect("standard layout");
                *d = sq_dist(row, &codes[k * m..(k + 1) * m]);
            }
        });
    Assignment {
        code,
        sq_dist: dist,
    }
}

//! The SPEC §4 metrics, computed on the full data set.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

/// Every SPEC §4 metric under its SPEC name. Metrics that need a codebook are NaN while the
/// model is still continuous (the first phase of a deferred run).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub mse: f64,
    pub quant_mse: f64,
    pub perplexity: f64,
    pub codes_used: f64,
    pub dead_codes: f64,
    pub codebook_dist: f64,
    pub codebook_cos: f64,
    pub embed_dist: f64,
    pub shrink_ratio: f64,
    pub coverage: f64,
    pub embed_rank: f64,
    pub modes_hit: f64,
    pub mode_entropy: f64,
    pub token_mode_entropy: f64,
}

/// What the metrics look at: the model's view of the whole data set at one moment.
pub struct Observation<'a> {
    /// Data, (n, d).
    pub x: ArrayView2<'a, f32>,
    /// True mixture means, (K, d).
    pub means: ArrayView2<'a, f32>,
    /// Encoder outputs, (n, m).
    pub z: ArrayView2<'a, f32>,
    /// Reconstructions, (n, d): dec(q(z)) when quantized, dec(z) when continuous.
    pub recon: ArrayView2<'a, f32>,
    pub quantized: Option<QuantizedView<'a>>,
    /// Row indices of `z` used by the pairwise metrics (embed_dist, coverage).
    pub subsample: &'a [usize],
}

pub struct QuantizedView<'a> {
    /// Codebook, (S, m).
    pub codebook: ArrayView2<'a, f32>,
    /// Nearest code of every row of z, (n).
    pub assign: &'a [usize],
    /// Each code decoded, (S, d).
    pub decoded_codes: ArrayView2<'a, f32>,
}

pub fn measure(_obs: &Observation) -> Metrics {
    todo!()
}

//! One run: data, networks, the early or deferred schedule, and its measurements.

use std::sync::atomic::AtomicBool;

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Plain autoencoder training (deferred schedule only).
    Continuous,
    /// Training with the quantizer on.
    Quantized,
}

/// Metrics of the whole data set after `epoch` epochs of `phase` (epoch 0 = phase start,
/// i.e. the quantized phase's epoch 0 is right after codebook init).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryRow {
    pub phase: Phase,
    pub epoch: usize,
    /// Epochs trained so far over both phases (x axis of dynamics plots).
    pub total_epoch: usize,
    pub metrics: Metrics,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Diverged,
}

/// The end state of a run, for figures: the data, its embeddings and reconstructions, and the
/// codebook with its usage.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// True mode of each point, (n).
    pub labels: Vec<usize>,
    /// Data, (n, d).
    pub x: Array2<f32>,
    /// Encoder outputs, (n, m).
    pub z: Array2<f32>,
    /// Reconstructions dec(q(z)), (n, d).
    pub recon: Array2<f32>,
    /// Assigned code per point, (n).
    pub code: Vec<usize>,
    /// Codebook, (S, m).
    pub codebook: Array2<f32>,
    /// Points assigned to each code, (S).
    pub usage: Array1<u64>,
    /// Mixture means, (K, d).
    pub means: Array2<f32>,
}

#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub status: Status,
    /// Total epoch at which a non-finite loss or parameter appeared.
    pub diverged_epoch: Option<usize>,
    /// Wall time of training, codebook init included, metrics excluded (seconds).
    pub seconds: f64,
    /// Final metrics (all NaN when diverged).
    pub metrics: Metrics,
    pub history: Vec<HistoryRow>,
    /// None when diverged.
    pub snapshot: Option<Snapshot>,
}

/// The run was stopped from outside (Ctrl-C) before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("run cancelled")]
pub struct Cancelled;

/// Train and measure one run. Randomness comes only from `seed`, so the same (config, seed)
/// gives the same outcome bit for bit on any thread. `cancel` is polled between steps.
pub fn run(_cfg: &RunConfig, _seed: u64, _cancel: &AtomicBool) -> Result<RunOutcome, Cancelled> {
    todo!()
}

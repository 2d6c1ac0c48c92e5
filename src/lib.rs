//! vqsim: codebook shrinkage under early vs deferred quantization, on Gaussian mixtures.
//!
//! A run goes data → model → quantizer → training schedule → metrics; sweeps run many in
//! parallel and write tables that summaries and figures are drawn from.

pub mod bench;
pub mod claims;
pub mod config;
pub mod data;
pub mod kmeans;
pub mod linalg;
pub mod metrics;
pub mod model;
pub mod nearest;
pub mod nn;
pub mod output;
pub mod paper;
pub mod plot;
pub mod rng;
pub mod scenario;
pub mod shard;
pub mod stats;
pub mod summary;
pub mod sweep;
pub mod table;
pub mod train;
pub mod tsne;
pub mod vq;

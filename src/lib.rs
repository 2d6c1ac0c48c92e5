//! vqsim: codebook shrinkage under early vs deferred quantization, on Gaussian mixtures.

pub mod config;
pub mod metrics;
pub mod plot;
pub mod stats;
pub mod table;
pub mod train;

//! vqsim: codebook shrinkage under early vs deferred quantization, on Gaussian mixtures.

pub mod config;
pub mod metrics;
pub mod scenario;
pub mod table;
pub mod train;

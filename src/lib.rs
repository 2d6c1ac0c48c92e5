//! vqsim: codebook shrinkage under early vs deferred quantization, on Gaussian mixtures.

pub mod config;
pub mod metrics;
pub mod nn;
pub mod table;
pub mod train;

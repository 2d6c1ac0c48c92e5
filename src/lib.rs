//! vqsim: codebook shrinkage under early vs deferred quantization, on Gaussian mixtures.

pub mod config;
pub mod linalg;
pub mod metrics;
pub mod nearest;
pub mod table;
pub mod train;

//! vqsim: codebook shrinkage under early vs deferred quantization, on Gaussian mixtures.

pub mod config;
pub mod metrics;
pub mod table;
pub mod train;
pub mod data;
pub mod model;
pub mod rng;
pub mod vq;

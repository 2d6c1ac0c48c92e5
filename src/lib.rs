//! vqsim: codebook shrinkage under early vs deferred quantization, on Gaussian mixtures.

pub mod claims;
pub mod config;
pub mod metrics;
pub mod stats;
pub mod summary;
pub mod table;
pub mod train;
pub mod data;
pub mod model;
pub mod rng;
pub mod vq;

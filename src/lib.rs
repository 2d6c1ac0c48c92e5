//! vqsim: codebook shrinkage under early vs deferred quantization, on Gaussian mixtures.
//!
//! A run goes data → model → quantizer → training schedule → metrics (`sim`); scenarios
//! expand into sweeps whose results are stored per run (`study`); tables, statistics, claims,
//! figures and the paper page are drawn from the stored results (`report`).

pub mod arrays;
pub mod atomic;
pub mod bench;
pub mod diagnose;
pub mod report;
pub mod sim;
pub mod study;

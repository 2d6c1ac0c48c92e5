//! The simulation itself: configuration, data, networks, quantizer, training, metrics.

pub mod checked;
pub mod config;
pub mod data;
pub mod generation;
pub mod kdtree;
pub mod kmeans;
pub mod linalg;
pub mod matmul;
pub mod metrics;
pub mod model;
pub mod nearest;
pub mod nn;
pub mod prdc;
pub mod rng;
pub mod theory;
pub mod train;
pub mod valid;
pub mod vq;

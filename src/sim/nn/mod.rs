//! Hand-written layers with reverse-mode backward passes, Adam, and the MSE loss.
//!
//! Everything works on preallocated buffers so a training step allocates nothing.

pub mod activation;
pub mod adam;
pub mod linear;
pub mod loss;
pub mod mlp;

pub use adam::Adam;
pub use linear::Linear;
pub use mlp::Mlp;

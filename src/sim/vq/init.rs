//! The initial codebook.

use ndarray::{Array2, ArrayView2};
use ndarray_rand::rand_distr::{Normal, Uniform};
use ndarray_rand::RandomExt;
use rand_chacha::ChaCha8Rng;

use crate::sim::config::{Init, QuantizerConfig};
use crate::sim::kmeans::kmeans;

#[derive(Debug, thiserror::Error)]
#[error("k-means codebook init failed: {0}")]
pub struct InitError(pub(super) String);

/// The initial codebook, (S, m). `z` holds the current encoder outputs of the whole data set
/// (only `kmeans` looks at them).
pub(super) fn init_codebook(
    cfg: &QuantizerConfig,
    z: ArrayView2<f32>,
    rng: &mut ChaCha8Rng,
) -> Result<Array2<f32>, InitError> {
    let (s, m) = (cfg.codebook_size, z.ncols());
    Ok(match cfg.init {
        Init::Uniform => {
            let a = 1.0 / s as f32;
            Array2::random_using((s, m), Uniform::new_inclusive(-a, a), rng)
        }
        Init::Normal => {
            let normal =
                Normal::new(0.0, cfg.init_std as f32).map_err(|e| InitError(e.to_string()))?;
            Array2::random_using((s, m), normal, rng)
        }
        Init::Kmeans => kmeans(z, s, rng).map_err(|e| InitError(e.to_string()))?,
    })
}

//! The synthetic data: a mixture of K isotropic Gaussians (SPEC §2).

use ndarray::{Array2, Axis};
use ndarray_rand::rand_distr::{StandardNormal, Uniform};
use ndarray_rand::RandomExt;
use rand::Rng;

use crate::config::DataConfig;

/// Points of a Gaussian mixture with their true components.
#[derive(Debug, Clone)]
pub struct Mixture {
    /// Points, (n, d), grouped by component.
    pub x: Array2<f32>,
    /// True component of each point, (n). Used by the metrics, never by training.
    pub labels: Vec<usize>,
    /// Component means, (K, d).
    pub means: Array2<f32>,
}

impl Mixture {
    /// K means uniform in [−r, r]^d, then `points_per_mode` points around each with shared σ.
    pub fn sample(cfg: &DataConfig, rng: &mut impl Rng) -> Mixture {
        let (k, d, per) = (cfg.modes, cfg.dim, cfg.points_per_mode);
        let r = cfg.mean_range as f32;
        let means = Array2::random_using((k, d), Uniform::new_inclusive(-r, r), rng);
        let noise: Array2<f32> = Array2::random_using((k * per, d), StandardNormal, rng);
        let mut x = noise * cfg.std as f32;
        for (i, mut row) in x.axis_iter_mut(Axis(0)).enumerate() {
            row += &means.row(i / per);
        }
        let labels = (0..k * per).map(|i| i / per).collect();
        Mixture { x, labels, means }
    }

    pub fn len(&self) -> usize {
        self.x.nrows()
    }

    pub fn is_empty(&self) -> bool {
        self.x.nrows() == 0
    }
}

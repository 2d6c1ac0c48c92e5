//! The synthetic data: a mixture of K isotropic Gaussians (SPEC §2).

use ndarray::{Array2, Axis};
use ndarray_rand::rand_distr::{StandardNormal, Uniform};
use ndarray_rand::RandomExt;
use rand::Rng;

use crate::sim::config::DataConfig;

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
    /// K means uniform in [−r, r]^d, then `modes · points_per_mode` points shared among the
    /// components by their weights, each around its mean with its own σ (equal weights and a
    /// shared σ unless `weight_ratio` / `std_ratio` say otherwise).
    pub fn sample(cfg: &DataConfig, rng: &mut impl Rng) -> Mixture {
        let (k, d) = (cfg.modes, cfg.dim);
        let n = k * cfg.points_per_mode;
        let r = cfg.mean_range as f32;
        let means = Array2::random_using((k, d), Uniform::new_inclusive(-r, r), rng);
        let noise: Array2<f32> = Array2::random_using((n, d), StandardNormal, rng);
        let labels = component_labels(k, n, cfg.weight_ratio);
        let sigma: Vec<f32> = (0..k)
            .map(|c| (cfg.std * cfg.std_ratio.powf(position(c, k))) as f32)
            .collect();
        let mut x = noise;
        for (mut row, &c) in x.axis_iter_mut(Axis(0)).zip(&labels) {
            row *= sigma[c];
            row += &means.row(c);
        }
        Mixture { x, labels, means }
    }

    pub fn len(&self) -> usize {
        self.x.nrows()
    }

    pub fn is_empty(&self) -> bool {
        self.x.nrows() == 0
    }
}

/// Where component `c` of `k` sits between the first (0) and the last (1).
fn position(c: usize, k: usize) -> f64 {
    if k > 1 {
        c as f64 / (k - 1) as f64
    } else {
        0.0
    }
}

/// The component of each of `n` points, grouped by component: weights fall geometrically from
/// 1 (first) to 1/`ratio` (last), and cumulative rounding shares the points so that the counts
/// sum to `n` exactly (equal weights give every component n/k). An extreme ratio can leave the
/// last components without points.
fn component_labels(k: usize, n: usize, ratio: f64) -> Vec<usize> {
    let weights: Vec<f64> = (0..k).map(|c| ratio.powf(-position(c, k))).collect();
    let total: f64 = weights.iter().sum();
    let mut labels = Vec::with_capacity(n);
    let mut cumulative = 0.0;
    for (c, w) in weights.iter().enumerate() {
        cumulative += w;
        let end = if c + 1 == k {
            n
        } else {
            (n as f64 * cumulative / total).round() as usize
        };
        labels.resize(end.clamp(labels.len(), n), c);
    }
    labels
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn equal_weights_give_every_component_the_same_count() {
        let labels = component_labels(10, 10_000, 1.0);
        for c in 0..10 {
            assert_eq!(labels.iter().filter(|&&l| l == c).count(), 1000);
        }
    }

    #[test]
    fn weights_fall_geometrically_and_counts_sum_to_n() {
        let labels = component_labels(3, 700, 4.0);
        let counts: Vec<usize> = (0..3)
            .map(|c| labels.iter().filter(|&&l| l == c).count())
            .collect();
        // Weights 1, 1/2, 1/4 of 700 points: 400, 200, 100.
        assert_eq!(counts, vec![400, 200, 100]);
        assert!(labels.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn sigma_grows_from_std_to_std_times_ratio() {
        let cfg = DataConfig {
            modes: 2,
            points_per_mode: 4000,
            dim: 1,
            std_ratio: 3.0,
            ..DataConfig::default()
        };
        let m = Mixture::sample(&cfg, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        let spread = |c: usize| {
            let v: Vec<f64> = m
                .labels
                .iter()
                .zip(m.x.iter())
                .filter(|(&l, _)| l == c)
                .map(|(_, &x)| (x - m.means[[c, 0]]) as f64)
                .collect();
            (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt()
        };
        assert!((spread(0) - 0.5).abs() < 0.03, "{}", spread(0));
        assert!((spread(1) - 1.5).abs() < 0.08, "{}", spread(1));
    }
}

//! The data: a mixture of K isotropic Gaussians, or the user's own file.

use std::fmt;
use std::sync::Arc;

use ndarray::{Array1, Array2, Axis};
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

    /// A data set read from a file: `x` (n, d), z-scored per column when `standardize`, with
    /// the classes of `labels` (any integers, numbered 0.. in increasing order) as its modes
    /// and their means as the mode means. Without labels every point is in class 0 and there
    /// are no means (0, d), so the mode metrics are NaN rather than made up.
    pub fn from_file(mut x: Array2<f32>, labels: Option<&[usize]>, standardize: bool) -> Mixture {
        if standardize {
            z_score(&mut x);
        }
        let Some(labels) = labels else {
            let means = Array2::zeros((0, x.ncols()));
            return Mixture {
                labels: vec![0; x.nrows()],
                x,
                means,
            };
        };
        let mut classes = labels.to_vec();
        classes.sort_unstable();
        classes.dedup();
        let labels: Vec<usize> = labels
            .iter()
            .map(|l| classes.binary_search(l).expect("every label is a class"))
            .collect();
        let means = class_means(&x, &labels, classes.len());
        Mixture { x, labels, means }
    }

    /// Number of modes: mixture components, or classes of a labelled file (0 without labels).
    pub fn modes(&self) -> usize {
        self.means.nrows()
    }

    pub fn len(&self) -> usize {
        self.x.nrows()
    }

    pub fn is_empty(&self) -> bool {
        self.x.nrows() == 0
    }
}

/// Each column shifted to mean 0 and scaled to standard deviation 1 (the population σ, as
/// scikit-learn's StandardScaler); a constant column is only centred, as there.
fn z_score(x: &mut Array2<f32>) {
    let n = x.nrows() as f64;
    for mut col in x.columns_mut() {
        let mean = col.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = col.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let scale = if var > 0.0 { var.sqrt() } else { 1.0 };
        col.mapv_inplace(|v| ((v as f64 - mean) / scale) as f32);
    }
}

/// Mean of the rows of `x` (n, d) in each of `k` classes, (k, d); sums in f64.
fn class_means(x: &Array2<f32>, labels: &[usize], k: usize) -> Array2<f32> {
    let mut sums = Array2::<f64>::zeros((k, x.ncols()));
    let mut counts = Array1::<f64>::zeros(k);
    for (row, &c) in x.rows().into_iter().zip(labels) {
        sums.row_mut(c).zip_mut_with(&row, |s, &v| *s += v as f64);
        counts[c] += 1.0;
    }
    for (mut row, &n) in sums.rows_mut().into_iter().zip(&counts) {
        row /= n;
    }
    sums.mapv(|v| v as f32)
}

/// A data set read from a file once per sweep and shared by all its runs and threads.
#[derive(Clone)]
pub struct DataFile {
    pub data: Arc<Mixture>,
    /// Hash of the values and labels as read: it enters every run id, so an edited file never
    /// reuses stored runs while a moved one does.
    pub fingerprint: u64,
}

impl PartialEq for DataFile {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint
    }
}

impl fmt::Debug for DataFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DataFile({} × {}, {} modes, {:016x})",
            self.data.x.nrows(),
            self.data.x.ncols(),
            self.data.modes(),
            self.fingerprint
        )
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
    fn class_means_are_the_modes_of_a_labelled_file() {
        // Classes 7 and 3 become modes 1 and 0 (increasing order); their means by hand.
        let x = ndarray::array![
            [0.0f32, 2.0],
            [2.0, 4.0],
            [10.0, 0.0],
            [4.0, 0.0],
            [10.0, 3.0]
        ];
        let m = Mixture::from_file(x.clone(), Some(&[3, 3, 7, 3, 7]), false);
        assert_eq!(m.labels, vec![0, 0, 1, 0, 1]);
        assert_eq!(m.means, ndarray::array![[2.0f32, 2.0], [10.0, 1.5]]);
        assert_eq!(m.x, x);
    }

    #[test]
    fn a_file_without_labels_has_no_modes() {
        let m = Mixture::from_file(ndarray::array![[1.0f32], [2.0]], None, false);
        assert_eq!(m.modes(), 0);
        assert_eq!(m.means.dim(), (0, 1));
        assert_eq!(m.labels, vec![0, 0]);
    }

    #[test]
    fn standardize_z_scores_columns_and_only_centres_constant_ones() {
        let x = ndarray::array![[1.0f32, 5.0], [3.0, 5.0], [5.0, 5.0], [7.0, 5.0]];
        let m = Mixture::from_file(x, None, true);
        // Column 0: mean 4, population σ √5.
        let s = 5f32.sqrt();
        let expected = ndarray::array![
            [-3.0 / s, 0.0],
            [-1.0 / s, 0.0],
            [1.0 / s, 0.0],
            [3.0 / s, 0.0]
        ];
        for (a, b) in m.x.iter().zip(expected.iter()) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
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

//! k-means for the codebook init: k-means++ seeding, then linfa's m_k-means iterations.
//!
//! linfa's `KMeans` does not run plain Lloyd: each update step counts the old centre as one
//! more point of its cluster (centre ← (old centre + Σ members) / (members + 1)), so an empty
//! cluster keeps its centre instead of becoming undefined (m_k-means). scikit-learn's
//! `KMeans(n_init=1)`, used by `torch_ref.py`, runs Lloyd (plain means; an empty cluster is
//! re-seeded at a far point).
//!
//! linfa 0.8 seeds k-means++ by recomputing, for every new centroid, each point's distance to
//! all centroids chosen so far: O(n·k²) distances, which made seeding cost more than training
//! an early run. `plusplus` draws the same points from the same RNG stream with the same f32
//! distances, but keeps each point's running minimum: O(n·k), and bit-identical centroids (a
//! test checks the whole k-means against linfa's own `KMeansPlusPlus`). `mk_means` then runs
//! linfa's m_k-means iterations from them, again bit for bit, on the vectorised nearest search.

use ndarray::{Array2, ArrayView2, Axis};
use rand::distributions::{Distribution, WeightedIndex};
use rand::Rng;

use crate::sim::nearest::{nearest_with, sq_dist, Scratch};

/// m_k-means iterations allowed (SPEC §3: at most 50, one run).
pub const MAX_ITER: u64 = 50;
/// Iterations stop when the squared shift of the centroids falls below this share of the data's
/// mean per-dimension variance: scikit-learn's `tol`, so that both sides stop at the same point
/// whatever the scale of the embeddings (linfa's own tolerance is absolute).
pub const REL_TOL: f32 = 1e-4;

#[derive(Debug, thiserror::Error)]
#[error("k-means failed: {0}")]
pub struct KMeansError(String);

/// `k` centroids of the rows of `z` (n, m), (k, m): k-means++ seeding, then at most `MAX_ITER`
/// m_k-means iterations (linfa's, one run). The same `rng` state gives the same centroids bit for
/// bit as linfa's `KMeans::params_with_rng(k, rng)` with `KMeansInit::KMeansPlusPlus`.
pub fn kmeans<R: Rng + Clone>(
    z: ArrayView2<f32>,
    k: usize,
    rng: &R,
) -> Result<Array2<f32>, KMeansError> {
    if k == 0 || z.nrows() == 0 {
        return Err(KMeansError(format!(
            "{k} clusters for {} points",
            z.nrows()
        )));
    }
    let z = z.as_standard_layout();
    let seeds = plusplus(z.view(), k, &mut rng.clone());
    let mean_var = z.var_axis(Axis(0), 0.0).mean().unwrap_or(0.0);
    // linfa compares the (unsquared) Frobenius norm of the shift with its tolerance.
    let tolerance = (REL_TOL * mean_var).sqrt().max(f32::MIN_POSITIVE);
    mk_means(z.view(), seeds, tolerance)
}

/// linfa's m_k-means iterations from `centroids` (k, m), bit for bit (linfa-clustering 0.8
/// `KMeans::fit` with one run): assign each point to its nearest centroid (strict `<` from index
/// 0, distances Σ (c_i − p_i)² in index order), then centre ← (Σ members + old centre) /
/// (members + 1), sums in point order; stop when the shift ‖new − old‖ (f32 sum, f64 sqrt)
/// falls below `tolerance` or after `MAX_ITER` iterations; fail, as linfa does, when the
/// inertia of the last assignment is not finite (non-finite embeddings). linfa calls a generic distance
/// per (point, centroid) pair, which made its iterations cost as much as the training of an
/// early run; `nearest_with` finds the same argmin, vectorised across centroids.
fn mk_means(
    z: ArrayView2<f32>,
    mut centroids: Array2<f32>,
    tolerance: f32,
) -> Result<Array2<f32>, KMeansError> {
    let (n, m) = z.dim();
    let k = centroids.nrows();
    let mut assign = vec![0; n];
    let mut scratch = Scratch::default();
    let mut next = Array2::<f32>::zeros((k, m)); // (k, m)
    let mut counts = vec![0usize; k];
    for _ in 0..MAX_ITER {
        nearest_with(z, centroids.view(), &mut assign, &mut scratch);
        next.fill(0.0);
        counts.fill(1);
        for (row, &a) in z.rows().into_iter().zip(&assign) {
            next.row_mut(a).zip_mut_with(&row, |c, &v| *c += v);
            counts[a] += 1;
        }
        next += &centroids;
        for (mut row, &c) in next.rows_mut().into_iter().zip(&counts) {
            let c = c as f32;
            row.mapv_inplace(|v| v / c);
        }
        let shift = f64::from(sq_dist(
            centroids.as_slice().expect("standard layout"),
            next.as_slice().expect("standard layout"),
        ))
        .sqrt() as f32;
        std::mem::swap(&mut centroids, &mut next);
        if shift < tolerance {
            break;
        }
    }
    // `next` holds the centroids the last assignment was made against; ndarray's sum, as linfa's.
    let dists: ndarray::Array1<f32> = z
        .rows()
        .into_iter()
        .zip(&assign)
        .map(|(row, &a)| {
            let (p, c) = (row.to_slice().expect("standard layout"), next.row(a));
            sq_dist(c.to_slice().expect("standard layout"), p)
        })
        .collect();
    if dists.sum() < f32::INFINITY {
        Ok(centroids)
    } else {
        Err(KMeansError(
            "the inertia is not finite (non-finite embeddings)".into(),
        ))
    }
}

/// k-means++ seeding (Arthur & Vassilvitskii) of `k` ≥ 1 rows of `z` (n ≥ 1, m), standard
/// layout. The first centroid is a uniform draw, each next one a draw weighted by the squared
/// distance to the nearest centroid so far, exactly as linfa's `weighted_k_means_plusplus`
/// with unit weights: same `WeightedIndex` draws, same distances (Σ (c_i − p_i)² in index
/// order), same strict-`<` minimum, and index 0 without a draw when every distance is 0.
pub fn plusplus(z: ArrayView2<f32>, k: usize, rng: &mut impl Rng) -> Array2<f32> {
    let (n, m) = z.dim();
    let zs = z.as_slice().expect("standard layout");
    let row = |i: usize| &zs[i * m..(i + 1) * m];
    let mut centroids = Array2::zeros((k, m)); // (k, m)
    let first = WeightedIndex::new(std::iter::repeat_n(1.0f32, n))
        .expect("at least one point")
        .sample(rng);
    centroids.row_mut(0).assign(&z.row(first));
    let c0 = row(first);
    // Squared distance of each point to its nearest centroid so far, (n).
    let mut min_d: Vec<f32> = (0..n).map(|i| sq_dist(c0, row(i))).collect();
    for c in 1..k {
        if c > 1 {
            let prev = centroids.row(c - 1);
            let prev = prev.as_slice().expect("standard layout");
            for (i, d) in min_d.iter_mut().enumerate() {
                let dc = sq_dist(prev, row(i));
                if dc < *d {
                    *d = dc;
                }
            }
        }
        let next = WeightedIndex::new(&min_d)
            .map(|w| w.sample(rng))
            .unwrap_or(0);
        centroids.row_mut(c).assign(&z.row(next));
    }
    centroids
}

#[cfg(test)]
mod tests {
    use super::*;
    use linfa::traits::Fit;
    use linfa::DatasetBase;
    use linfa_clustering::{KMeans, KMeansInit};
    use ndarray_rand::rand_distr::StandardNormal;
    use ndarray_rand::RandomExt;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// linfa's k-means with its own k-means++ seeding, as the codebook init was before.
    fn linfa_plusplus(z: ArrayView2<f32>, k: usize, rng: &ChaCha8Rng) -> Array2<f32> {
        let mean_var = z.var_axis(Axis(0), 0.0).mean().unwrap();
        let tolerance = (REL_TOL * mean_var).sqrt().max(f32::MIN_POSITIVE);
        KMeans::params_with_rng(k, rng.clone())
            .n_runs(1)
            .max_n_iterations(MAX_ITER)
            .tolerance(tolerance)
            .init_method(KMeansInit::KMeansPlusPlus)
            .fit(&DatasetBase::from(z.to_owned()))
            .unwrap()
            .centroids()
            .to_owned()
    }

    #[test]
    fn equals_linfa_kmeans_plusplus_bit_for_bit() {
        let mut gen = ChaCha8Rng::seed_from_u64(7);
        // m = 12 takes the screened (matrix-product) search path.
        for (n, m, k) in [
            (500, 2, 16),
            (300, 5, 64),
            (64, 3, 64),
            (200, 1, 7),
            (300, 12, 32),
        ] {
            let z = Array2::<f32>::random_using((n, m), StandardNormal, &mut gen) * 3.0;
            for seed in 0..3 {
                let rng = ChaCha8Rng::seed_from_u64(seed);
                let ours = kmeans(z.view(), k, &rng).unwrap();
                assert_eq!(ours, linfa_plusplus(z.view(), k, &rng), "n={n} m={m} k={k}");
            }
        }
    }

    #[test]
    fn duplicate_points_seed_without_draws() {
        // Every distance is 0 after the first draw: the remaining seeds are point 0, as linfa.
        let z = Array2::<f32>::ones((10, 2));
        let rng = ChaCha8Rng::seed_from_u64(1);
        let ours = kmeans(z.view(), 4, &rng).unwrap();
        assert_eq!(ours, linfa_plusplus(z.view(), 4, &rng));
    }

    #[test]
    fn non_finite_embeddings_fail_as_in_linfa() {
        let mut z = Array2::<f32>::from_shape_fn((50, 2), |(i, j)| (i * 3 + j) as f32);
        z[[7, 1]] = f32::NAN;
        let rng = ChaCha8Rng::seed_from_u64(2);
        assert!(kmeans(z.view(), 4, &rng).is_err());
        let linfa = KMeans::params_with_rng(4, rng.clone())
            .n_runs(1)
            .max_n_iterations(MAX_ITER)
            .init_method(KMeansInit::Precomputed(plusplus(
                z.view(),
                4,
                &mut rng.clone(),
            )))
            .fit(&DatasetBase::from(z.clone()));
        assert!(linfa.is_err());
    }

    #[test]
    fn no_clusters_or_no_points_is_an_error() {
        let rng = ChaCha8Rng::seed_from_u64(0);
        assert!(kmeans(Array2::<f32>::zeros((3, 2)).view(), 0, &rng).is_err());
        assert!(kmeans(Array2::<f32>::zeros((0, 2)).view(), 1, &rng).is_err());
    }
}

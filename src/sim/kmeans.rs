//! k-means for the codebook init: k-means++ seeding, then linfa's m_k-means iterations, on
//! vqsim's own exact nearest search.
//!
//! linfa's `KMeans` does not run plain Lloyd: each update step counts the old centre as one
//! more point of its cluster (centre ← (old centre + Σ members) / (members + 1)), so an empty
//! cluster keeps its centre instead of becoming undefined (m_k-means). scikit-learn's
//! `KMeans(n_init=1)`, used by `torch_ref.py`, runs Lloyd (plain means; an empty cluster is
//! re-seeded at a far point).
//!
//! linfa-clustering 0.8 computes one generic distance per (point, centroid) pair: at S = 1 024
//! its iterations took most of an early run, at S = 4 096 about 95%. Here the assignment is
//! `nearest::nearest_parallel` (a matrix-product screen and an exact re-check, on every idle
//! thread), which returns the same argmin as linfa's loop; the update and the stopping rule
//! are linfa's, in linfa's order, so the centroids are linfa's bit for bit (the tests run
//! linfa itself as the oracle).
//!
//! linfa 0.8 seeds k-means++ by recomputing, for every new centroid, each point's distance to
//! all centroids chosen so far: O(n·k²) distances. `plusplus` draws the same points from the
//! same RNG stream with the same f32 distances, but keeps each point's running minimum: O(n·k).

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::distributions::{Distribution, WeightedIndex};
use rand::Rng;
use rayon::prelude::*;

use crate::sim::nearest::{nearest_parallel, sq_dist, PointsByDim};

/// m_k-means iterations allowed (the built-in model: at most 50, one run).
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
/// bit as linfa's `KMeans::params_with_rng(k, rng)` with `KMeansInit::KMeansPlusPlus`, and the
/// same failure on non-finite embeddings.
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

/// linfa's m_k-means iterations from `centroids` (k, m) on `z` (n, m), standard layout
/// (linfa-clustering 0.8 `KMeans::fit`, one run): assign each point to its nearest centroid
/// (the argmin of Σ (c_i − p_i)² in index order, ties to the lowest index), then centre ←
/// (Σ members + old centre) / (members + 1) with the members summed in point order; stop when
/// the shift ‖new − old‖ (f32 sum in element order, f64 square root) falls below `tolerance` or
/// after `MAX_ITER` iterations. Fails, as linfa's fit does, when the inertia of the last
/// assignment (ndarray's sum of the n distances) is not finite.
fn mk_means(
    z: ArrayView2<f32>,
    mut centroids: Array2<f32>,
    tolerance: f32,
) -> Result<Array2<f32>, KMeansError> {
    let (n, m) = z.dim();
    let k = centroids.nrows();
    let zs = z.as_slice().expect("standard layout");
    let mut assign = vec![0; n];
    let mut next = Array2::<f32>::zeros((k, m)); // (k, m)
    let mut counts = vec![0usize; k];
    for _ in 0..MAX_ITER {
        nearest_parallel(z, centroids.view(), &mut assign);
        next.fill(0.0);
        counts.fill(1);
        let sums = next.as_slice_mut().expect("standard layout");
        for (row, &a) in zs.chunks_exact(m.max(1)).zip(&assign) {
            for (c, &v) in sums[a * m..(a + 1) * m].iter_mut().zip(row) {
                *c += v;
            }
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
    // `next` holds the centroids the last assignment was made against.
    let inertia: Array1<f32> = zs
        .chunks_exact(m.max(1))
        .zip(&assign)
        .map(|(p, &a)| {
            sq_dist(
                &next.as_slice().expect("standard layout")[a * m..(a + 1) * m],
                p,
            )
        })
        .collect();
    if inertia.sum() < f32::INFINITY {
        Ok(centroids)
    } else {
        // linfa's words, so that a failed run's message is what it was.
        Err(KMeansError(
            "Fitting failed: No inertia improvement (-inf)".into(),
        ))
    }
}

/// k-means++ seeding (Arthur & Vassilvitskii) of `k` ≥ 1 rows of `z` (n ≥ 1, m), standard
/// layout. The first centroid is a uniform draw, each next one a draw weighted by the squared
/// distance to the nearest centroid so far, exactly as linfa's `weighted_k_means_plusplus`
/// with unit weights: same `WeightedIndex` draws, same distances (Σ (c_i − p_i)² in index
/// order), same strict-`<` minimum, and index 0 without a draw when every distance is 0.
pub fn plusplus(z: ArrayView2<f32>, k: usize, rng: &mut impl Rng) -> Array2<f32> {
    let n = z.nrows();
    let by_dim = PointsByDim::new(z); // (m, n): each new centroid's distances in m passes
    let mut centroids = Array2::zeros((k, z.ncols())); // (k, m)
                                                       // Squared distance of each point to its nearest centroid so far, (n); the points go out
                                                       // to rayon's threads in tasks, each point's minimum its own, so any split gives the same.
    let mut min_d = vec![f32::INFINITY; n];
    let closer = |c: &[f32], min_d: &mut [f32], first: bool| {
        min_d
            .par_chunks_mut(SEED_TASK)
            .enumerate()
            .for_each_init(Vec::new, |d, (t, md)| {
                d.resize(md.len(), 0.0);
                by_dim.sq_dists_in(c, t * SEED_TASK..t * SEED_TASK + md.len(), d);
                for (m, &dc) in md.iter_mut().zip(d.iter()) {
                    if first || dc < *m {
                        *m = dc;
                    }
                }
            });
    };
    let first = WeightedIndex::new(std::iter::repeat_n(1.0f32, n))
        .expect("at least one point")
        .sample(rng);
    centroids.row_mut(0).assign(&z.row(first));
    closer(
        centroids.row(0).as_slice().expect("standard layout"),
        &mut min_d,
        true,
    );
    for c in 1..k {
        if c > 1 {
            closer(
                centroids.row(c - 1).as_slice().expect("standard layout"),
                &mut min_d,
                false,
            );
        }
        let next = WeightedIndex::new(&min_d)
            .map(|w| w.sample(rng))
            .unwrap_or(0);
        centroids.row_mut(c).assign(&z.row(next));
    }
    centroids
}

/// Points per task of the k-means++ distance updates.
const SEED_TASK: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;
    use linfa::traits::Fit;
    use linfa::DatasetBase;
    use linfa_clustering::{KMeans, KMeansInit};
    use ndarray_rand::rand_distr::{StandardNormal, Uniform};
    use ndarray_rand::RandomExt;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// linfa's k-means from `init`, with the codebook init's tolerance and iteration cap.
    fn linfa(
        z: ArrayView2<f32>,
        k: usize,
        rng: &ChaCha8Rng,
        init: KMeansInit<f32>,
    ) -> Result<Array2<f32>, linfa_clustering::KMeansError> {
        let mean_var = z.var_axis(Axis(0), 0.0).mean().unwrap();
        let tolerance = (REL_TOL * mean_var).sqrt().max(f32::MIN_POSITIVE);
        Ok(KMeans::params_with_rng(k, rng.clone())
            .n_runs(1)
            .max_n_iterations(MAX_ITER)
            .tolerance(tolerance)
            .init_method(init)
            .fit(&DatasetBase::from(z.to_owned()))?
            .centroids()
            .to_owned())
    }

    /// linfa's k-means with its own k-means++ seeding, as the codebook init was before.
    fn linfa_plusplus(z: ArrayView2<f32>, k: usize, rng: &ChaCha8Rng) -> Array2<f32> {
        linfa(z, k, rng, KMeansInit::KMeansPlusPlus).unwrap()
    }

    /// linfa's m_k-means iterations from our seeds (linfa's own seeding is O(n·k²)).
    fn linfa_from_our_seeds(z: ArrayView2<f32>, k: usize, rng: &ChaCha8Rng) -> Array2<f32> {
        let seeds = plusplus(z, k, &mut rng.clone());
        linfa(z, k, rng, KMeansInit::Precomputed(seeds)).unwrap()
    }

    #[test]
    fn equals_linfa_kmeans_plusplus_bit_for_bit() {
        let mut gen = ChaCha8Rng::seed_from_u64(7);
        // m ≤ 8 takes the direct search, m > 8 the matrix-product screen; n = 1 500 splits the
        // search into tasks.
        for (n, m, k) in [
            (500, 2, 16),
            (300, 5, 64),
            (64, 3, 64),
            (200, 1, 7),
            (300, 12, 32),
            (1500, 16, 40),
            (400, 9, 3),
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
    fn equals_linfa_iterations_at_codebook_sizes() {
        // S in the hundreds and thousands, where the search's screen keeps few candidates.
        let mut gen = ChaCha8Rng::seed_from_u64(8);
        for (n, m, k) in [(3000, 2, 1024), (2500, 16, 512), (2000, 64, 256)] {
            let z = Array2::<f32>::random_using((n, m), StandardNormal, &mut gen);
            let rng = ChaCha8Rng::seed_from_u64(1);
            let ours = kmeans(z.view(), k, &rng).unwrap();
            assert_eq!(
                ours,
                linfa_from_our_seeds(z.view(), k, &rng),
                "n={n} m={m} k={k}"
            );
        }
    }

    #[test]
    fn ties_go_where_linfa_sends_them() {
        // Points on a small integer grid: many points lie exactly as far from two centres.
        let mut gen = ChaCha8Rng::seed_from_u64(9);
        for (n, m, k) in [(400, 2, 12), (400, 10, 12), (300, 1, 5)] {
            let z = Array2::<i32>::random_using((n, m), Uniform::new(0, 4), &mut gen)
                .mapv(|v: i32| v as f32);
            for seed in 0..4 {
                let rng = ChaCha8Rng::seed_from_u64(seed);
                let ours = kmeans(z.view(), k, &rng).unwrap();
                assert_eq!(ours, linfa_plusplus(z.view(), k, &rng), "n={n} m={m} k={k}");
            }
        }
    }

    #[test]
    fn duplicate_points_and_empty_clusters_as_linfa() {
        // Every distance is 0 after the first draw: the remaining seeds are point 0, as linfa.
        let z = Array2::<f32>::ones((10, 2));
        let rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(
            kmeans(z.view(), 4, &rng).unwrap(),
            linfa_plusplus(z.view(), 4, &rng)
        );
        // 5 distinct points, each repeated, for 8 clusters: at least 3 clusters are empty and
        // keep their centres (m_k-means), in both search paths.
        for m in [3, 11] {
            let distinct = Array2::<f32>::random_using(
                (5, m),
                StandardNormal,
                &mut ChaCha8Rng::seed_from_u64(m as u64),
            );
            let z = Array2::from_shape_fn((200, m), |(i, j)| distinct[[i % 5, j]]);
            for seed in 0..4 {
                let rng = ChaCha8Rng::seed_from_u64(seed);
                let ours = kmeans(z.view(), 8, &rng).unwrap();
                assert_eq!(ours, linfa_plusplus(z.view(), 8, &rng), "m={m} seed={seed}");
                let mut used = vec![0; 200];
                nearest_parallel(z.view(), ours.view(), &mut used);
                used.sort_unstable();
                used.dedup();
                assert!(
                    used.len() <= 5,
                    "m={m}: {} clusters hold points",
                    used.len()
                );
            }
        }
    }

    #[test]
    fn same_centroids_on_any_number_of_threads() {
        // More points than one search task and one seeding task, so both split.
        let z = Array2::<f32>::random_using(
            (9000, 12),
            StandardNormal,
            &mut ChaCha8Rng::seed_from_u64(3),
        );
        let rng = ChaCha8Rng::seed_from_u64(4);
        let on = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| kmeans(z.view(), 100, &rng).unwrap())
        };
        let one = on(1);
        assert_eq!(one, on(3));
        assert_eq!(one, linfa_from_our_seeds(z.view(), 100, &rng));
    }

    #[test]
    fn non_finite_embeddings_fail_as_in_linfa() {
        let mut z = Array2::<f32>::from_shape_fn((50, 2), |(i, j)| (i * 3 + j) as f32);
        z[[7, 1]] = f32::NAN;
        let rng = ChaCha8Rng::seed_from_u64(2);
        let ours = kmeans(z.view(), 4, &rng).unwrap_err();
        let seeds = plusplus(z.view(), 4, &mut rng.clone());
        let theirs = linfa(z.view(), 4, &rng, KMeansInit::Precomputed(seeds)).unwrap_err();
        assert_eq!(ours.to_string(), format!("k-means failed: {theirs}"));
    }

    #[test]
    fn no_clusters_or_no_points_is_an_error() {
        let rng = ChaCha8Rng::seed_from_u64(0);
        assert!(kmeans(Array2::<f32>::zeros((3, 2)).view(), 0, &rng).is_err());
        assert!(kmeans(Array2::<f32>::zeros((0, 2)).view(), 1, &rng).is_err());
    }
}

//! t-SNE: separated clusters stay separated, seeds reproduce, KL falls, bad inputs are refused.

use ndarray::{s, Array2, ArrayView2};
use ndarray_rand::rand_distr::StandardNormal;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vqsim::report::tsne::{tsne, tsne_joint, tsne_with_kl, TsneError, TsneParams};

const CLUSTERS: usize = 5;
const PER: usize = 60;
const DIM: usize = 10;

/// `CLUSTERS` unit-variance Gaussian blobs in `DIM`-D whose centres are ~14 apart (σ = 10 per
/// coordinate), with their labels and centres.
fn blobs(seed: u64) -> (Array2<f64>, Vec<usize>, Array2<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres = Array2::from_shape_fn((CLUSTERS, DIM), |_| {
        10.0 * rng.sample::<f64, _>(StandardNormal)
    });
    let labels: Vec<usize> = (0..CLUSTERS * PER).map(|i| i / PER).collect();
    let x = Array2::from_shape_fn((CLUSTERS * PER, DIM), |(i, c)| {
        centres[[labels[i], c]] + rng.sample::<f64, _>(StandardNormal)
    });
    (x, labels, centres)
}

fn dist2(y: ArrayView2<f64>, i: usize, z: ArrayView2<f64>, j: usize) -> f64 {
    (y[[i, 0]] - z[[j, 0]]).powi(2) + (y[[i, 1]] - z[[j, 1]]).powi(2)
}

/// Indices of the k rows of `y` nearest to row `i` of `z` (excluding `skip`).
fn knn(
    z: ArrayView2<f64>,
    i: usize,
    y: ArrayView2<f64>,
    k: usize,
    skip: Option<usize>,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..y.nrows()).filter(|&j| Some(j) != skip).collect();
    order.sort_by(|&a, &b| dist2(z, i, y, a).total_cmp(&dist2(z, i, y, b)));
    order.truncate(k);
    order
}

/// Fraction of (point, neighbour) pairs among the 10 nearest 2-D neighbours that share a label.
fn knn_purity(y: ArrayView2<f64>, labels: &[usize]) -> f64 {
    let k = 10;
    let same: usize = (0..y.nrows())
        .map(|i| {
            knn(y, i, y, k, Some(i))
                .iter()
                .filter(|&&j| labels[j] == labels[i])
                .count()
        })
        .sum();
    same as f64 / (k * y.nrows()) as f64
}

/// Mean distance between cluster means over the mean distance of points to their own mean.
fn between_within_ratio(y: ArrayView2<f64>, labels: &[usize]) -> f64 {
    let mut means = Array2::<f64>::zeros((CLUSTERS, 2));
    for (i, &l) in labels.iter().enumerate() {
        for c in 0..2 {
            means[[l, c]] += y[[i, c]] / PER as f64;
        }
    }
    let within = labels
        .iter()
        .enumerate()
        .map(|(i, &l)| dist2(y, i, means.view(), l).sqrt())
        .sum::<f64>()
        / labels.len() as f64;
    let mut between = 0.0;
    for a in 0..CLUSTERS {
        for b in a + 1..CLUSTERS {
            between += dist2(means.view(), a, means.view(), b).sqrt();
        }
    }
    between /= (CLUSTERS * (CLUSTERS - 1) / 2) as f64;
    between / within
}

#[test]
fn separated_clusters_stay_separated() {
    for seed in [1, 2] {
        let (x, labels, _) = blobs(seed);
        let y = tsne(
            x.view(),
            &TsneParams {
                seed,
                ..TsneParams::default()
            },
        )
        .unwrap();
        assert_eq!(y.dim(), (CLUSTERS * PER, 2));
        assert!(y.iter().all(|v| v.is_finite()));
        let purity = knn_purity(y.view(), &labels);
        assert!(purity >= 0.95, "seed {seed}: 10-NN purity {purity}");
        let ratio = between_within_ratio(y.view(), &labels);
        assert!(ratio > 5.0, "seed {seed}: between/within ratio {ratio}");
    }
}

#[test]
fn embedding_is_centred() {
    let (x, _, _) = blobs(3);
    let y = tsne(x.view(), &TsneParams::default()).unwrap();
    let mean = y.mean_axis(ndarray::Axis(0)).unwrap();
    assert!(mean.iter().all(|m| m.abs() < 1e-9), "mean {mean}");
}

#[test]
fn same_seed_same_embedding_other_seed_other_embedding() {
    let (x, _, _) = blobs(4);
    let params = TsneParams {
        seed: 7,
        ..TsneParams::default()
    };
    let a = tsne(x.view(), &params).unwrap();
    let b = tsne(x.view(), &params).unwrap();
    assert_eq!(a, b);
    let c = tsne(x.view(), &TsneParams { seed: 8, ..params }).unwrap();
    assert_ne!(a, c);
}

#[test]
fn kl_divergence_decreases() {
    let (x, _, _) = blobs(5);
    let params = TsneParams::default();
    let fit = tsne_with_kl(x.view(), &params).unwrap();
    let trace = &fit.kl_trace;
    assert_eq!(trace.first().unwrap().0, 0);
    assert_eq!(trace.last().unwrap().0, params.iterations);
    let (first, last) = (trace.first().unwrap().1, trace.last().unwrap().1);
    assert!(trace.iter().all(|(_, kl)| kl.is_finite() && *kl >= 0.0));
    assert!(last < 0.5 * first, "KL {first} → {last}");
    // Without exaggeration the descent is on KL itself, so it must not go back up.
    let late: Vec<f64> = trace
        .iter()
        .filter(|(it, _)| *it >= params.exaggeration_iters)
        .map(|&(_, kl)| kl)
        .collect();
    assert!(late.len() >= 5);
    for w in late.windows(2) {
        assert!(w[1] <= w[0] + 1e-9, "KL rose after exaggeration: {late:?}");
    }
    // And the embedding returned is the one whose KL was recorded last.
    assert_eq!(fit.embedding, tsne(x.view(), &params).unwrap());
}

#[test]
fn joint_embedding_puts_each_centre_among_its_cluster() {
    let (x, labels, centres) = blobs(6);
    let params = TsneParams::default();
    let parts = tsne_joint(&[x.view(), centres.view()], &params).unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].dim(), (CLUSTERS * PER, 2));
    assert_eq!(parts[1].dim(), (CLUSTERS, 2));
    for c in 0..CLUSTERS {
        let near = knn(parts[1].view(), c, parts[0].view(), 10, None);
        assert!(
            near.iter().all(|&j| labels[j] == c),
            "centre {c} is not among its cluster's points"
        );
    }
    // The split is just the stacked run cut in two.
    let stacked = ndarray::concatenate(ndarray::Axis(0), &[x.view(), centres.view()]).unwrap();
    let whole = tsne(stacked.view(), &params).unwrap();
    assert_eq!(parts[0], whole.slice(s![..CLUSTERS * PER, ..]));
    assert_eq!(parts[1], whole.slice(s![CLUSTERS * PER.., ..]));
}

#[test]
fn perplexity_must_be_below_n() {
    let (x, _, _) = blobs(7);
    let few = x.slice(s![..30, ..]);
    for perplexity in [30.0, 31.0, 0.0, -1.0, f64::NAN] {
        let params = TsneParams {
            perplexity,
            ..TsneParams::default()
        };
        assert!(
            matches!(tsne(few, &params), Err(TsneError::Perplexity { n: 30, .. })),
            "perplexity {perplexity} accepted"
        );
    }
    let params = TsneParams {
        perplexity: 29.5,
        iterations: 50,
        ..TsneParams::default()
    };
    assert!(tsne(few, &params).is_ok());
}

#[test]
fn fewer_than_two_points_are_refused() {
    let params = TsneParams {
        perplexity: 0.5,
        ..TsneParams::default()
    };
    for n in [0, 1] {
        let x = Array2::<f64>::zeros((n, 3));
        assert_eq!(tsne(x.view(), &params), Err(TsneError::TooFewPoints(n)));
    }
    assert_eq!(tsne_joint(&[], &params), Err(TsneError::TooFewPoints(0)));
}

#[test]
fn non_finite_input_is_refused() {
    let (mut x, _, _) = blobs(8);
    x[[17, 3]] = f64::NAN;
    let params = TsneParams::default();
    assert_eq!(
        tsne(x.view(), &params),
        Err(TsneError::NonFinite { row: 17, col: 3 })
    );
    x[[17, 3]] = 0.0;
    x[[5, 0]] = f64::NEG_INFINITY;
    assert_eq!(
        tsne(x.view(), &params),
        Err(TsneError::NonFinite { row: 5, col: 0 })
    );
}

#[test]
fn learning_rate_must_be_positive() {
    let (x, _, _) = blobs(9);
    for lr in [0.0, -10.0, f64::INFINITY] {
        let params = TsneParams {
            learning_rate: Some(lr),
            ..TsneParams::default()
        };
        assert!(matches!(
            tsne(x.view(), &params),
            Err(TsneError::LearningRate(_))
        ));
    }
}

#[test]
fn early_exaggeration_must_be_at_least_one() {
    let (x, _, _) = blobs(10);
    for ex in [0.5, f64::NAN] {
        let params = TsneParams {
            early_exaggeration: ex,
            ..TsneParams::default()
        };
        assert!(matches!(
            tsne(x.view(), &params),
            Err(TsneError::EarlyExaggeration(_))
        ));
    }
}

#[test]
fn joint_sets_must_share_a_dimension() {
    let a = Array2::<f64>::zeros((10, 4));
    let b = Array2::<f64>::zeros((3, 5));
    assert_eq!(
        tsne_joint(&[a.view(), b.view()], &TsneParams::default()),
        Err(TsneError::DimensionMismatch {
            part: 1,
            got: 5,
            want: 4
        })
    );
}

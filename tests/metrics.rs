//! Known answers for every metric of docs/metrics.md on hand-built inputs, and `nearest` against brute force.

use ndarray::{array, Array2, ArrayView1, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vqsim::sim::generation::generation;
use vqsim::sim::kmeans::kmeans;
use vqsim::sim::metrics::*;
use vqsim::sim::nearest::{nearest, nearest_parallel, nearest_with, sq_dist, Scratch};
use vqsim::sim::prdc;

mod common;
use common::{euclid, radii};

fn close(a: f64, b: f64, tol: f64) {
    assert!((a - b).abs() <= tol, "{a} vs {b} (tol {tol})");
}

fn random(rng: &mut ChaCha8Rng, shape: (usize, usize), scale: f32) -> Array2<f32> {
    Array2::from_shape_fn(shape, |_| rng.gen_range(-scale..scale))
}

/// Standard normal by Box–Muller, so the tests need no extra distribution crate.
fn gaussian(rng: &mut ChaCha8Rng, shape: (usize, usize)) -> Array2<f32> {
    Array2::from_shape_fn(shape, |_| {
        let (u, v): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    })
}

// ---- mse, quant_mse ----

#[test]
fn mse_is_mean_over_points_and_dims() {
    let x = array![[0.0f32, 0.0], [1.0, 1.0]];
    let recon = array![[1.0f32, 0.0], [1.0, 3.0]];
    // Squared errors 1, 0, 0, 4 over 4 entries.
    close(mse(x.view(), recon.view()), 1.25, 1e-12);
}

#[test]
fn quant_mse_sums_dims_and_averages_points() {
    let z = array![[1.0f32, 1.0], [3.0, 0.0]];
    let codebook = array![[0.0f32, 0.0], [3.0, 2.0]];
    // ‖(1,1)‖² = 2 and ‖(0,−2)‖² = 4 → mean 3.
    close(quant_mse(z.view(), codebook.view(), &[0, 1]), 3.0, 1e-12);
}

// ---- usage: perplexity, codes_used, dead_codes ----

#[test]
fn uniform_usage_over_four_codes_has_perplexity_four() {
    let usage = code_counts(&[0, 1, 2, 3, 3, 2, 1, 0], 4);
    assert_eq!(usage, vec![2, 2, 2, 2]);
    close(perplexity(&usage), 4.0, 1e-12);
}

#[test]
fn single_used_code_has_perplexity_one() {
    let usage = code_counts(&[2; 10], 5);
    close(perplexity(&usage), 1.0, 1e-12);
    assert_eq!((codes_used(&usage), dead_codes(&usage)), (1, 4));
}

#[test]
fn uneven_usage_perplexity_and_dead_codes() {
    // Shares 1/2, 1/4, 1/4 over 5 codes: H = 1.5 ln 2, perplexity 2^1.5.
    let usage = code_counts(&[0, 0, 1, 3], 5);
    close(perplexity(&usage), 2f64.powf(1.5), 1e-12);
    assert_eq!((codes_used(&usage), dead_codes(&usage)), (3, 2));
}

// ---- pairwise spread: codebook_dist, codebook_cos, embed_dist, shrink_ratio ----

#[test]
fn two_codes_at_distance_three() {
    let codebook = array![[1.0f32, 1.0], [1.0, 4.0]];
    close(codebook_dist(codebook.view()), 3.0, 1e-12);
}

#[test]
fn codebook_dist_averages_distinct_pairs() {
    // Distances 3, 4, 5 (a 3-4-5 triangle) → mean 4.
    let codebook = array![[0.0f32, 0.0], [3.0, 0.0], [0.0, 4.0]];
    close(codebook_dist(codebook.view()), 4.0, 1e-12);
}

#[test]
fn codebook_dist_of_one_code_is_nan() {
    assert!(codebook_dist(array![[1.0f32, 2.0]].view()).is_nan());
}

#[test]
fn square_codebook_cosine_distances() {
    // 4 adjacent pairs at 90° (distance 1), 2 opposite pairs (distance 2) → 8 / 6.
    let codebook = array![[1.0f32, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]];
    close(codebook_cos(codebook.view()), 4.0 / 3.0, 1e-12);
}

#[test]
fn cosine_ignores_scale_and_zero_code_counts_one() {
    let parallel = array![[1.0f32, 2.0], [3.0, 6.0]];
    close(codebook_cos(parallel.view()), 0.0, 1e-12);
    // Pairs: (0,a) → 1, (0,b) → 1, (a,b) parallel → 0.
    let with_zero = array![[0.0f32, 0.0], [1.0, 2.0], [3.0, 6.0]];
    close(codebook_cos(with_zero.view()), 2.0 / 3.0, 1e-12);
}

#[test]
fn codebook_cos_holds_where_codes_nearly_agree_and_fails_on_nan() {
    // A collapsed codebook: 300 codes of various lengths within a milliradian of one direction,
    // and a zero code. The mean distance, about 1e-7 over the nonzero pairs, is where the closed
    // form's ‖Σu‖² ≈ S² could cancel badly. The pairs from the codes' own angles, in f64.
    let s = 300;
    let mut codes = Array2::<f32>::zeros((s + 1, 2));
    for k in 0..s {
        let (angle, radius) = (0.3 + 1e-3 * (k * 7 % s) as f64 / s as f64, 1.0 + k as f64);
        codes[[k + 1, 0]] = (radius * angle.cos()) as f32;
        codes[[k + 1, 1]] = (radius * angle.sin()) as f32;
    }
    let angles: Vec<f64> = (1..=s)
        .map(|k| (codes[[k, 1]] as f64).atan2(codes[[k, 0]] as f64))
        .collect();
    let mut sum = 0.0;
    for i in 0..s {
        for j in i + 1..s {
            sum += 2.0 * ((angles[i] - angles[j]) / 2.0).sin().powi(2); // 1 − cos
        }
    }
    let nonzero = codebook_cos(codes.slice(ndarray::s![1.., ..]));
    let expected = sum / (s * (s - 1) / 2) as f64;
    assert!(expected < 1e-6, "{expected}");
    let relative = (nonzero - expected).abs() / expected;
    assert!(relative < 1e-6, "{nonzero} vs {expected}");
    // With the zero code: s more pairs, each at distance 1.
    let expected = (sum + s as f64) / (s * (s + 1) / 2) as f64;
    close(codebook_cos(codes.view()), expected, 1e-12);
    codes[[5, 1]] = f32::NAN;
    assert!(codebook_cos(codes.view()).is_nan());
}

#[test]
fn embed_dist_uses_only_the_subsample() {
    let z = array![[0.0f32, 0.0], [100.0, 100.0], [3.0, 4.0], [-50.0, 7.0]];
    close(embed_dist(z.view(), &[0, 2]), 5.0, 1e-12);
    assert!(embed_dist(z.view(), &[1]).is_nan());
}

#[test]
fn shrink_ratio_divides_and_is_nan_without_spread() {
    close(shrink_ratio(2.0, 8.0), 0.25, 1e-12);
    assert!(shrink_ratio(2.0, 0.0).is_nan());
}

// ---- coverage ----

/// Two tight clusters of 6 points in 2-D, far apart: every 5-NN ball stays inside its cluster.
fn two_clusters() -> Array2<f32> {
    let mut z = Array2::zeros((12, 2));
    for i in 0..6 {
        let a = i as f32 * std::f32::consts::TAU / 6.0;
        z.row_mut(i).assign(&array![0.1 * a.cos(), 0.1 * a.sin()]);
        z.row_mut(6 + i)
            .assign(&array![100.0 + 0.1 * a.cos(), 0.1 * a.sin()]);
    }
    z
}

/// `prdc::coverage` on the rows `idx` of `z` against `codes`.
fn cov(z: &Array2<f32>, idx: &[usize], codes: ArrayView2<f32>) -> f64 {
    prdc::coverage(z.select(ndarray::Axis(0), idx).view(), codes, prdc::K)
}

#[test]
fn coverage_is_one_when_codes_sit_on_every_embedding() {
    let z = two_clusters();
    let all: Vec<usize> = (0..12).collect();
    close(cov(&z, &all, z.view()), 1.0, 0.0);
}

#[test]
fn coverage_is_zero_when_codes_are_far() {
    let z = two_clusters();
    let all: Vec<usize> = (0..12).collect();
    let codes = array![[50.0f32, 50.0], [-40.0, 3.0]];
    close(cov(&z, &all, codes.view()), 0.0, 0.0);
}

#[test]
fn coverage_counts_the_covered_cluster() {
    let z = two_clusters();
    let all: Vec<usize> = (0..12).collect();
    let codes = array![[0.0f32, 0.0], [50.0, 0.0]];
    close(cov(&z, &all, codes.view()), 0.5, 0.0);
    // The same on a subset holding 4 points of cluster 0 and 2 of cluster 1 (k = 5 now
    // reaches across clusters for every point, so all six balls hold the code at (50, 0)).
    close(cov(&z, &[0, 1, 2, 3, 6, 7], codes.view()), 1.0, 0.0);
}

#[test]
fn coverage_with_few_points_uses_k_n_minus_one_and_closed_balls() {
    // 1-D points 0, 1, 3 → k = 2, radii 3, 2, 3; balls [−3,3], [−1,3], [0,6].
    let z = array![[0.0f32], [1.0], [3.0]];
    let all = [0, 1, 2];
    close(cov(&z, &all, array![[5.0f32]].view()), 1.0 / 3.0, 1e-12);
    // A code on the boundary of the last ball is inside it.
    close(cov(&z, &all, array![[6.0f32]].view()), 1.0 / 3.0, 1e-12);
    close(cov(&z, &all, array![[6.5f32]].view()), 0.0, 0.0);
    close(cov(&z, &all, array![[-1.0f32]].view()), 2.0 / 3.0, 1e-12);
}

/// The point of equal-size sets: a k-means codebook of the embeddings covers them (≈ 1) at any
/// codebook size, where coverage against a fixed 1 000-point subsample was capped near S·k/n.
#[test]
fn coverage_of_a_kmeans_codebook_is_near_one_at_any_size() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    // Ten well-separated blobs of 500 points in 2-D.
    let mut z = gaussian(&mut rng, (5000, 2)) * 0.5;
    for (i, mut row) in z.rows_mut().into_iter().enumerate() {
        let a = (i % 10) as f32 * std::f32::consts::TAU / 10.0;
        row[0] += 10.0 * a.cos();
        row[1] += 10.0 * a.sin();
    }
    for s in [16, 64, 256, 1024] {
        let codes = kmeans(z.view(), s, &ChaCha8Rng::seed_from_u64(s as u64)).unwrap();
        let c = coverage(z.view(), codes.view(), None);
        assert!(c > 0.9, "S = {s}: coverage {c}");
    }
    // A codebook crowded into one blob covers about a tenth.
    let crowded = z.select(
        ndarray::Axis(0),
        &(0..64).map(|i| i * 10).collect::<Vec<_>>(),
    );
    let c = coverage(z.view(), crowded.view(), None);
    assert!(c < 0.2, "one blob: coverage {c}");
}

#[test]
fn coverage_averages_draws_of_s_embeddings() {
    // Codes on 2 of 4 far-apart clusters of identical points: every draw of 4 embeddings
    // whose balls stay inside their cluster is covered exactly where a code sits.
    let z = Array2::from_shape_fn((400, 1), |(i, _)| (i % 4) as f32 * 100.0);
    let codes = array![[0.0f32], [100.0], [0.0], [100.0]];
    let c = coverage(z.view(), codes.view(), None);
    assert!(c > 0.0 && c < 1.0, "{c}");
    // With the codes on all four clusters every ball holds one (k = 3 < 4 draws).
    let all = array![[0.0f32], [100.0], [200.0], [300.0]];
    close(coverage(z.view(), all.view(), None), 1.0, 0.0);
}

// ---- live codes, embed_var ----

#[test]
fn codebook_dist_live_ignores_dead_codes() {
    // Live codes form a 3-4-5 triangle; the dead code at the origin would pull the mean down.
    let codebook = array![[10.0f32, 0.0], [13.0, 0.0], [10.0, 4.0], [0.0, 0.0]];
    close(
        codebook_dist_live(codebook.view(), &[1, 5, 2, 0]),
        4.0,
        1e-6,
    );
    assert!(codebook_dist_live(codebook.view(), &[0, 5, 0, 0]).is_nan());
}

#[test]
fn embed_var_is_the_total_variance() {
    // Corners of a 2 × 4 rectangle: variances 1 and 4.
    let z = array![[1.0f32, 2.0], [1.0, -2.0], [-1.0, 2.0], [-1.0, -2.0]];
    close(embed_var(z.view()), 5.0, 1e-12);
    // Scaled down 1 000×, embed_rank stays the same and embed_var falls 10⁶×.
    let tiny = &z * 1e-3;
    close(embed_rank(tiny.view()), embed_rank(z.view()), 1e-9);
    close(embed_var(tiny.view()), 5e-6, 1e-12);
}

// ---- embed_rank ----

#[test]
fn effective_rank_of_isotropic_2d_data_is_two() {
    let corners = array![[1.0f32, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]];
    close(embed_rank(corners.view()), 2.0, 1e-9);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let cloud = gaussian(&mut rng, (10_000, 2));
    close(embed_rank(cloud.view()), 2.0, 0.01);
}

#[test]
fn effective_rank_of_data_on_a_line_is_one() {
    let z = Array2::from_shape_fn((100, 3), |(i, j)| {
        5.0 + (i as f32 - 50.0) * [1.0, -2.0, 0.5][j]
    });
    close(embed_rank(z.view()), 1.0, 1e-6);
}

#[test]
fn effective_rank_with_known_rotated_spectrum() {
    // Rows ±2e1, ±e2, ±e3: singular values ∝ 2:1:1, p = (½, ¼, ¼), rank = 2^1.5. A rotation
    // leaves singular values alone but makes ZcᵀZc non-diagonal, so Jacobi has work to do.
    let base = array![
        [2.0f32, 0.0, 0.0],
        [-2.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, -1.0, 0.0],
        [0.0, 0.0, 1.0],
        [0.0, 0.0, -1.0]
    ];
    let (c, s) = (0.6f32, 0.8f32);
    let rot = array![[c, -s, 0.0], [s * c, c * c, -s], [s * s, s * c, c]];
    let z = base.dot(&rot) + 7.0;
    close(embed_rank(z.view()), 2f64.powf(1.5), 1e-5);
}

#[test]
fn effective_rank_of_constant_embeddings_is_zero() {
    let z = Array2::from_elem((50, 4), 3.5f32);
    assert_eq!(embed_rank(z.view()), 0.0);
}

// ---- modes ----

fn three_means() -> Array2<f32> {
    array![[0.0f32, 0.0], [10.0, 0.0], [0.0, 10.0]]
}

#[test]
fn modes_hit_and_entropy_with_a_known_split() {
    // Three reconstructions near mode 0, one near mode 1, none near mode 2.
    let recon = array![[0.5f32, 0.1], [-1.0, 2.0], [1.0, -3.0], [9.0, 1.0]];
    let counts = mode_counts(recon.view(), three_means().view());
    assert_eq!(counts, vec![3, 1, 0]);
    assert_eq!(modes_hit(&counts), 2);
    close(
        mode_entropy(&counts),
        -(0.75 * 0.75f64.ln() + 0.25 * 0.25f64.ln()),
        1e-12,
    );
}

#[test]
fn mode_entropy_is_ln_k_for_even_reconstructions() {
    let counts = mode_counts(three_means().view(), three_means().view());
    close(mode_entropy(&counts), 3f64.ln(), 1e-12);
}

#[test]
fn weighted_mode_counts_equal_counts_of_the_repeated_rows() {
    // What `measure` relies on: a quantized reconstruction is its decoded code, so the codes
    // weighted by usage count the modes of the gathered reconstructions, including ties.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut codes = random(&mut rng, (12, 2), 12.0);
    codes.row_mut(5).assign(&array![5.0f32, 0.0]); // equidistant from modes 0 and 1
    let usage: Vec<usize> = (0..12).map(|k| (k * 7) % 5).collect();
    let rows: Vec<usize> = (0..12)
        .flat_map(|k| std::iter::repeat_n(k, usage[k]))
        .collect();
    let gathered = codes.select(ndarray::Axis(0), &rows);
    assert_eq!(
        mode_counts_weighted(codes.view(), three_means().view(), &usage),
        mode_counts(gathered.view(), three_means().view())
    );
}

#[test]
fn token_mode_entropy_is_ln_two_for_codes_split_over_two_modes() {
    let decoded = array![[0.1f32, 0.0], [0.0, -0.5], [11.0, 0.0], [9.0, 0.3]];
    close(
        token_mode_entropy(decoded.view(), three_means().view()),
        2f64.ln(),
        1e-12,
    );
}

// ---- measure ----

#[test]
fn measure_of_continuous_model_leaves_codebook_metrics_nan() {
    let means = three_means();
    let x = array![[0.0f32, 1.0], [10.0, 1.0], [1.0, 10.0], [0.0, -1.0]];
    let recon = x.clone() + 0.5;
    let z = array![[0.0f32, 0.0], [3.0, 4.0], [1.0, 1.0], [2.0, 0.0]];
    let sub = [0, 1, 2, 3];
    let obs = Observation {
        x: x.view(),
        means: means.view(),
        z: z.view(),
        recon: recon.view(),
        quantized: None,
        subsample: &sub,
        heldout: &[],
    };
    let m = measure(&obs);
    for (name, v) in [
        ("quant_mse", m.quant_mse),
        ("perplexity", m.perplexity),
        ("codes_used", m.codes_used),
        ("dead_codes", m.dead_codes),
        ("codebook_dist", m.codebook_dist),
        ("codebook_cos", m.codebook_cos),
        ("shrink_ratio", m.shrink_ratio),
        ("coverage", m.coverage),
        ("token_mode_entropy", m.token_mode_entropy),
        ("codebook_dist_live", m.codebook_dist_live),
        ("shrink_ratio_live", m.shrink_ratio_live),
        ("gen_modes_hit", m.gen_modes_hit),
        ("gen_pairwise_ratio", m.gen_pairwise_ratio),
        ("gen_frechet", m.gen_frechet),
        ("gen_coverage", m.gen_coverage),
    ] {
        assert!(v.is_nan(), "{name} = {v} while continuous");
    }
    close(m.mse, 0.25, 1e-12);
    assert!(m.heldout_mse.is_nan(), "no held-out points, no heldout_mse");
    close(m.embed_dist, embed_dist(z.view(), &sub), 0.0);
    close(m.embed_var, embed_var(z.view()), 0.0);
    assert!(m.embed_rank > 1.0 && m.embed_rank < 2.0, "{}", m.embed_rank);
    assert_eq!(m.modes_hit, 3.0);
    close(
        m.mode_entropy,
        -(0.5 * 0.5f64.ln() + 2.0 * 0.25 * 0.25f64.ln()),
        1e-12,
    );
}

#[test]
fn measure_of_quantized_model_composes_the_metrics() {
    let means = three_means();
    let x = array![[0.0f32, 0.0], [10.0, 0.0], [0.0, 10.0], [0.0, 1.0]];
    let z = array![[0.0f32, 0.0], [0.0, 3.0], [4.0, 0.0], [0.0, 1.0]];
    let codebook = array![[0.0f32, 0.0], [0.0, 3.0], [9.0, 9.0]];
    let assign = [0, 1, 0, 0];
    // Codes decode onto modes 0, 1, 1.
    let decoded = array![[0.0f32, 0.0], [10.0, 0.0], [9.0, 1.0]];
    let recon = array![[0.0f32, 0.0], [10.0, 0.0], [0.0, 0.0], [0.0, 0.0]];
    let sub = [0, 1, 2, 3];
    let obs = Observation {
        x: x.view(),
        means: means.view(),
        z: z.view(),
        recon: recon.view(),
        quantized: Some(QuantizedView {
            codebook: codebook.view(),
            assign: &assign,
            nearest: false,
            decoded_codes: decoded.view(),
            generation: true,
            residual: None,
        }),
        subsample: &sub,
        heldout: &[],
    };
    let m = measure(&obs);
    assert_eq!(m.levels.levels, 0, "one level has no level columns");
    close(m.mse, (100.0 + 1.0) / 8.0, 1e-12);
    close(m.quant_mse, (16.0 + 1.0) / 4.0, 1e-12);
    close(
        m.perplexity,
        (-(0.75 * 0.75f64.ln() + 0.25 * 0.25f64.ln())).exp(),
        1e-12,
    );
    assert_eq!((m.codes_used, m.dead_codes), (2.0, 1.0));
    // Distances 3, 9√2 and |(9, 6)|.
    let cd = (3.0 + 9.0 * 2f64.sqrt() + 9.0f64.hypot(6.0)) / 3.0;
    // Each distance is f32 (its mean f64), hence the looser tolerances.
    close(m.codebook_dist, cd, 1e-5);
    // (0,0) pairs → 1, 1; (0,3)·(9,9): cos = 27 / (3 · 9√2) = 1/√2.
    close(m.codebook_cos, (2.0 + 1.0 - 0.5f64.sqrt()) / 3.0, 1e-6);
    close(m.shrink_ratio, m.codebook_dist / m.embed_dist, 1e-12);
    close(m.coverage, coverage(z.view(), codebook.view(), None), 0.0);
    close(m.codebook_dist_live, 3.0, 1e-6);
    close(m.shrink_ratio_live, 3.0 / m.embed_dist, 1e-6);
    let g = generation(x.view(), means.view(), decoded.view(), &[3, 1, 0], &sub);
    let gen = [
        m.gen_modes_hit,
        m.gen_mode_entropy,
        m.gen_pairwise_dist,
        m.gen_pairwise_ratio,
        m.gen_frechet,
        m.gen_precision,
        m.gen_recall,
        m.gen_density,
        m.gen_coverage,
    ];
    let want = [
        g.modes_hit,
        g.mode_entropy,
        g.pairwise_dist,
        g.pairwise_ratio,
        g.frechet,
        g.prdc.precision,
        g.prdc.recall,
        g.prdc.density,
        g.prdc.coverage,
    ];
    for (a, b) in gen.iter().zip(&want) {
        assert!(a == b || (a.is_nan() && b.is_nan()), "{gen:?} vs {want:?}");
    }
    assert_eq!(m.modes_hit, 2.0);
    close(
        m.token_mode_entropy,
        -(1.0 / 3.0 * (1.0f64 / 3.0).ln() + 2.0 / 3.0 * (2.0f64 / 3.0).ln()),
        1e-12,
    );
}

#[test]
fn level_usage_measures_each_level_of_level_major_codes() {
    // Two levels of 3 codes over 4 rows: level 1 uses codes 0, 0, 1, 2; level 2 only code 2.
    let u = LevelUsage::of(&[0, 0, 1, 2, 2, 2, 2, 2], 2, 3);
    let h1 = -(0.5 * 0.5f64.ln() + 2.0 * 0.25 * 0.25f64.ln());
    assert_eq!(u.levels, 2);
    close(u.level(0).0, h1.exp(), 1e-12);
    assert_eq!(u.level(0).1, 3.0);
    assert_eq!(u.level(1), (1.0, 1.0));
    let (p, c) = u.level(2);
    assert!(p.is_nan() && c.is_nan(), "no third level");
}

#[test]
fn measure_of_residual_quantizer_sees_the_tuples_and_each_level() {
    // Two levels of 2 codes; rows (level 1, level 2) = (0, 1), (0, 1), (1, 0), (0, 0): three
    // tuples in use, whose sums (the decoder's inputs) are `tokens` and decode onto modes 0, 1, 2.
    let means = three_means();
    let x = array![[0.0f32, 0.0], [0.0, 0.0], [10.0, 0.0], [0.0, 10.0]];
    let z = array![[1.0f32, 1.0], [1.0, 2.0], [5.0, 0.0], [0.0, 0.0]];
    let codebook = array![[0.0f32, 0.0], [5.0, 0.0]];
    let assign = [0, 0, 1, 0, 1, 1, 0, 0];
    let tokens = array![[0.0f32, 0.0], [0.0, 1.0], [5.0, 0.0]];
    let token_of = [1, 1, 2, 0];
    let decoded = array![[0.0f32, 10.0], [0.0, 0.0], [10.0, 0.0]];
    let recon = array![[0.0f32, 0.0], [0.0, 0.0], [10.0, 0.0], [0.0, 10.0]];
    let sub = [0, 1, 2, 3];
    let obs = Observation {
        x: x.view(),
        means: means.view(),
        z: z.view(),
        recon: recon.view(),
        quantized: Some(QuantizedView {
            codebook: codebook.view(),
            assign: &assign[..4],
            nearest: false,
            decoded_codes: decoded.view(),
            generation: true,
            residual: Some(ResidualView {
                assign: &assign,
                levels: 2,
                tokens: tokens.view(),
                token_of: &token_of,
            }),
        }),
        subsample: &sub,
        heldout: &[],
    };
    let m = measure(&obs);
    // ‖z − Σ e‖²: rows (1, 0), (1, 1), 0, 0.
    close(m.quant_mse, (1.0 + 2.0) / 4.0, 1e-12);
    // `perplexity` and `codes_used` are level 1's (codes 0, 0, 1, 0).
    let h1 = -(0.75 * 0.75f64.ln() + 0.25 * 0.25f64.ln());
    close(m.perplexity, h1.exp(), 1e-12);
    assert_eq!((m.codes_used, m.dead_codes), (2.0, 0.0));
    close(m.levels.level(0).0, h1.exp(), 1e-12);
    // Level 2: codes 1, 1, 0, 0.
    close(m.levels.level(1).0, 2.0, 1e-12);
    assert_eq!(m.levels.level(1).1, 2.0);
    // The reconstructions hit all three modes, weighted by the tuples' usage 1, 2, 1.
    assert_eq!(m.modes_hit, 3.0);
    close(
        m.mode_entropy,
        -(0.5 * 0.5f64.ln() + 2.0 * 0.25 * 0.25f64.ln()),
        1e-12,
    );
    // Generation draws tuples by their usage.
    let g = generation(x.view(), means.view(), decoded.view(), &[1, 2, 1], &sub);
    assert_eq!(m.gen_modes_hit, g.modes_hit);
    assert_eq!(m.gen_precision, g.prdc.precision);
    // The paper's H counts every one of S codes: no counterpart over S^L tuples.
    assert!(m.token_mode_entropy.is_nan());
}

// ---- nearest ----

/// The reference: direct squared differences, strict `<` so ties keep the lowest index.
fn brute_force(q: ArrayView2<f32>, p: ArrayView2<f32>) -> Vec<usize> {
    q.rows()
        .into_iter()
        .map(|qr| {
            let qr = qr.to_vec();
            let mut best = (0, f32::INFINITY);
            for (j, pr) in p.rows().into_iter().enumerate() {
                let d = sq_dist(&qr, &pr.to_vec());
                if d < best.1 {
                    best = (j, d);
                }
            }
            best.0
        })
        .collect()
}

/// `nearest` and `nearest_parallel` against the brute-force argmin.
fn check_nearest(q: ArrayView2<f32>, p: ArrayView2<f32>) {
    let mut out = vec![usize::MAX; q.nrows()];
    nearest(q, p, &mut out);
    let want = brute_force(q, p);
    let mut parallel = vec![usize::MAX; q.nrows()];
    nearest_parallel(q, p, &mut parallel);
    assert_eq!(
        parallel,
        want,
        "nearest_parallel, q {:?}, p {:?}",
        q.dim(),
        p.dim()
    );
    let bad = out.iter().zip(&want).filter(|(a, b)| a != b).count();
    assert_eq!(
        bad,
        0,
        "{bad} mismatches for q {:?}, p {:?}",
        q.dim(),
        p.dim()
    );
}

#[test]
fn nearest_matches_brute_force_on_random_data() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for &m in &[1, 2, 3, 4, 5, 8, 9, 12, 16] {
        for &s in &[1, 7, 64, 300] {
            let q = random(&mut rng, (700, m), 3.0);
            let p = random(&mut rng, (s, m), 3.0);
            check_nearest(q.view(), p.view());
        }
    }
}

#[test]
fn nearest_is_exact_far_from_the_origin() {
    // ‖q‖² ≈ 10^7 while neighbours differ by ~10^-2 in distance: ‖q‖² − 2q·p + ‖p‖² alone
    // cannot rank these in f32, so this exercises the exact re-check of the blocked path.
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    for &m in &[4, 9, 16] {
        let q = random(&mut rng, (500, m), 0.5) + 1000.0;
        let p = random(&mut rng, (128, m), 0.5) + 1000.0;
        check_nearest(q.view(), p.view());
    }
}

#[test]
fn nearest_breaks_ties_toward_the_lowest_index() {
    // Integer grid codes (with duplicates) and half-integer queries: many exact ties.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    // 101 codes: the lanes of 8 and a tail of 5 in the direct path; 300 and 1 024 codes in
    // few dimensions: the k-d tree.
    for (m, s) in [(2, 96), (2, 101), (10, 96), (2, 1024), (3, 300), (1, 300)] {
        let p = Array2::from_shape_fn((s, m), |_| rng.gen_range(-2..=2) as f32);
        let q = Array2::from_shape_fn((400, m), |_| rng.gen_range(-5..=5) as f32 * 0.5);
        check_nearest(q.view(), p.view());
    }
    let p = array![[1.0f32, 0.0], [-1.0, 0.0], [1.0, 0.0]];
    let mut out = vec![9; 2];
    nearest(array![[0.0f32, 0.0], [1.0, 0.0]].view(), p.view(), &mut out);
    assert_eq!(out, vec![0, 0]);
}

#[test]
fn nearest_never_picks_a_nan_point() {
    // 3 points: the direct and blocked scans; 300: where a tree would be built, but a point
    // that is not finite sends the search to the scan.
    for (m, s) in [(2, 3), (9, 3), (2, 300)] {
        let mut p = Array2::<f32>::from_elem((s, m), 7.0);
        p[[0, 0]] = f32::NAN;
        p[[1, 0]] = 1.0;
        p[[2, 0]] = 0.5;
        let mut out = vec![9; 1];
        nearest(Array2::<f32>::zeros((1, m)).view(), p.view(), &mut out);
        assert_eq!(out, vec![2], "m = {m}, S = {s}");
    }
}

#[test]
fn queries_that_are_not_finite_get_the_scans_answer() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for (m, s) in [(2, 64), (2, 1024), (4, 300), (9, 64)] {
        let p = random(&mut rng, (s, m), 3.0);
        let mut q = random(&mut rng, (6, m), 3.0);
        q[[0, 0]] = f32::NAN;
        q[[1, m - 1]] = f32::INFINITY;
        q[[2, 0]] = f32::NEG_INFINITY;
        q.row_mut(3).fill(1e30);
        check_nearest(q.view(), p.view());
    }
}

#[test]
fn one_scratch_serves_searches_of_every_size() {
    // The training step keeps one `Scratch`: its tree is rebuilt for each codebook, larger or
    // smaller, and a codebook the tree refuses goes to the scan.
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let mut scratch = Scratch::default();
    let q = random(&mut rng, (256, 2), 3.0);
    for s in [1024, 300, 64, 2000, 256, 1024] {
        let mut p = random(&mut rng, (s, 2), 3.0);
        if s == 2000 {
            p[[5, 1]] = f32::INFINITY;
        }
        let mut out = vec![usize::MAX; 256];
        nearest_with(q.view(), p.view(), &mut out, &mut scratch);
        assert_eq!(out, brute_force(q.view(), p.view()), "S = {s}");
    }
}

#[test]
fn nearest_accepts_non_contiguous_views() {
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    for &m in &[3, 11] {
        let qt = random(&mut rng, (m, 300), 2.0);
        let pt = random(&mut rng, (m, 80), 2.0);
        check_nearest(qt.t(), pt.t());
    }
}

// ---- the fast pairwise paths against plain definitions on random data ----

#[test]
fn pairwise_metrics_match_their_definitions_on_random_data() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let z = random(&mut rng, (200, 3), 2.0);
    let codes = random(&mut rng, (40, 3), 2.0);
    let sub: Vec<usize> = (0..200).step_by(3).collect();
    let rows: Vec<Vec<f32>> = sub.iter().map(|&i| z.row(i).to_vec()).collect();
    let crows: Vec<Vec<f32>> = codes.rows().into_iter().map(|r| r.to_vec()).collect();
    let (n, s) = (rows.len(), crows.len());

    let mut sum = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            sum += euclid(&rows[i], &rows[j]);
        }
    }
    close(
        embed_dist(z.view(), &sub),
        sum / (n * (n - 1) / 2) as f64,
        1e-5,
    );

    let (mut dist, mut cos) = (0.0, 0.0);
    for i in 0..s {
        for j in i + 1..s {
            dist += euclid(&crows[i], &crows[j]);
            let dot: f64 = crows[i]
                .iter()
                .zip(&crows[j])
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum();
            let zero = vec![0.0f32; 3];
            cos += 1.0 - dot / (euclid(&crows[i], &zero) * euclid(&crows[j], &zero));
        }
    }
    let pairs = (s * (s - 1) / 2) as f64;
    close(codebook_dist(codes.view()), dist / pairs, 1e-5);
    close(codebook_cos(codes.view()), cos / pairs, 1e-5);

    // Coverage by sorting every row, as in the reference implementation.
    let radius = radii(&rows, prdc::K);
    let covered = (0..n)
        .filter(|&i| crows.iter().any(|c| euclid(&rows[i], c) <= radius[i]))
        .count();
    let want = covered as f64 / n as f64;
    assert!(
        want > 0.0 && want < 1.0,
        "test data should cover partly: {want}"
    );
    close(cov(&z, &sub, codes.view()), want, 0.0);
}

#[test]
fn heldout_mse_looks_only_at_the_held_out_rows() {
    let x = array![[0.0f32, 0.0], [1.0, 1.0], [2.0, 2.0]];
    let recon = array![[0.0f32, 0.0], [1.0, 3.0], [2.0, 2.0]];
    close(heldout_mse(x.view(), recon.view(), &[1]), 2.0, 1e-12);
    close(heldout_mse(x.view(), recon.view(), &[0, 2]), 0.0, 0.0);
    assert!(heldout_mse(x.view(), recon.view(), &[]).is_nan());
}

#[test]
fn code_travel_is_distance_moved_over_distance_to_the_nearest_embedding() {
    // Code 0 starts at (0, 0) and moves to (3, 4): 5. Code 1 stays at (10, 0): 0.
    let start = array![[0.0f32, 0.0], [10.0, 0.0]];
    let now = array![[3.0f32, 4.0], [10.0, 0.0]];
    // Embeddings (6, 8) and (13, 4): code 0 started 10 from the nearest, code 1 started 5.
    let z = array![[6.0f32, 8.0], [13.0, 4.0]];
    close(
        code_travel(start.view(), now.view(), z.view(), &[0, 1]),
        5.0 / 15.0,
        1e-12,
    );
    // Only the rows given count: without (13, 4), code 1 is √80 from the nearest.
    close(
        code_travel(start.view(), now.view(), z.view(), &[0]),
        5.0 / (10.0 + 80f64.sqrt()),
        1e-6,
    );
    // Codes that never moved travelled 0; codes that start on the data have nowhere to go.
    assert_eq!(
        code_travel(start.view(), start.view(), z.view(), &[0, 1]),
        0.0
    );
    assert!(code_travel(z.view(), now.view(), z.view(), &[0, 1]).is_nan());
}

// ---- the exact trees in few dimensions ----

/// `a` with `extra` zero columns after its own. A zero dimension adds +0 to each squared
/// distance, which leaves it as it was, bit for bit; with more than `kdtree::MAX_DIM`
/// dimensions no tree is built, so the padded inputs take the scans.
fn padded(a: &Array2<f32>, extra: usize) -> Array2<f32> {
    let m = a.ncols();
    Array2::from_shape_fn(
        (a.nrows(), m + extra),
        |(i, j)| if j < m { a[[i, j]] } else { 0.0 },
    )
}

#[test]
fn trees_answer_as_the_scans_do() {
    use vqsim::sim::kdtree::MAX_DIM;
    use vqsim::sim::nearest::DIRECT_MAX_DIM;
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    for ((m, s), wide) in [(1, 300), (2, 700), (2, 150), (3, 400)]
        .into_iter()
        .zip([false, true, false, true])
    {
        // Scans up to DIRECT_MAX_DIM dimensions, matrix-product screens above.
        let extra = if wide { DIRECT_MAX_DIM } else { MAX_DIM } + 1 - m;
        // Embeddings in clusters, some duplicated; codes on a coarse grid (ties), a few far.
        let mut z = gaussian(&mut rng, (3000, m));
        for i in 0..200 {
            let row = z.row(i).to_owned();
            z.row_mut(i + 1000).assign(&row);
        }
        let codes = Array2::from_shape_fn((s, m), |(i, _)| {
            let v = (rng.gen_range(-8..=8) as f32) * 0.25;
            if i % 50 == 0 {
                v * 40.0
            } else {
                v
            }
        });
        let (zp, cp) = (padded(&z, extra), padded(&codes, extra));
        let c = coverage(z.view(), codes.view(), None);
        assert!(
            c > 0.05 && c < 0.95,
            "m = {m}: coverage {c} should be partial"
        );
        // With each embedding's nearest code given, as the evaluation gives it.
        let mut assign = vec![0; z.nrows()];
        nearest(z.view(), codes.view(), &mut assign);
        let given = coverage(z.view(), codes.view(), Some(&assign));
        assert_eq!(c.to_bits(), given.to_bits(), "m = {m}, nearest codes given");
        assert_eq!(
            c.to_bits(),
            coverage(zp.view(), cp.view(), None).to_bits(),
            "m = {m}"
        );
        let (k, r) = prdc::knn_radii(codes.view(), prdc::K);
        let (kp, rp) = prdc::knn_radii(cp.view(), prdc::K);
        assert_eq!(k, kp);
        assert_eq!(r, rp, "m = {m}");
        let rows: Vec<usize> = (0..3000).step_by(7).collect();
        let now = codes.mapv(|v| v * 0.5 + 0.1);
        let t = code_travel(codes.view(), now.view(), z.view(), &rows);
        let tp = code_travel(cp.view(), padded(&now, extra).view(), zp.view(), &rows);
        assert_eq!(t.to_bits(), tp.to_bits(), "m = {m}");
        // By its definition: every code's distance to every sampled row.
        let dist = |a: ArrayView1<f32>, b: ArrayView1<f32>| {
            let d: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
            d.sqrt()
        };
        let (mut moved, mut needed) = (0.0f64, 0.0f64);
        for (e0, e) in codes.outer_iter().zip(now.outer_iter()) {
            moved += f64::from(dist(e0, e));
            let near = rows.iter().map(|&i| dist(e0, z.row(i)));
            needed += f64::from(near.fold(f32::INFINITY, f32::min));
        }
        assert_eq!(t.to_bits(), (moved / needed).to_bits(), "m = {m}");
    }
}

#[test]
fn coverage_with_draws_kept_between_evaluations_is_coverage_afresh() {
    // Embeddings epoch after epoch: nudged (the draws' trees refilled in their partitions),
    // shifted and shrunk (boxes that must be recomputed, or a new partition), one not finite
    // (no tree), back again, then fewer rows (new draws); the codes on a grid (ties).
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let z0 = gaussian(&mut rng, (3000, 2));
    let codes = Array2::from_shape_fn((400, 2), |_| (rng.gen_range(-8..=8) as f32) * 0.25);
    let nudged = &z0 + &gaussian(&mut rng, (3000, 2)).mapv(|v| v * 0.01);
    let mut odd = z0.clone();
    odd[[17, 1]] = f32::NAN;
    let fewer = z0.slice(ndarray::s![..2000, ..]).to_owned();
    let epochs = [
        z0.clone(),
        nudged,
        z0.mapv(|v| v + 1.5),
        z0.mapv(|v| v * 0.1),
        odd,
        z0.clone(),
        fewer,
    ];
    let mut draws = CoverageDraws::default();
    for (e, z) in epochs.iter().enumerate() {
        let mut assign = vec![0; z.nrows()];
        nearest(z.view(), codes.view(), &mut assign);
        let afresh = coverage(z.view(), codes.view(), Some(&assign));
        let kept = coverage_kept(z.view(), codes.view(), Some(&assign), &mut draws);
        assert_eq!(kept.to_bits(), afresh.to_bits(), "epoch {e}");
        assert!(afresh > 0.0, "epoch {e}: coverage {afresh}");
    }
}

#[test]
fn codebook_dist_and_its_live_part_from_one_pass_are_the_gathered_means() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let codebook = random(&mut rng, (301, 3), 2.0);
    for dead_every in [3, 1000] {
        let usage: Vec<usize> = (0..301).map(|k| usize::from(k % dead_every != 1)).collect();
        let live: Vec<usize> = (0..301).filter(|&k| usage[k] > 0).collect();
        let gathered = codebook.select(ndarray::Axis(0), &live);
        let (all, part) = codebook_dists(codebook.view(), &usage);
        assert_eq!(all.to_bits(), codebook_dist(codebook.view()).to_bits());
        assert_eq!(
            part.to_bits(),
            mean_pairwise_dist(gathered.view()).to_bits()
        );
        assert_eq!(
            part.to_bits(),
            codebook_dist_live(codebook.view(), &usage).to_bits()
        );
    }
    let one_live = codebook_dists(codebook.view(), &[vec![0; 300], vec![1]].concat());
    assert!(one_live.1.is_nan() && one_live.0.is_finite());
}

/// The distances by dimension are `sq_dist` bit for bit, in the one-pass kernel (m ≤ 4) and the
/// pass per dimension (m > 4) alike, over ranges of any start and length.
#[test]
fn distances_by_dimension_are_sq_dist_bit_for_bit() {
    use vqsim::sim::nearest::PointsByDim;
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    for m in 1..=6 {
        let points = Array2::from_shape_fn((77, m), |(i, _)| {
            rng.gen_range(-1.0f32..1.0) * 10f32.powi(i as i32 % 9 - 4)
        });
        let by_dim = PointsByDim::new(points.view());
        let q: Vec<f32> = (0..m).map(|_| rng.gen_range(-2.0f32..2.0)).collect();
        for range in [0..77, 3..77, 5..13, 40..41, 9..9] {
            let mut out = vec![f32::NAN; 80];
            by_dim.sq_dists_in(&q, range.clone(), &mut out);
            for (o, j) in out.iter().zip(range.clone()) {
                let want = sq_dist(&q, points.row(j).as_slice().unwrap());
                assert_eq!(
                    o.to_bits(),
                    want.to_bits(),
                    "m = {m}, point {j} of {range:?}"
                );
            }
        }
    }
}

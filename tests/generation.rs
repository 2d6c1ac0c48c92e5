//! Known answers for the generation metrics: the Fréchet distance of Gaussians in closed form,
//! precision / recall / density / coverage on hand-made sets and against their definitions,
//! and the generated set of a hand-made codebook.

use ndarray::{array, Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vqsim::sim::generation::*;
use vqsim::sim::prdc::{self, prdc};

mod common;
use common::{euclid, radii};

fn close(a: f64, b: f64, tol: f64) {
    assert!((a - b).abs() <= tol, "{a} vs {b} (tol {tol})");
}

// ---- Fréchet distance ----

#[test]
fn frechet_of_diagonal_gaussians_is_mean_gap_plus_root_gaps() {
    // Commuting covariances: ‖μ₁ − μ₂‖² + Σ (√a_i − √b_i)².
    let (mu1, mu2) = (array![1.0, 2.0, 0.0], array![4.0, -2.0, 0.0]);
    let a = Array2::from_diag(&array![4.0, 1.0, 9.0]);
    let b = Array2::from_diag(&array![1.0, 1.0, 16.0]);
    close(frechet(&mu1, &a, &mu2, &b), 25.0 + 1.0 + 0.0 + 1.0, 1e-10);
    close(frechet(&mu1, &a, &mu1, &a), 0.0, 1e-10);
}

#[test]
fn frechet_of_non_commuting_2x2_covariances() {
    // For a 2×2 PSD M, tr √M = √(tr M + 2√det M); with M ~ AB (same eigenvalues).
    let a: Array2<f64> = array![[2.0, 1.0], [1.0, 1.0]];
    let b = array![[1.0, 0.5], [0.5, 3.0]];
    let ab = a.dot(&b);
    let det = ab[[0, 0]] * ab[[1, 1]] - ab[[0, 1]] * ab[[1, 0]];
    let cross = (ab.diag().sum() + 2.0 * det.sqrt()).sqrt();
    let mu = Array1::zeros(2);
    let want = a.diag().sum() + b.diag().sum() - 2.0 * cross;
    close(frechet(&mu, &a, &mu, &b), want, 1e-10);
    close(frechet(&mu, &b, &mu, &a), want, 1e-10);
}

#[test]
fn frechet_of_samples_approaches_the_closed_form() {
    // N((0,0), I) vs N((3,0), diag(4, 1)): 9 + (2 − 1)² + 0 = 10.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let n = 200_000;
    let normal = |rng: &mut ChaCha8Rng| {
        let (u, v): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let p = Array2::from_shape_fn((n, 2), |_| normal(&mut rng) as f32);
    let q = Array2::from_shape_fn((n, 2), |(_, j)| {
        let e = normal(&mut rng);
        (if j == 0 { 3.0 + 2.0 * e } else { e }) as f32
    });
    let (m1, c1) = gaussian_fit(p.view());
    let (m2, c2) = gaussian_fit(q.view());
    close(frechet(&m1, &c1, &m2, &c2), 10.0, 0.1);
}

#[test]
fn gaussian_fit_is_mean_and_unbiased_covariance() {
    let p = array![[0.0f32, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]];
    let (mu, cov) = gaussian_fit(p.view());
    assert_eq!(mu, array![1.0, 1.0]);
    // Each coordinate: deviations ±1 four times, / (n − 1) = 4/3; independent.
    assert_eq!(cov, array![[4.0 / 3.0, 0.0], [0.0, 4.0 / 3.0]]);
}

// ---- precision, recall, density, coverage ----

#[test]
fn prdc_on_a_hand_made_line() {
    // Real 0..5 on a line, k = 1: every real ball has radius 1 ([x−1, x+1], closed).
    // Fakes 0.5 and 10: 0.5 sits in the balls of 0 and 1, 10 in none; the fakes' own
    // 1-NN radius is 9.5, which reaches every real point.
    let real = array![[0.0f32], [1.0], [2.0], [3.0], [4.0], [5.0]];
    let fake = array![[0.5f32], [10.0]];
    let m = prdc(real.view(), fake.view(), 1);
    close(m.precision, 0.5, 0.0);
    close(m.recall, 1.0, 0.0);
    close(m.density, 2.0 / 2.0, 0.0);
    close(m.coverage, 2.0 / 6.0, 1e-15);
    // Fakes far away: nothing.
    let far = array![[100.0f32], [101.0]];
    let m = prdc(real.view(), far.view(), 1);
    assert_eq!(
        (m.precision, m.recall, m.density, m.coverage),
        (0.0, 0.0, 0.0, 0.0)
    );
    // One point per set is too few for a ball.
    assert!(prdc(real.view(), array![[1.0f32]].view(), 1)
        .precision
        .is_nan());
}

#[test]
fn prdc_of_a_set_against_itself_is_full() {
    let real = array![
        [0.0f32, 0.0],
        [1.0, 0.0],
        [0.0, 1.0],
        [5.0, 5.0],
        [6.0, 5.0],
        [5.0, 7.0]
    ];
    let m = prdc(real.view(), real.view(), 2);
    assert_eq!((m.precision, m.recall, m.coverage), (1.0, 1.0, 1.0));
}

#[test]
fn prdc_matches_its_definitions_on_random_data() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let real = Array2::from_shape_fn((150, 3), |_| rng.gen_range(-2.0f32..2.0));
    let fake = Array2::from_shape_fn((120, 3), |_| rng.gen_range(-1.0f32..3.0));
    let rows =
        |a: &Array2<f32>| -> Vec<Vec<f32>> { a.rows().into_iter().map(|r| r.to_vec()).collect() };
    let (r, f) = (rows(&real), rows(&fake));
    let k = prdc::K;
    let (rr, rf) = (radii(&r, k), radii(&f, k));
    let inside = |p: &[f32], c: &[f32], rad: f64| euclid(p, c) <= rad;
    let precision = f
        .iter()
        .filter(|y| r.iter().zip(&rr).any(|(x, &d)| inside(y, x, d)))
        .count() as f64
        / f.len() as f64;
    let recall = r
        .iter()
        .filter(|x| f.iter().zip(&rf).any(|(y, &d)| inside(x, y, d)))
        .count() as f64
        / r.len() as f64;
    let density = f
        .iter()
        .map(|y| r.iter().zip(&rr).filter(|(x, &d)| inside(y, x, d)).count())
        .sum::<usize>() as f64
        / (k * f.len()) as f64;
    let coverage = r
        .iter()
        .zip(&rr)
        .filter(|(x, &d)| f.iter().any(|y| inside(y, x, d)))
        .count() as f64
        / r.len() as f64;
    let m = prdc(real.view(), fake.view(), k);
    assert!(
        precision > 0.1 && precision < 0.9,
        "test data should overlap partly"
    );
    close(m.precision, precision, 1e-12);
    close(m.recall, recall, 1e-12);
    close(m.density, density, 1e-12);
    close(m.coverage, coverage, 1e-12);
    close(prdc::coverage(real.view(), fake.view(), k), coverage, 1e-12);
}

// ---- the generated set ----

#[test]
fn sample_tokens_follows_usage_and_needs_a_used_code() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let t = sample_tokens(&[3, 0, 1], 40_000, &mut rng);
    let share = t.iter().filter(|&&k| k == 0).count() as f64 / t.len() as f64;
    close(share, 0.75, 0.01);
    assert!(t.iter().all(|&k| k != 1), "a dead code is never drawn");
    assert!(sample_tokens(&[0, 0], 10, &mut rng).is_empty());
}

/// Real data: 500 points on each of two modes (±(10, 0)) with a uniform jitter in
/// [−0.5, 0.5]², the first point of each exactly on its mode; two codes decode onto the modes.
fn two_modes() -> (Array2<f32>, Array2<f32>, Array2<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let x = Array2::from_shape_fn((1000, 2), |(i, j)| {
        let centre = match (i % 2, j) {
            (0, 0) => -10.0,
            (1, 0) => 10.0,
            _ => 0.0,
        };
        let jitter = if i < 2 {
            0.0
        } else {
            rng.gen_range(-0.5f32..0.5)
        };
        centre + jitter
    });
    let means = array![[-10.0f32, 0.0], [10.0, 0.0]];
    let decoded = means.clone();
    (x, means, decoded)
}

#[test]
fn generation_from_both_codes_covers_both_modes() {
    let (x, means, decoded) = two_modes();
    let all: Vec<usize> = (0..1000).collect();
    let g = generation(x.view(), means.view(), decoded.view(), &[500, 500], &all);
    assert_eq!(g.modes_hit, 2.0);
    close(g.mode_entropy, 2f64.ln(), 1e-3);
    // Pairs across modes are 20 apart, within a mode ~0: mean ≈ 10 for both sets.
    close(g.pairwise_ratio, 1.0, 0.05);
    close(g.pairwise_dist, 10.0, 0.5);
    // Generated: two points with the data's means; only the data's small jitter differs.
    // Every fake sits on a real point (rows 0 and 1), so inside its ball.
    assert!(g.frechet < 0.5, "{}", g.frechet);
    assert_eq!(g.prdc.precision, 1.0);
}

#[test]
fn generation_from_one_code_reaches_one_mode() {
    let (x, means, decoded) = two_modes();
    let all: Vec<usize> = (0..1000).collect();
    let g = generation(x.view(), means.view(), decoded.view(), &[1000, 0], &all);
    assert_eq!(g.modes_hit, 1.0);
    assert_eq!(g.mode_entropy, 0.0);
    assert_eq!(g.pairwise_dist, 0.0);
    assert_eq!(g.pairwise_ratio, 0.0);
    // Mean gap 10² plus the real spread along x (variance ≈ 100) that the generator lacks.
    assert!(g.frechet > 150.0, "{}", g.frechet);
    assert!(g.prdc.coverage <= 0.5, "{}", g.prdc.coverage);
}

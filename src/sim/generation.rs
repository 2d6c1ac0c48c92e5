//! Generation diversity (the paper's Fig. 1 and generation tables, on synthetic data).
//!
//! The paper's §4.2 assumes a generative model that learns the token distribution perfectly.
//! So the generated set is: N tokens (N = data set size) drawn i.i.d. from the empirical code
//! distribution (the share of points assigned to each code), each decoded. It is compared with
//! the real data: modes it reaches, its spread, a Fréchet distance, and the k-NN manifold
//! metrics of `prdc` on equal-size subsets.
//!
//! Drawn from the empirical usage, the generated set is the reconstructions resampled:
//! `gen_modes_hit` and `gen_mode_entropy` restate `modes_hit` and `mode_entropy` (the same
//! decoded codes with the same weights, up to the draw's noise: a code used by a few points may
//! be missed, shares wobble by about 1/√N). They carry no information of their own; the
//! spread, Fréchet and k-NN metrics compare the set with the real data.
//!
//! The generated set holds at most S distinct points (one per live code), each repeated about
//! N/S times. Its own k-NN balls therefore have radius 0 as soon as a code is drawn more than k
//! times, and `recall` (which uses them) then counts only real points lying exactly on a
//! decoded code: recall says little about a token-level generator, precision, density and
//! coverage (which use the real balls) do.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::distributions::{Distribution, WeightedIndex};
use rand::Rng;

use crate::sim::linalg::{sqrt_psd, sym_eigen};
use crate::sim::metrics::{entropy, mean_pairwise_dist, mode_counts};
use crate::sim::prdc;
use crate::sim::rng::{stream, Stream};

/// Size of the equal-size real and generated subsets for the pairwise and k-NN metrics.
pub const GEN_SUBSET: usize = 1000;
/// Above this data dimension the Fréchet distance is left NaN: its m × m eigenproblems (Jacobi,
/// O(m³) per sweep) would cost more than the training.
pub const FRECHET_MAX_DIM: usize = 64;

/// The generation metrics of one observation (field names without the `gen_` prefix).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Generation {
    /// Modes that at least one generated sample is nearest to.
    pub modes_hit: f64,
    /// Entropy of the generated samples' nearest-mode shares (max ln K).
    pub mode_entropy: f64,
    /// Mean pairwise Euclidean distance between generated samples (the paper's "pixel
    /// distance"), over a `GEN_SUBSET` subset.
    pub pairwise_dist: f64,
    /// pairwise_dist / the same over an equal-size subset of the real data.
    pub pairwise_ratio: f64,
    /// Fréchet distance between Gaussians fitted to the generated and real sets.
    pub frechet: f64,
    pub prdc: prdc::Prdc,
}

/// `n` tokens drawn i.i.d. from the shares `usage[k] / Σ usage`. Empty when no code is used.
pub fn sample_tokens(usage: &[usize], n: usize, rng: &mut impl Rng) -> Vec<usize> {
    match WeightedIndex::new(usage) {
        Ok(w) => (0..n).map(|_| w.sample(rng)).collect(),
        Err(_) => Vec::new(),
    }
}

/// Generate from the empirical code distribution and compare with the real data.
///
/// `x` (n, d) is the real data, `means` (K, d) the mixture means, `decoded_codes` (S, d) every
/// code decoded, `usage` (S) the points assigned to each code, `real_subset` the rows of `x`
/// for the equal-size comparisons. The tokens come from a fixed seed (`Stream::Generate`), the
/// same in every run and epoch, so two arms differ only by their codes and usage.
pub fn generation(
    x: ArrayView2<f32>,
    means: ArrayView2<f32>,
    decoded_codes: ArrayView2<f32>,
    usage: &[usize],
    real_subset: &[usize],
) -> Generation {
    let tokens = sample_tokens(usage, x.nrows(), &mut stream(0, Stream::Generate));
    let generated = decoded_codes.select(Axis(0), &tokens); // (N, d)
    let modes = mode_counts(generated.view(), means);
    let m = real_subset.len().min(GEN_SUBSET).min(tokens.len());
    // Tokens are i.i.d., so the first m of them are a random subset of the generated set.
    let fake = generated.slice(ndarray::s![..m, ..]);
    let real = x.select(Axis(0), &real_subset[..m]);
    let pairwise_dist = mean_pairwise_dist(fake);
    let real_dist = mean_pairwise_dist(real.view());
    Generation {
        modes_hit: modes.iter().filter(|&&c| c > 0).count() as f64,
        mode_entropy: entropy(&modes),
        pairwise_dist,
        pairwise_ratio: if real_dist > 0.0 {
            pairwise_dist / real_dist
        } else {
            f64::NAN
        },
        frechet: if x.ncols() <= FRECHET_MAX_DIM && tokens.len() >= 2 {
            let (mu_g, cov_g) = gaussian_fit(generated.view());
            let (mu_r, cov_r) = gaussian_fit(x);
            frechet(&mu_g, &cov_g, &mu_r, &cov_r)
        } else {
            f64::NAN
        },
        prdc: prdc::prdc(real.view(), fake, prdc::K),
    }
}

/// Mean (d) and unbiased covariance (d, d) of the rows of `points` (n ≥ 2, d), in f64.
pub fn gaussian_fit(points: ArrayView2<f32>) -> (Array1<f64>, Array2<f64>) {
    let n = points.nrows();
    assert!(n >= 2, "a covariance needs 2 points");
    let p = points.mapv(f64::from);
    let mu = p.mean_axis(Axis(0)).expect("n ≥ 2");
    let centred = &p - &mu;
    let cov = centred.t().dot(&centred) / (n - 1) as f64;
    (mu, cov)
}

/// Fréchet distance between N(μ₁, A) and N(μ₂, B), the FID formula:
/// ‖μ₁ − μ₂‖² + tr(A + B − 2 (A^{1/2} B A^{1/2})^{1/2}).
/// The cross term's trace is Σ √λ_i of the symmetric PSD matrix A^{1/2} B A^{1/2} (which has
/// the eigenvalues of AB), so only the symmetric eigensolver is needed.
pub fn frechet(mu1: &Array1<f64>, a: &Array2<f64>, mu2: &Array1<f64>, b: &Array2<f64>) -> f64 {
    let diff = mu1 - mu2;
    let ra = sqrt_psd(a.view());
    let mut inner = ra.dot(b).dot(&ra);
    // Symmetrise away round-off so the Jacobi solver sees an exactly symmetric matrix.
    let t = inner.t().to_owned();
    inner = (&inner + &t) / 2.0;
    let (values, _) = sym_eigen(inner.view());
    let cross: f64 = values.iter().map(|&l| l.max(0.0).sqrt()).sum();
    diff.dot(&diff) + a.diag().sum() + b.diag().sum() - 2.0 * cross
}

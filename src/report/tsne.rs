//! Exact t-SNE (van der Maaten & Hinton 2008) into 2-D, for pictures of embeddings of dimension
//! above 2, as the paper drew them.
//!
//! Follows the exact method of scikit-learn's `TSNE`: per-point Gaussian bandwidths found by
//! binary search on the entropy, symmetrised joint P, Student-t Q, early exaggeration with
//! momentum 0.5, then momentum 0.8, delta-bar-delta gains. O(n²) time and n²/2 f64 of memory
//! per call, so callers subsample to n ≲ 2000. Single-threaded, so a seed gives the same picture
//! on any machine.

use ndarray::{concatenate, Array2, ArrayView2, Axis};
use ndarray_rand::rand_distr::StandardNormal;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The binary search stops when the row entropy is this close (nats) to log(perplexity).
const ENTROPY_TOL: f64 = 1e-5;
/// Bisection steps per row at most; 100 halvings reach any bandwidth representable in f64.
const MAX_SEARCH_STEPS: usize = 100;
/// Floor on joint probabilities (scikit-learn's MACHINE_EPSILON), so log p is finite.
const P_FLOOR: f64 = f64::EPSILON;
/// Standard deviation of the initial positions: small enough that the first steps are driven
/// by P alone (scikit-learn's random init).
const INIT_STD: f64 = 1e-4;
/// Gains never shrink below this, so no coordinate freezes.
const MIN_GAIN: f64 = 0.01;
/// Momentum during early exaggeration, then after it (van der Maaten 2008, §3.4).
const MOMENTUM_EARLY: f64 = 0.5;
const MOMENTUM_LATE: f64 = 0.8;
/// The KL divergence is recorded every this many iterations (it costs one extra pass).
const KL_EVERY: usize = 50;

/// Optimisation settings; defaults are scikit-learn's, with fewer iterations (750 suffice for
/// the few well-separated clusters a codebook picture shows).
#[derive(Debug, Clone, PartialEq)]
pub struct TsneParams {
    /// Effective number of neighbours each point's Gaussian covers; must be < n.
    pub perplexity: f64,
    /// Total gradient steps, early exaggeration included.
    pub iterations: usize,
    /// Step size; `None` is scikit-learn's "auto": max(n / early_exaggeration / 4, 50).
    pub learning_rate: Option<f64>,
    /// P is multiplied by this during the first `exaggeration_iters` steps, so clusters form
    /// tight and far apart before the fine structure is fitted.
    pub early_exaggeration: f64,
    pub exaggeration_iters: usize,
    /// Seeds the initial positions (ChaCha8), the only randomness.
    pub seed: u64,
}

impl Default for TsneParams {
    fn default() -> Self {
        TsneParams {
            perplexity: 30.0,
            iterations: 750,
            learning_rate: None,
            early_exaggeration: 12.0,
            exaggeration_iters: 250,
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TsneError {
    #[error("t-SNE needs at least 2 points, got {0}")]
    TooFewPoints(usize),
    #[error(
        "point {row} has a non-finite coordinate in column {col}; drop or fix it before embedding"
    )]
    NonFinite { row: usize, col: usize },
    #[error("perplexity {perplexity} must be positive and less than the number of points ({n}); lower it or pass more points")]
    Perplexity { perplexity: f64, n: usize },
    #[error("learning_rate {0} must be positive and finite; use None for the automatic rate")]
    LearningRate(f64),
    #[error("early_exaggeration {0} must be finite and at least 1")]
    EarlyExaggeration(f64),
    #[error("set {part} has {got} columns but set 0 has {want}; jointly embedded sets must share a dimension")]
    DimensionMismatch {
        part: usize,
        got: usize,
        want: usize,
    },
}

/// An embedding with the record of its fit.
#[derive(Debug, Clone)]
pub struct Tsne {
    /// (n, 2), centred on the origin.
    pub embedding: Array2<f64>,
    /// (iteration, KL(P‖Q)) every `KL_EVERY` steps and once after the last; KL is measured
    /// against the true P, not the exaggerated one, so entries are comparable.
    pub kl_trace: Vec<(usize, f64)>,
}

/// 2-D embedding of `points` (n, d); deterministic given `params.seed`.
pub fn tsne(points: ArrayView2<f64>, params: &TsneParams) -> Result<Array2<f64>, TsneError> {
    tsne_with_kl(points, params).map(|t| t.embedding)
}

/// Embeds several sets (e.g. encoder outputs and the codebook) in one t-SNE run and returns
/// their 2-D coordinates in the same order, so each code lands among the points it represents;
/// separate runs would place them in unrelated frames.
pub fn tsne_joint(
    parts: &[ArrayView2<f64>],
    params: &TsneParams,
) -> Result<Vec<Array2<f64>>, TsneError> {
    let Some(first) = parts.first() else {
        return Err(TsneError::TooFewPoints(0));
    };
    let want = first.ncols();
    if let Some((part, p)) = parts.iter().enumerate().find(|(_, p)| p.ncols() != want) {
        return Err(TsneError::DimensionMismatch {
            part,
            got: p.ncols(),
            want,
        });
    }
    let stacked = concatenate(Axis(0), parts).expect("column counts were checked");
    let y = tsne(stacked.view(), params)?;
    let mut start = 0;
    Ok(parts
        .iter()
        .map(|p| {
            let part = y
                .slice(ndarray::s![start..start + p.nrows(), ..])
                .to_owned();
            start += p.nrows();
            part
        })
        .collect())
}

/// [`tsne`], also returning the KL divergence along the way.
pub fn tsne_with_kl(points: ArrayView2<f64>, params: &TsneParams) -> Result<Tsne, TsneError> {
    let n = points.nrows();
    let learning_rate = check(points, params)?;
    let p = joint_probabilities(points, params.perplexity); // (n(n-1)/2,) condensed

    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let mut y: Vec<[f64; 2]> = (0..n)
        .map(|_| {
            let a: f64 = rng.sample(StandardNormal);
            let b: f64 = rng.sample(StandardNormal);
            [INIT_STD * a, INIT_STD * b]
        })
        .collect();
    // Optimiser state and scratch, allocated once.
    let mut update = vec![[0.0; 2]; n];
    let mut gains: Vec<[f64; 2]> = vec![[1.0; 2]; n];
    let mut grad = vec![[0.0; 2]; n];
    let mut repulsion = vec![[0.0; 2]; n];
    let mut kl_trace = Vec::with_capacity(params.iterations / KL_EVERY + 2);

    for it in 0..params.iterations {
        if it % KL_EVERY == 0 {
            kl_trace.push((it, kl_divergence(&p, &y)));
        }
        let early = it < params.exaggeration_iters;
        if it == params.exaggeration_iters {
            // scikit-learn runs the two phases as separate descents: fresh momentum and gains.
            update.fill([0.0; 2]);
            gains.fill([1.0; 2]);
        }
        let exaggeration = if early {
            params.early_exaggeration
        } else {
            1.0
        };
        let momentum = if early { MOMENTUM_EARLY } else { MOMENTUM_LATE };
        gradient(&p, &y, exaggeration, &mut grad, &mut repulsion);
        for (((yi, ui), gi), di) in y.iter_mut().zip(&mut update).zip(&mut gains).zip(&grad) {
            for c in 0..2 {
                // Delta-bar-delta: grow the gain while the gradient keeps opposing the last
                // step's direction (still descending the same way), shrink it once it flips.
                gi[c] = if ui[c] * di[c] < 0.0 {
                    gi[c] + 0.2
                } else {
                    gi[c] * 0.8
                }
                .max(MIN_GAIN);
                ui[c] = momentum * ui[c] - learning_rate * gi[c] * di[c];
                yi[c] += ui[c];
            }
        }
    }
    kl_trace.push((params.iterations, kl_divergence(&p, &y)));

    // Centre: t-SNE is translation invariant, and plots like the origin in the middle.
    let mean = y
        .iter()
        .fold([0.0; 2], |m, yi| [m[0] + yi[0], m[1] + yi[1]])
        .map(|s| s / n as f64);
    let embedding = Array2::from_shape_fn((n, 2), |(i, c)| y[i][c] - mean[c]);
    Ok(Tsne {
        embedding,
        kl_trace,
    })
}

/// Validates inputs and settings; returns the learning rate to use.
fn check(points: ArrayView2<f64>, params: &TsneParams) -> Result<f64, TsneError> {
    let n = points.nrows();
    if n < 2 {
        return Err(TsneError::TooFewPoints(n));
    }
    if let Some(((row, col), _)) = points.indexed_iter().find(|(_, x)| !x.is_finite()) {
        return Err(TsneError::NonFinite { row, col });
    }
    let perplexity = params.perplexity;
    if !(perplexity > 0.0 && perplexity < n as f64) {
        return Err(TsneError::Perplexity { perplexity, n });
    }
    let ex = params.early_exaggeration;
    if !(ex.is_finite() && ex >= 1.0) {
        return Err(TsneError::EarlyExaggeration(ex));
    }
    match params.learning_rate {
        Some(lr) if !(lr.is_finite() && lr > 0.0) => Err(TsneError::LearningRate(lr)),
        Some(lr) => Ok(lr),
        None => Ok((n as f64 / ex / 4.0).max(50.0)),
    }
}

/// Joint probabilities p_ij = (p_j|i + p_i|j) / 2n for i < j, condensed row by row
/// ((0,1), (0,2), …, (0,n-1), (1,2), …), floored at `P_FLOOR`.
fn joint_probabilities(x: ArrayView2<f64>, perplexity: f64) -> Vec<f64> {
    let n = x.nrows();
    let x = x.as_standard_layout();
    let rows: Vec<&[f64]> = x
        .outer_iter()
        .map(|r| r.to_slice().expect("standard layout"))
        .collect();
    let mut p = vec![0.0; n * (n - 1) / 2];
    let mut dist = vec![0.0; n];
    let mut cond = vec![0.0; n];
    let target = perplexity.ln();
    let half_over_n = 0.5 / n as f64;
    for i in 0..n {
        for (dj, rj) in dist.iter_mut().zip(&rows) {
            *dj = rows[i]
                .iter()
                .zip(*rj)
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
        }
        conditional_row(&dist, i, target, &mut cond);
        for (j, &c) in cond.iter().enumerate() {
            match j.cmp(&i) {
                std::cmp::Ordering::Less => p[pair(n, j, i)] += c * half_over_n,
                std::cmp::Ordering::Greater => p[pair(n, i, j)] += c * half_over_n,
                std::cmp::Ordering::Equal => {}
            }
        }
    }
    for pij in &mut p {
        *pij = pij.max(P_FLOOR);
    }
    p
}

/// Index of pair (i, j), i < j, in the condensed layout.
fn pair(n: usize, i: usize, j: usize) -> usize {
    i * (2 * n - i - 1) / 2 + (j - i - 1)
}

/// p_j|i ∝ exp(-β d_ij) with β chosen so the row's entropy is `target` nats; `dist` holds squared
/// distances from point i. Writes the normalised row (0 at i) into `cond`.
fn conditional_row(dist: &[f64], i: usize, target: f64, cond: &mut [f64]) {
    // Measuring from the nearest neighbour leaves the row unchanged after normalisation but
    // keeps its largest term at exp(0) = 1, so no bandwidth underflows the whole row to 0.
    let (dmin, dsum) = dist
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != i)
        .fold((f64::INFINITY, 0.0), |(m, s), (_, &d)| (m.min(d), s + d));
    let mean_excess = dsum / (dist.len() - 1) as f64 - dmin;
    // Starting at 1 / (mean excess distance) makes the search independent of the data's scale.
    let mut beta = if mean_excess > 0.0 {
        1.0 / mean_excess
    } else {
        1.0
    };
    let (mut lo, mut hi) = (0.0, f64::INFINITY);
    let mut sum = 1.0;
    for _ in 0..MAX_SEARCH_STEPS {
        sum = 0.0;
        let mut weighted = 0.0;
        for (j, (&d, c)) in dist.iter().zip(cond.iter_mut()).enumerate() {
            let e = if j == i {
                0.0
            } else {
                (-beta * (d - dmin)).exp()
            };
            *c = e;
            sum += e;
            weighted += (d - dmin) * e;
        }
        // H = -Σ p ln p = ln Σe + β Σ d e / Σe for p = e / Σe.
        let entropy = sum.ln() + beta * weighted / sum;
        if (entropy - target).abs() <= ENTROPY_TOL {
            break;
        }
        if entropy > target {
            lo = beta;
            beta = if hi.is_finite() {
                0.5 * (beta + hi)
            } else {
                2.0 * beta
            };
        } else {
            hi = beta;
            beta = 0.5 * (beta + lo);
        }
    }
    for c in cond.iter_mut() {
        *c /= sum;
    }
}

/// Gradient of KL(P‖Q) w.r.t. the positions, into `grad` (n, 2); `repulsion` is scratch.
///
/// dC/dy_i = 4 Σ_j (e·p_ij − q_ij) w_ij (y_i − y_j) with w_ij = 1/(1+|y_i−y_j|²), q_ij = w_ij/Z.
/// Split as 4 (e·Σ p w Δ − Σ w² Δ / Z): both sums and Z come out of a single pass over the
/// pairs i < j, each pair updating both of its points.
fn gradient(
    p: &[f64],
    y: &[[f64; 2]],
    exaggeration: f64,
    grad: &mut [[f64; 2]],
    repulsion: &mut [[f64; 2]],
) {
    let n = y.len();
    grad.fill([0.0; 2]);
    repulsion.fill([0.0; 2]);
    let mut z = 0.0;
    let mut k = 0;
    for i in 0..n {
        let yi = y[i];
        let (attr_head, attr_tail) = grad.split_at_mut(i + 1);
        let (rep_head, rep_tail) = repulsion.split_at_mut(i + 1);
        let p_row = &p[k..k + (n - i - 1)];
        k += n - i - 1;
        let (mut ai, mut ri) = ([0.0; 2], [0.0; 2]);
        for (((yj, &pij), aj), rj) in y[i + 1..]
            .iter()
            .zip(p_row)
            .zip(attr_tail.iter_mut())
            .zip(rep_tail.iter_mut())
        {
            let dx = yi[0] - yj[0];
            let dy = yi[1] - yj[1];
            let w = 1.0 / (1.0 + dx * dx + dy * dy);
            z += w;
            let a = pij * w;
            let r = w * w;
            ai[0] += a * dx;
            ai[1] += a * dy;
            ri[0] += r * dx;
            ri[1] += r * dy;
            aj[0] -= a * dx;
            aj[1] -= a * dy;
            rj[0] -= r * dx;
            rj[1] -= r * dy;
        }
        for c in 0..2 {
            attr_head[i][c] += ai[c];
            rep_head[i][c] += ri[c];
        }
    }
    let z = 2.0 * z; // Σ over ordered pairs i ≠ j
    for (g, r) in grad.iter_mut().zip(repulsion.iter()) {
        for c in 0..2 {
            g[c] = 4.0 * (exaggeration * g[c] - r[c] / z);
        }
    }
}

/// KL(P‖Q) = Σ_{i≠j} p_ij ln(p_ij / q_ij), with P condensed as in [`joint_probabilities`].
fn kl_divergence(p: &[f64], y: &[[f64; 2]]) -> f64 {
    let n = y.len();
    let (mut z, mut kl_unnormalised) = (0.0, 0.0);
    let mut k = 0;
    for i in 0..n {
        for yj in &y[i + 1..] {
            let dx = y[i][0] - yj[0];
            let dy = y[i][1] - yj[1];
            let w = 1.0 / (1.0 + dx * dx + dy * dy);
            z += w;
            // p ln(p / (w/Z)) = p ln(p/w) + p ln Z; the ln Z part is added once below.
            kl_unnormalised += p[k] * (p[k] / w).ln();
            k += 1;
        }
    }
    let p_sum: f64 = p.iter().sum();
    2.0 * (kl_unnormalised + p_sum * (2.0 * z).ln())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Perplexity of the conditional row, exp(H).
    fn row_perplexity(cond: &[f64]) -> f64 {
        let h: f64 = cond
            .iter()
            .filter(|&&c| c > 0.0)
            .map(|&c| -c * c.ln())
            .sum();
        h.exp()
    }

    #[test]
    fn conditional_rows_reach_the_target_perplexity_at_any_scale() {
        let n = 40;
        for scale in [1e-3, 1.0, 1e4] {
            let dist: Vec<f64> = (0..n).map(|j| scale * (j as f64).powf(1.5)).collect();
            let mut cond = vec![0.0; n];
            conditional_row(&dist, 0, 7.0f64.ln(), &mut cond);
            assert_eq!(cond[0], 0.0);
            assert!((cond.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let perp = row_perplexity(&cond);
            assert!(
                (perp - 7.0).abs() < 1e-3,
                "scale {scale}: perplexity {perp}"
            );
        }
    }

    #[test]
    fn joint_probabilities_are_symmetric_and_sum_to_one() {
        let x = array![[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [-1.0, 0.5]];
        let p = joint_probabilities(x.view(), 2.0);
        assert_eq!(p.len(), 10);
        // Each unordered pair is stored once, so Σ over ordered pairs is 2 Σ p.
        assert!((2.0 * p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(pair(5, 0, 1), 0);
        assert_eq!(pair(5, 1, 2), 4);
        assert_eq!(pair(5, 3, 4), 9);
    }

    #[test]
    fn gradient_matches_finite_differences_of_kl() {
        let x = array![
            [0.0, 0.0, 1.0],
            [1.0, 0.2, 0.0],
            [0.3, 2.0, 0.5],
            [3.0, 3.0, -1.0],
            [-1.0, 0.5, 0.0],
            [0.5, -0.7, 2.0]
        ];
        let p = joint_probabilities(x.view(), 2.5);
        let y = vec![
            [0.1, -0.3],
            [1.2, 0.4],
            [-0.8, 0.9],
            [0.3, 1.7],
            [-1.1, -0.6],
            [2.0, 0.2],
        ];
        let mut grad = vec![[0.0; 2]; 6];
        let mut rep = vec![[0.0; 2]; 6];
        gradient(&p, &y, 1.0, &mut grad, &mut rep);
        let h = 1e-6;
        for i in 0..6 {
            for c in 0..2 {
                let (mut yp, mut ym) = (y.clone(), y.clone());
                yp[i][c] += h;
                ym[i][c] -= h;
                let fd = (kl_divergence(&p, &yp) - kl_divergence(&p, &ym)) / (2.0 * h);
                assert!(
                    (fd - grad[i][c]).abs() < 1e-6 * (1.0 + fd.abs()),
                    "point {i} coord {c}: analytic {} vs numeric {fd}",
                    grad[i][c]
                );
            }
        }
    }
}

//! The metrics of docs/metrics.md, computed on the full data set.
//!
//! Each metric is a small function over plain arrays; `measure` composes them from an
//! `Observation`. Single pairwise distances are f32 (through the vectorised kernel of
//! `nearest`), every sum over points or pairs is f64, and all run in a fixed order, so a metric
//! is the same bit for bit whatever thread computes it.

use ndarray::{Array2, ArrayView1, ArrayView2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::sim::generation::generation;
use crate::sim::kdtree::KdTree;
use crate::sim::linalg::sym_eigen;
use crate::sim::nearest::{nearest_one, nearest_parallel, sq_dist, PointsByDim};
use crate::sim::prdc;
use crate::sim::rng::{stream, Stream};
use crate::sim::vq::MAX_LEVELS;

/// Every metric of docs/metrics.md under its name there. Metrics that need a codebook are NaN while the
/// model is still continuous (the first phase of a deferred run).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub mse: f64,
    pub quant_mse: f64,
    pub perplexity: f64,
    pub codes_used: f64,
    pub dead_codes: f64,
    pub codebook_dist: f64,
    pub codebook_cos: f64,
    pub embed_dist: f64,
    pub shrink_ratio: f64,
    pub coverage: f64,
    pub embed_rank: f64,
    pub modes_hit: f64,
    pub mode_entropy: f64,
    pub token_mode_entropy: f64,
    /// `mse` on the held-out points only (NaN without a held-out split).
    pub heldout_mse: f64,
    /// `codebook_dist` over the live codes only (those with ≥ 1 point).
    pub codebook_dist_live: f64,
    /// codebook_dist_live / embed_dist.
    pub shrink_ratio_live: f64,
    /// Total variance of the embeddings (trace of their covariance): the scale that
    /// the scale-free `embed_rank` ignores.
    pub embed_var: f64,
    /// Generation diversity (`generation`): N tokens drawn from the code usage, decoded.
    pub gen_modes_hit: f64,
    pub gen_mode_entropy: f64,
    pub gen_pairwise_dist: f64,
    pub gen_pairwise_ratio: f64,
    pub gen_frechet: f64,
    pub gen_precision: f64,
    pub gen_recall: f64,
    pub gen_density: f64,
    pub gen_coverage: f64,
    /// Codes restarted or re-initialised since the previous history row (`quantizer.restart`):
    /// during the epoch that ended here when every epoch is measured; set by training, NaN
    /// where no quantized epoch ended.
    pub restarts: f64,
    /// How far the codes travelled against how far they had to (`code_travel`); set by
    /// training, NaN while continuous.
    pub code_travel: f64,
    /// Each level's usage of a residual quantizer: columns of their own, written only where
    /// `quantizer.residual_levels` > 1 (`crate::study::store`).
    #[serde(skip)]
    pub levels: LevelUsage,
}

/// `perplexity` and `codes_used` of each level of a residual quantizer (`perplexity_l1`,
/// `codes_used_l1`, … in the tables), from its level-major assignments.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LevelUsage {
    /// Levels measured (0 when not quantized).
    pub levels: usize,
    pub perplexity: [f64; MAX_LEVELS],
    pub codes_used: [f64; MAX_LEVELS],
}

impl LevelUsage {
    /// The usage of each level: `assign` holds L·n codes of S, level-major.
    pub fn of(assign: &[usize], levels: usize, s: usize) -> LevelUsage {
        let mut out = LevelUsage {
            levels,
            ..LevelUsage::default()
        };
        for (l, a) in assign.chunks(assign.len() / levels.max(1)).enumerate() {
            let usage = code_counts(a, s);
            out.perplexity[l] = perplexity(&usage);
            out.codes_used[l] = codes_used(&usage) as f64;
        }
        out
    }

    /// Level `l`'s (0-based) perplexity and codes used; NaN beyond the levels measured.
    pub fn level(&self, l: usize) -> (f64, f64) {
        if l < self.levels {
            (self.perplexity[l], self.codes_used[l])
        } else {
            (f64::NAN, f64::NAN)
        }
    }
}

impl Metrics {
    /// Every metric undefined: the final metrics of a run that diverged.
    pub fn nan() -> Metrics {
        let n = f64::NAN;
        Metrics {
            mse: n,
            quant_mse: n,
            perplexity: n,
            codes_used: n,
            dead_codes: n,
            codebook_dist: n,
            codebook_cos: n,
            embed_dist: n,
            shrink_ratio: n,
            coverage: n,
            embed_rank: n,
            modes_hit: n,
            mode_entropy: n,
            token_mode_entropy: n,
            heldout_mse: n,
            codebook_dist_live: n,
            shrink_ratio_live: n,
            embed_var: n,
            gen_modes_hit: n,
            gen_mode_entropy: n,
            gen_pairwise_dist: n,
            gen_pairwise_ratio: n,
            gen_frechet: n,
            gen_precision: n,
            gen_recall: n,
            gen_density: n,
            gen_coverage: n,
            restarts: n,
            code_travel: n,
            levels: LevelUsage::default(),
        }
    }
}

/// What the metrics look at: the model's view of the whole data set at one moment.
pub struct Observation<'a> {
    /// Data, (n, d).
    pub x: ArrayView2<'a, f32>,
    /// True mixture means, (K, d).
    pub means: ArrayView2<'a, f32>,
    /// Encoder outputs, (n, m).
    pub z: ArrayView2<'a, f32>,
    /// Reconstructions, (n, d): dec(q(z)) when quantized, dec(z) when continuous.
    pub recon: ArrayView2<'a, f32>,
    pub quantized: Option<QuantizedView<'a>>,
    /// Row indices used by `embed_dist` (of `z`) and by the generation metrics (of `x`).
    pub subsample: &'a [usize],
    /// Row indices of the points held out of training (may be empty).
    pub heldout: &'a [usize],
}

pub struct QuantizedView<'a> {
    /// Codebook, (S, m).
    pub codebook: ArrayView2<'a, f32>,
    /// Nearest code of every row of z, (n).
    pub assign: &'a [usize],
    /// Whether `assign` holds each row's nearest row of `codebook` by `sq_dist` in z's own
    /// space (`Quantizer::assigns_nearest_code`), so that coverage takes those distances.
    pub nearest: bool,
    /// Each code decoded, (S, d); with residual levels, each tuple in use (`residual`).
    pub decoded_codes: ArrayView2<'a, f32>,
    /// Measure the generated set too (`gen_*`, NaN otherwise): about 20 ms at the default
    /// sizes, so training asks for it at the end only.
    pub generation: bool,
    /// A residual quantizer's levels (`codebook` and `assign` above are its first level's).
    pub residual: Option<ResidualView<'a>>,
}

/// What a residual quantizer gives the metrics besides its first level: the decoder sees
/// the sum of one code per level, so the tokens are the tuples of codes in use.
pub struct ResidualView<'a> {
    /// Every level's code of every row, level-major, (L·n).
    pub assign: &'a [usize],
    pub levels: usize,
    /// Each tuple in use as the decoder receives it (the sum of its codes), (T, m).
    pub tokens: ArrayView2<'a, f32>,
    /// The tuple of every row, (n).
    pub token_of: &'a [usize],
}

/// Random draws of S embeddings that `coverage` averages over.
pub const COVERAGE_DRAWS: u64 = 10;

/// Pairwise metrics (embed_dist, coverage) look at this many embeddings at most.
pub const SUBSAMPLE: usize = 1000;

/// The rows of n that the pairwise metrics look at: `SUBSAMPLE` of them drawn from the seed's
/// own stream (all when n is smaller), sorted.
pub fn subsample(n: usize, seed: u64) -> Vec<usize> {
    let rng = &mut stream(seed, Stream::Subsample);
    let mut rows = rand::seq::index::sample(rng, n, n.min(SUBSAMPLE)).into_vec();
    rows.sort_unstable();
    rows
}

/// All metrics of one observation; the codebook metrics are NaN when `quantized` is None.
pub fn measure(obs: &Observation) -> Metrics {
    measure_kept(obs, &mut CoverageDraws::default())
}

/// `measure` with coverage's draws kept in `draws` from the evaluation before (`coverage_kept`).
pub fn measure_kept(obs: &Observation, draws: &mut CoverageDraws) -> Metrics {
    let embed_dist = embed_dist(obs.z, obs.subsample);
    let usage = obs
        .quantized
        .as_ref()
        .map(|q| code_counts(q.assign, q.codebook.nrows()));
    // What the decoder's inputs are drawn from: the codes, or a residual quantizer's tuples.
    let tuples = obs.quantized.as_ref().and_then(|q| q.residual.as_ref());
    let tuples = tuples.map(|r| code_counts(r.token_of, r.tokens.nrows()));
    let recon_modes = match (&obs.quantized, tuples.as_ref().or(usage.as_ref())) {
        // A quantized reconstruction is its code decoded (recon = decoded_codes[assign]): the
        // S decoded codes weighted by their usage count the same modes as the n rows, for less.
        (Some(q), Some(usage)) => mode_counts_weighted(q.decoded_codes, obs.means, usage),
        _ => mode_counts(obs.recon, obs.means),
    };
    // Codebook and generation metrics stay NaN while continuous.
    let mut out = Metrics {
        mse: mse(obs.x, obs.recon),
        embed_dist,
        embed_rank: embed_rank(obs.z),
        modes_hit: modes_hit(&recon_modes) as f64,
        mode_entropy: entropy(&recon_modes),
        heldout_mse: heldout_mse(obs.x, obs.recon, obs.heldout),
        embed_var: embed_var(obs.z),
        ..Metrics::nan()
    };
    if let (Some(q), Some(usage)) = (&obs.quantized, usage) {
        let tokens = tuples.as_deref().unwrap_or(&usage);
        let (codebook_dist, codebook_dist_live) = codebook_dists(q.codebook, &usage);
        out.quant_mse = match &q.residual {
            Some(r) => quant_mse(obs.z, r.tokens, r.token_of),
            None => quant_mse(obs.z, q.codebook, q.assign),
        };
        out.perplexity = perplexity(&usage);
        out.codes_used = codes_used(&usage) as f64;
        out.dead_codes = dead_codes(&usage) as f64;
        out.codebook_dist = codebook_dist;
        out.codebook_cos = codebook_cos(q.codebook);
        out.shrink_ratio = shrink_ratio(codebook_dist, embed_dist);
        out.codebook_dist_live = codebook_dist_live;
        out.shrink_ratio_live = shrink_ratio(out.codebook_dist_live, embed_dist);
        out.coverage = coverage_kept(obs.z, q.codebook, q.nearest.then_some(q.assign), draws);
        // The paper's H counts every one of the S codes, dead ones too: over the S^L tuples of
        // a residual quantizer it has no counterpart.
        if let Some(r) = &q.residual {
            out.levels = LevelUsage::of(r.assign, r.levels, q.codebook.nrows());
        } else {
            out.token_mode_entropy = token_mode_entropy(q.decoded_codes, obs.means);
        }
        if q.generation {
            let g = generation(obs.x, obs.means, q.decoded_codes, tokens, obs.subsample);
            out.gen_modes_hit = g.modes_hit;
            out.gen_mode_entropy = g.mode_entropy;
            out.gen_pairwise_dist = g.pairwise_dist;
            out.gen_pairwise_ratio = g.pairwise_ratio;
            out.gen_frechet = g.frechet;
            out.gen_precision = g.prdc.precision;
            out.gen_recall = g.prdc.recall;
            out.gen_density = g.prdc.density;
            out.gen_coverage = g.prdc.coverage;
        }
    }
    if obs.means.nrows() == 0 {
        // A data file without labels has no modes: say so, do not count against none.
        out.modes_hit = f64::NAN;
        out.mode_entropy = f64::NAN;
        out.token_mode_entropy = f64::NAN;
        out.gen_modes_hit = f64::NAN;
        out.gen_mode_entropy = f64::NAN;
    }
    out
}

/// `mse` over the rows in `heldout` only; NaN when there are none.
pub fn heldout_mse(x: ArrayView2<f32>, recon: ArrayView2<f32>, heldout: &[usize]) -> f64 {
    if heldout.is_empty() {
        return f64::NAN;
    }
    mse(gather(x, heldout).view(), gather(recon, heldout).view())
}

/// Mean over points × dims of (recon − x)².
pub fn mse(x: ArrayView2<f32>, recon: ArrayView2<f32>) -> f64 {
    assert_eq!(x.dim(), recon.dim(), "x and recon differ in shape");
    let sum: f64 = x
        .iter()
        .zip(recon.iter())
        .map(|(&a, &b)| sq(a as f64 - b as f64))
        .sum();
    sum / x.len() as f64
}

/// Mean over points of ‖z − codebook[assign]‖² (summed over latent dims).
pub fn quant_mse(z: ArrayView2<f32>, codebook: ArrayView2<f32>, assign: &[usize]) -> f64 {
    assert_eq!(z.nrows(), assign.len(), "one assignment per embedding");
    let sum: f64 = z
        .rows()
        .into_iter()
        .zip(assign)
        .map(|(zi, &a)| {
            let code = codebook.row(a);
            zi.iter()
                .zip(code.iter())
                .map(|(&u, &v)| sq(u as f64 - v as f64))
                .sum::<f64>()
        })
        .sum();
    sum / z.nrows() as f64
}

/// Points assigned to each of the `s` codes.
pub fn code_counts(assign: &[usize], s: usize) -> Vec<usize> {
    let mut counts = vec![0; s];
    for &a in assign {
        counts[a] += 1;
    }
    counts
}

/// Entropy (natural log) of the shares p_k = counts[k] / Σ counts; NaN when there is nothing.
pub fn entropy(counts: &[usize]) -> f64 {
    let total: usize = counts.iter().sum();
    if total == 0 {
        return f64::NAN;
    }
    let total = total as f64;
    -counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / total;
            p * p.ln()
        })
        .sum::<f64>()
}

/// exp(−Σ p_k ln p_k), p_k = share of points assigned to code k: the number of equally used
/// codes that would give the same entropy.
pub fn perplexity(usage: &[usize]) -> f64 {
    entropy(usage).exp()
}

/// Codes with at least one point.
pub fn codes_used(usage: &[usize]) -> usize {
    usage.iter().filter(|&&c| c > 0).count()
}

/// Codes with no point.
pub fn dead_codes(usage: &[usize]) -> usize {
    usage.len() - codes_used(usage)
}

/// Mean Euclidean distance over the S(S−1)/2 pairs of distinct codes; NaN for S < 2.
pub fn codebook_dist(codebook: ArrayView2<f32>) -> f64 {
    mean_pairwise_dist(codebook)
}

/// Mean cosine distance 1 − cos over pairs of distinct codes; a pair holding a zero-norm code
/// counts as distance 1 (no direction, so no similarity). NaN for S < 2.
///
/// In closed form, O(S·m) instead of a sum over pairs: with u the unit vectors of the nonzero
/// codes (in f64), Σ_{i<j} uᵢ·uⱼ = (‖Σ u‖² − Σ ‖u‖²) / 2, and a pair with a zero code adds no
/// cosine, so the mean is 1 − (‖Σ u‖² − Σ ‖u‖²) / (S(S − 1)).
pub fn codebook_cos(codebook: ArrayView2<f32>) -> f64 {
    let (s, m) = codebook.dim();
    if s < 2 {
        return f64::NAN;
    }
    let mut sum = vec![0.0f64; m];
    let mut own = 0.0f64;
    for row in codebook.rows() {
        let norm = row.iter().map(|&v| sq(v as f64)).sum::<f64>().sqrt();
        if norm == 0.0 {
            continue;
        }
        for (a, &v) in sum.iter_mut().zip(row) {
            let u = v as f64 / norm;
            *a += u;
            own += u * u;
        }
    }
    let total: f64 = sum.iter().map(|&a| a * a).sum();
    1.0 - (total - own) / (2.0 * pairs(s))
}

/// Mean Euclidean distance over the distinct pairs of encoder outputs z[subsample]; NaN when
/// fewer than 2 rows are sampled.
pub fn embed_dist(z: ArrayView2<f32>, subsample: &[usize]) -> f64 {
    mean_pairwise_dist(gather(z, subsample).view())
}

/// codebook_dist / embed_dist: ≈ 1 when the codes span the embeddings, ≪ 1 when they have
/// shrunk. NaN when embed_dist is 0.
pub fn shrink_ratio(codebook_dist: f64, embed_dist: f64) -> f64 {
    if embed_dist == 0.0 {
        f64::NAN
    } else {
        codebook_dist / embed_dist
    }
}

/// How far the codes travelled, against how far they had to:
///   Σ_k ‖e_k − e⁰_k‖ / Σ_k min_{i ∈ rows} ‖z_i − e⁰_k‖,
/// with e⁰ the codebook where the quantized phase started it (`start`), e the codebook `now`,
/// and z the current embeddings (the rows `rows` of `z`). The denominator is the distance from
/// each code's starting point to the nearest current embedding: how far it must move to sit on
/// the data at all. 1 = the codes moved as far as that (or further); near 0 = they stayed where
/// they began while the embeddings left. NaN when every code starts on an embedding.
pub fn code_travel(
    start: ArrayView2<f32>,
    now: ArrayView2<f32>,
    z: ArrayView2<f32>,
    rows: &[usize],
) -> f64 {
    let dist = |a: ArrayView1<f32>, b: ArrayView1<f32>| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt()
    };
    // The nearest row from a tree in few dimensions, else from an exact search. The root is
    // monotone, so the least distance is the root of the nearest row's squared one (the same
    // `sq_dist`); a NaN there means no distance was a number (infinity, as for no rows).
    let sample = gather(z, rows); // (rows, m)
    let starts = start.as_standard_layout(); // (S, m)
    let mut nearest = vec![0; starts.nrows()];
    if let Some(tree) = KdTree::new(sample.view()) {
        for (o, q) in nearest.iter_mut().zip(starts.rows()) {
            *o = tree.nearest(q.as_slice().expect("standard layout"));
        }
    } else if !rows.is_empty() {
        nearest_parallel(starts.view(), sample.view(), &mut nearest);
    }
    let sample = sample.as_slice().expect("standard layout");
    let m = z.ncols();
    let (mut moved, mut needed) = (0.0f64, 0.0f64);
    for ((e0, e), &j) in starts.outer_iter().zip(now.outer_iter()).zip(&nearest) {
        moved += f64::from(dist(e0, e));
        let d = match rows.is_empty() {
            true => f32::NAN,
            false => sq_dist(
                e0.as_slice().expect("standard layout"),
                &sample[j * m..][..m],
            ),
        };
        needed += f64::from(if d.is_nan() { f32::INFINITY } else { d.sqrt() });
    }
    if needed == 0.0 {
        f64::NAN
    } else {
        moved / needed
    }
}

/// Coverage of Naeem et al. (2020) on equal-size sets: S embeddings drawn at random
/// (without replacement) against the S codes, the share of those embeddings whose k-NN ball
/// among them (k = `prdc::K`) holds a code, averaged over `COVERAGE_DRAWS` draws. Equal sizes
/// matter: against n ≫ S embeddings even a perfect codebook covers only about S·k/n of the
/// balls. The draws come from fixed seeds (`Stream::Coverage`), the same in every run and
/// epoch, so that differences come from the model and not from the draw. `nearest`, when
/// given, holds each row's nearest code (by `sq_dist`), whose distances then need no search.
/// NaN for S < 2.
pub fn coverage(z: ArrayView2<f32>, codebook: ArrayView2<f32>, nearest: Option<&[usize]>) -> f64 {
    coverage_kept(z, codebook, nearest, &mut CoverageDraws::default())
}

/// `coverage` with the draws (and their trees) kept in `draws` from the evaluation before, as
/// a training run measures it epoch after epoch: bit for bit the same value.
pub fn coverage_kept(
    z: ArrayView2<f32>,
    codebook: ArrayView2<f32>,
    nearest: Option<&[usize]>,
    draws: &mut CoverageDraws,
) -> f64 {
    assert_eq!(
        z.ncols(),
        codebook.ncols(),
        "z and codebook differ in dimension"
    );
    let size = codebook.nrows().min(z.nrows());
    if size < 2 {
        return f64::NAN;
    }
    // The codes are prepared once for all draws, and each embedding's nearest code found once
    // for all the draws that hold it (about two thirds of the searches the draws would make
    // at S = 1 024 of 10 000), or taken from `nearest`. The draws run on rayon's threads, and
    // their shares are added in draw order.
    let codes = prdc::Fakes::new(codebook);
    let draws = draws.of(z.nrows(), size);
    let nearest = codes.nearest_sq(z, &draws.drawn, nearest);
    let shares: Vec<f64> = (draws.rows.par_iter())
        .zip(draws.trees.par_iter_mut())
        .map(|(idx, tree)| {
            let near: Vec<f32> = idx.iter().map(|&i| nearest[i]).collect();
            prdc::coverage_in(gather(z, idx).view(), tree, &codes, prdc::K, Some(&near))
        })
        .collect();
    let total: f64 = shares.into_iter().sum();
    total / COVERAGE_DRAWS as f64
}

/// `coverage`'s draws, kept from one evaluation of a run to the next: the rows of each draw
/// (from fixed seeds, so the same in every evaluation) and a k-d tree over each draw's
/// embeddings, which the next evaluation refills with the moved embeddings instead of building
/// anew (any partition gives the same answers; a refill is a pass over the points, a build
/// sorts them: at S = 1 024 the builds were 40% of coverage).
#[derive(Debug, Clone, Default)]
pub struct CoverageDraws {
    /// The embeddings and the draw size the draws were made for.
    made_for: Option<(usize, usize)>,
    rows: Vec<Vec<usize>>,
    /// Whether each embedding is in some draw.
    drawn: Vec<bool>,
    trees: Vec<KdTree>,
}

impl CoverageDraws {
    /// The draws of `size` of `n` rows, made anew when either differs from the last call.
    fn of(&mut self, n: usize, size: usize) -> &mut CoverageDraws {
        if self.made_for != Some((n, size)) {
            self.rows = (0..COVERAGE_DRAWS)
                .map(|draw| {
                    let mut rng = stream(draw, Stream::Coverage);
                    rand::seq::index::sample(&mut rng, n, size).into_vec()
                })
                .collect();
            self.drawn = vec![false; n];
            self.rows
                .iter()
                .flatten()
                .for_each(|&i| self.drawn[i] = true);
            self.trees = vec![KdTree::default(); self.rows.len()];
            self.made_for = Some((n, size));
        }
        self
    }
}

/// `codebook_dist` over the live codes (usage > 0) only. Dead codes are left out because they
/// say nothing about the tokens in use, and an EMA codebook drags its dead codes towards the
/// origin (their averages decay), which pulls `codebook_dist` down. NaN for fewer than 2 live.
pub fn codebook_dist_live(codebook: ArrayView2<f32>, usage: &[usize]) -> f64 {
    codebook_dists(codebook, usage).1
}

/// (`codebook_dist`, `codebook_dist_live`) from one pass over the pairs of codes.
pub fn codebook_dists(codebook: ArrayView2<f32>, usage: &[usize]) -> (f64, f64) {
    assert_eq!(usage.len(), codebook.nrows(), "one count per code");
    let live: Vec<bool> = usage.iter().map(|&c| c > 0).collect();
    mean_pairwise_dists(codebook, Some(&live))
}

/// Total variance of the embeddings: Σ_j Var(z_j) over latent dims (population variance, f64),
/// the mean squared distance to their centroid. 0 for no rows.
pub fn embed_var(z: ArrayView2<f32>) -> f64 {
    let n = z.nrows();
    if n == 0 {
        return 0.0;
    }
    z.columns()
        .into_iter()
        .map(|c| {
            let mean = c.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            c.iter().map(|&v| sq(v as f64 - mean)).sum::<f64>() / n as f64
        })
        .sum()
}

/// Effective rank (Roy & Vetterli 2007) of the centred embeddings Zc (all rows): with singular
/// values σ_i and p_i = σ_i / Σσ, exp(−Σ p_i ln p_i). σ_i = √λ_i of ZcᵀZc (m × m, f64, Jacobi),
/// round-off negatives clamped to 0. Between 1 (points on a line) and m (isotropic); defined as
/// 0 when Zc is all zero (no spread, no direction). Scale-free: a tiny round cloud scores the
/// full rank m, so read it beside `embed_var`.
pub fn embed_rank(z: ArrayView2<f32>) -> f64 {
    let (n, m) = z.dim();
    if n == 0 || m == 0 {
        return 0.0;
    }
    let mut mean = vec![0.0f64; m];
    for row in z.rows() {
        for (a, &v) in mean.iter_mut().zip(row.iter()) {
            *a += v as f64;
        }
    }
    mean.iter_mut().for_each(|a| *a /= n as f64);
    let mut gram = Array2::<f64>::zeros((m, m)); // (m, m) = ZcᵀZc
    let mut zc = vec![0.0f64; m];
    for row in z.rows() {
        for ((c, &v), mu) in zc.iter_mut().zip(row.iter()).zip(&mean) {
            *c = v as f64 - mu;
        }
        for a in 0..m {
            for b in a..m {
                gram[[a, b]] += zc[a] * zc[b];
            }
        }
    }
    for a in 0..m {
        for b in 0..a {
            gram[[a, b]] = gram[[b, a]];
        }
    }
    let (values, _) = sym_eigen(gram.view());
    let sigma: Vec<f64> = values.iter().map(|&l| l.max(0.0).sqrt()).collect();
    let total: f64 = sigma.iter().sum();
    if total == 0.0 {
        return 0.0;
    }
    let h: f64 = sigma
        .iter()
        .filter(|&&s| s > 0.0)
        .map(|&s| {
            let p = s / total;
            -p * p.ln()
        })
        .sum();
    h.exp()
}

/// Rows of `points` (r, d) nearest to each mixture mean (K, d), counted per mode.
pub fn mode_counts(points: ArrayView2<f32>, means: ArrayView2<f32>) -> Vec<usize> {
    mode_counts_weighted(points, means, &vec![1; points.nrows()])
}

/// `mode_counts` with row i counted `weights[i]` times.
pub fn mode_counts_weighted(
    points: ArrayView2<f32>,
    means: ArrayView2<f32>,
    weights: &[usize],
) -> Vec<usize> {
    let d = means.ncols();
    assert_eq!(points.ncols(), d, "points and means differ in dimension");
    assert_eq!(weights.len(), points.nrows(), "one weight per row");
    let mut counts = vec![0; means.nrows()];
    if means.nrows() == 0 {
        return counts;
    }
    let mu = means.as_standard_layout();
    let mu = mu.as_slice().unwrap();
    let p = points.as_standard_layout();
    for (row, &w) in p.as_slice().unwrap().chunks_exact(d.max(1)).zip(weights) {
        counts[nearest_one(row, mu, d)] += w;
    }
    counts
}

/// Mixture modes that at least one reconstruction is nearest to (from `mode_counts`).
pub fn modes_hit(recon_modes: &[usize]) -> usize {
    recon_modes.iter().filter(|&&c| c > 0).count()
}

/// Entropy of the reconstructions' nearest-mode shares (from `mode_counts`); at most ln K.
pub fn mode_entropy(recon_modes: &[usize]) -> f64 {
    entropy(recon_modes)
}

/// The paper's H: decode every code, find its nearest mode, p_k = share of the S codes whose
/// decoded point is nearest to mode k; H = −Σ p_k ln p_k (ln K when codes spread evenly).
pub fn token_mode_entropy(decoded_codes: ArrayView2<f32>, means: ArrayView2<f32>) -> f64 {
    entropy(&mode_counts(decoded_codes, means))
}

/// Mean Euclidean distance over distinct pairs of the rows of `points`; NaN for fewer than 2.
pub fn mean_pairwise_dist(points: ArrayView2<f32>) -> f64 {
    mean_pairwise_dists(points, None).0
}

/// `mean_pairwise_dist` of all rows of `points` and of the rows marked in `subset` (NaN
/// without one), from one pass over the pairs. The subset's mean is the one of its rows
/// gathered: the same distances, added in the same order (when every row is marked, the same
/// sum as the whole).
fn mean_pairwise_dists(points: ArrayView2<f32>, subset: Option<&[bool]>) -> (f64, f64) {
    let n = points.nrows();
    let marked = subset.map(|s| s.iter().filter(|&&l| l).count());
    let mean_of = |sum: f64, rows: usize| {
        if rows < 2 {
            f64::NAN
        } else {
            sum / pairs(rows)
        }
    };
    if n < 2 {
        return (f64::NAN, f64::NAN);
    }
    // Only a proper subset needs a sum of its own.
    let proper = subset.filter(|_| marked != Some(n));
    let rows = points.as_standard_layout();
    let rows = rows.as_slice().expect("standard layout");
    let m = points.ncols();
    let by_dim = PointsByDim::new(points);
    let sums = pair_sums(
        n,
        |i, d| {
            let d = &mut d[..n - 1 - i];
            by_dim.sq_dists(&rows[i * m..(i + 1) * m], i + 1, d);
            // The roots in a vectorised pass of their own; the sums stay in order.
            d.iter_mut().for_each(|v| *v = v.sqrt());
        },
        |_, v| v as f64,
        proper,
    );
    let all = add(sums.iter().map(|s| s.0));
    let part = match proper {
        // A row's pairs count for the subset when the row is in it.
        Some(s) => add(sums.iter().zip(s).filter(|(_, &l)| l).map(|(r, _)| r.1)),
        None => all,
    };
    (
        mean_of(all, n),
        marked.map_or(f64::NAN, |l| mean_of(part, l)),
    )
}

/// For each row i of n: the sum over its partners j = i+1..n of value(j, d_j), and the same
/// over the partners marked in `mask` (−0.0 without one), where `fill(i, d)` writes row i's
/// n − 1 − i values d_{i+1..n} to the front of d. Each sum runs in partner order from −0.0 (as
/// `sum` does), so it is the same however the rows are grouped: they go `SIDE` side by side,
/// so that their chains of additions overlap (one chain alone waits out the latency of each
/// addition), and in tasks to rayon's threads.
fn pair_sums(
    n: usize,
    fill: impl Fn(usize, &mut [f32]) + Sync,
    value: impl Fn(usize, f32) -> f64 + Sync,
    mask: Option<&[bool]>,
) -> Vec<(f64, f64)> {
    if n == 0 {
        return Vec::new();
    }
    let groups: Vec<[(f64, f64); SIDE]> = (0..n.div_ceil(SIDE))
        .into_par_iter()
        .with_min_len(ROWS_TASK / SIDE)
        .map_init(
            || vec![0.0f32; SIDE * n],
            |buffer, g| {
                let mut rows: [&[f32]; SIDE] = [&[]; SIDE];
                let group = rows.iter_mut().zip(buffer.chunks_exact_mut(n));
                for ((row, d), i) in group.zip(g * SIDE..n) {
                    fill(i, d);
                    *row = &d[..n - 1 - i];
                }
                side_by_side(rows, n, &value, mask)
            },
        )
        .collect();
    groups.into_iter().flatten().take(n).collect()
}

/// Rows of `pair_sums` added side by side: two adders with a latency of 4 cycles keep 8
/// chains busy.
const SIDE: usize = 8;

/// `pair_sums` of `SIDE` rows whose partners end together at `end` (a row of length l has
/// partners end − l..end).
fn side_by_side(
    rows: [&[f32]; SIDE],
    end: usize,
    value: &impl Fn(usize, f32) -> f64,
    mask: Option<&[bool]>,
) -> [(f64, f64); SIDE] {
    let tail = rows.iter().map(|r| r.len()).min().unwrap_or(0);
    let mut all = [-0.0f64; SIDE];
    let mut part = [-0.0f64; SIDE];
    // Each row's partners before the tail they all share, in order.
    for (k, row) in rows.iter().enumerate() {
        for (j, &x) in (end - row.len()..).zip(&row[..row.len() - tail]) {
            let v = value(j, x);
            all[k] += v;
            if mask.is_some_and(|m| m[j]) {
                part[k] += v;
            }
        }
    }
    // The shared tail, partner by partner across the rows.
    let tails: [&[f32]; SIDE] = std::array::from_fn(|k| &rows[k][rows[k].len() - tail..]);
    for (t, j) in (end - tail..end).enumerate() {
        match mask {
            None => (0..SIDE).for_each(|k| all[k] += value(j, tails[k][t])),
            // Adding −0.0 leaves any sum as it is: a partner not marked adds that, without
            // a branch.
            Some(m) => {
                let marked = m[j];
                for k in 0..SIDE {
                    let v = value(j, tails[k][t]);
                    all[k] += v;
                    part[k] += if marked { v } else { -0.0 };
                }
            }
        }
    }
    std::array::from_fn(|k| (all[k], part[k]))
}

/// Σ of `values` in their order, from 0: the sequential loop's sum.
fn add(values: impl Iterator<Item = f64>) -> f64 {
    let mut sum = 0.0;
    for v in values {
        sum += v;
    }
    sum
}

/// Least rows per task of `pair_sums`.
const ROWS_TASK: usize = 64;

/// Rows `idx` of `a`, (len(idx), m), as flat row copies: ndarray's `select` copies element by
/// element, about a tenth of an evaluation at S = 1 024 and m = 2.
fn gather(a: ArrayView2<f32>, idx: &[usize]) -> Array2<f32> {
    let m = a.ncols();
    let a = a.as_standard_layout();
    let rows = a.as_slice().expect("standard layout");
    let mut out = Vec::with_capacity(idx.len() * m);
    for &i in idx {
        out.extend_from_slice(&rows[i * m..(i + 1) * m]);
    }
    Array2::from_shape_vec((idx.len(), m), out).expect("len(idx) rows of m")
}

fn pairs(n: usize) -> f64 {
    (n * (n - 1)) as f64 / 2.0
}

fn sq(v: f64) -> f64 {
    v * v
}

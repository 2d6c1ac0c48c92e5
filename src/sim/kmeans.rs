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
//! settled by Yinyang bounds (`Bounds`) where they can prove the answer, and by
//! `nearest::Prepared` (a matrix-product screen and an exact re-check, on every idle thread)
//! elsewhere: both return the same argmin as linfa's loop. The update and the stopping rule
//! are linfa's, in linfa's order, so the centroids are linfa's bit for bit (the tests run
//! linfa itself as the oracle).
//!
//! linfa 0.8 seeds k-means++ by recomputing, for every new centroid, each point's distance to
//! all centroids chosen so far: O(n·k²) distances. `plusplus` draws the same points from the
//! same RNG stream with the same f32 distances, but keeps each point's running minimum and
//! looks only at the points a new seed can be closer to (`Seeding`).

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::distributions::{Distribution, Uniform, WeightedIndex};
use rand::Rng;
use rayon::prelude::*;

use crate::sim::nearest::{nearest_parallel, sq_dist, PointsByDim, Prepared};

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
    let mut bounds = Bounds::new(zs, m);
    let mut next = Array2::<f32>::zeros((k, m)); // (k, m)
    let mut counts = vec![0usize; k];
    for _ in 0..MAX_ITER {
        bounds.assign(centroids.view(), &mut assign);
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
        bounds.drift(centroids.view(), next.view(), &assign);
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

/// Yinyang bounds (Ding et al. 2015, "Yinyang K-means", after Hamerly 2010) for the
/// assignment step: per point an upper bound `upper` of its exact distance to its centre and,
/// per group of `GROUP` centres, a lower bound of its exact distance to every centre of the
/// group but its own. After an update they move by the centres' shifts (its own centre's for
/// `upper`, the group's largest for the group's bound). Every centre is searched whose group
/// bound, with `sq_dist`'s rounding (`SqDistError`), does not surely exceed the centre's f32
/// sum; the others have strictly larger f32 sums, so the lowest-index minimum of the searched
/// ones is the full search's answer, ties included. The groups are neighbourhoods of the
/// first centres, fixed for the run (`Groups`): a point is then near few of them, and the
/// others' bounds stay clear of its own distance. The first assignment is the matrix-product
/// search, whose screen yields the first bounds. f64 bounds, each operation rounded outward by
/// `up`/`down`, stay bounds of the exact values.
struct Bounds<'a> {
    z: &'a [f32], // (n, m)
    m: usize,
    err: SqDistError,
    /// Bounds only mean anything for finite data of moderate size (no overflow in the sums);
    /// otherwise every assignment is the full search.
    usable: bool,
    /// Set by the first assignment.
    groups: Option<Groups>,
    upper: Vec<f64>, // (n)
    lower: Vec<f64>, // (n, groups)
}

/// Centres per group of the lower bounds.
const GROUP: usize = 64;
/// Points per task of the assignment step.
const ASSIGN_TASK: usize = 256;
/// Points per matrix product of the search (at k = 4 096, a product of 1 MB).
const SEARCH_BLOCK: usize = 64;
/// A point with more than 1/HEAVY of the groups to search goes to the matrix product, which
/// costs about that much of a direct search of every group.
const HEAVY: usize = 8;

/// The centres in group order: group g holds the centres at positions g·GROUP.. of `order`,
/// each group in index order.
///
/// The groups are the cells of a median split of the first centres: each cell of more than
/// one group is cut at the median of its widest coordinate into two cells of whole groups
/// (the short group, when `GROUP` does not divide k, ends up last). Like Yinyang's k-means of
/// the centres it puts neighbours together, and it is cheap, exactly balanced (the matrix
/// product's screen bounds runs of `GROUP` positions) and fixed by the centres' values and
/// indices alone.
#[derive(Debug)]
struct Groups {
    order: Vec<usize>, // position → centre
    rank: Vec<usize>,  // centre → position
}

impl Groups {
    fn new(centroids: ArrayView2<f32>) -> Self {
        let mut order: Vec<usize> = (0..centroids.nrows()).collect();
        split(centroids, &mut order);
        let mut rank = vec![0; order.len()];
        for (p, &c) in order.iter().enumerate() {
            rank[c] = p;
        }
        Groups { order, rank }
    }

    /// Centre `a` comes before centre `b` in index order (both as positions).
    fn before(&self, a: usize, b: usize) -> bool {
        self.order[a] < self.order[b]
    }
}

/// Orders `idx` (centres, rows of `c`) into cells of `GROUP`, see `Groups`.
fn split(c: ArrayView2<f32>, idx: &mut [usize]) {
    if idx.len() <= GROUP {
        idx.sort_unstable();
        return;
    }
    let widest = (0..c.ncols())
        .map(|j| {
            let (lo, hi) = idx
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &i| {
                    (lo.min(c[[i, j]]), hi.max(c[[i, j]]))
                });
            hi - lo
        })
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |b, (j, w)| if w > b.1 { (j, w) } else { b },
        )
        .0;
    let left = idx.len().div_ceil(GROUP) / 2 * GROUP;
    // A total order (value, then index): the cells are the same whatever the selection does.
    idx.select_nth_unstable_by(left, |&a, &b| {
        c[[a, widest]].total_cmp(&c[[b, widest]]).then(a.cmp(&b))
    });
    let (l, r) = idx.split_at_mut(left);
    split(c, l);
    split(c, r);
}

/// The centres of one assignment, in group order, as the direct search of a group reads them.
struct Centres<'g> {
    groups: &'g Groups,
    by_dim: PointsByDim,
    k: usize,
    err: SqDistError,
}

impl Centres<'_> {
    /// Searches point `x` in every group whose bound in `l` (groups) does not clear `u`, the
    /// upper bound of its distance to its centre at position `a` (f32 sum `own`), and moves
    /// the point to the lowest-index nearest of its centre and the searched ones, with fresh
    /// bounds of the searched groups. `d` and `winner` are scratch. Returns the number of
    /// groups searched.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &self,
        x: &[f32],
        a: &mut usize,
        own: f32,
        u: &mut f64,
        l: &mut [f64],
        d: &mut Vec<f32>,
        winner: &mut Vec<f32>,
    ) -> usize {
        let (err, k, groups) = (self.err, self.k, self.groups);
        let mut best = (*a, own);
        let ga = *a / GROUP;
        let mut count = 0;
        let mut searched_own = false;
        for (g, lg) in l.iter_mut().enumerate() {
            if err.surely_less(*u, *lg) {
                continue;
            }
            let run = g * GROUP..(g * GROUP + GROUP).min(k);
            d.resize(run.len(), 0.0);
            self.by_dim.sq_dists_in(x, run.clone(), d);
            // The group is in index order: its first minimum is its lowest-index one, and no
            // index of the group is below its first.
            let low = slice_min(d);
            if low < best.1 || (low == best.1 && groups.before(run.start, best.0)) {
                let j = run.start + d.iter().position(|&v| v == low).unwrap_or(0);
                if low < best.1 || groups.before(j, best.0) {
                    best = (j, low);
                }
            }
            if best.0 / GROUP == g {
                // The winner's group so far: its bound will leave the winner out.
                winner.clear();
                winner.extend_from_slice(d);
            }
            searched_own |= g == ga;
            count += 1;
            // Every centre of the group counts until the winner is known.
            *lg = group_bound(err, run, d, None);
        }
        if count == 0 {
            return 0;
        }
        // The old centre is now one of its group's others, and the winner's group bound
        // leaves the winner out. A new winner lies in a searched group, and `winner` holds
        // the distances of the last searched group it lay in.
        if best.0 != *a {
            l[ga] = l[ga].min(down(err.below(own).max(0.0).sqrt()));
        }
        if best.0 != *a || searched_own {
            let gb = best.0 / GROUP;
            let run = gb * GROUP..(gb * GROUP + GROUP).min(k);
            l[gb] = group_bound(err, run, winner, Some(best.0));
        }
        *a = best.0;
        *u = err.distance_above(best.1);
        count
    }
}

impl<'a> Bounds<'a> {
    fn new(z: &'a [f32], m: usize) -> Self {
        Bounds {
            z,
            m,
            err: SqDistError::new(m),
            usable: m > 0 && z.iter().all(|v| v.abs() <= 1e15),
            groups: None,
            upper: Vec::new(),
            lower: Vec::new(),
        }
    }

    /// Nearest centroid of every point, `centroids` (k, m), into `assign` (n), settled by the
    /// bounds where they can, on rayon's threads in tasks of points. Returns how many groups
    /// of centres were searched point by point (n · groups for a full search).
    fn assign(&mut self, centroids: ArrayView2<f32>, assign: &mut [usize]) -> usize {
        let (n, m, k) = (assign.len(), self.m, centroids.nrows());
        let z = ArrayView2::from_shape((n, m), self.z).expect("(n, m)");
        if !self.usable {
            // m = 0 included: no coordinates to bound, every distance is 0.
            nearest_parallel(z, centroids, assign);
            return n * k.div_ceil(GROUP);
        }
        let n_groups = k.div_ceil(GROUP);
        let first = self.groups.is_none();
        let groups = self.groups.get_or_insert_with(|| Groups::new(centroids));
        let by_position = centroids.select(Axis(0), &groups.order); // (k, m)
        let centres = Centres {
            groups,
            by_dim: PointsByDim::new(by_position.view()),
            k,
            err: self.err,
        };
        if first {
            self.upper = vec![0.0; n];
            self.lower = vec![0.0; n * n_groups];
            let all: Vec<usize> = (0..n).collect();
            let refined = search_all(
                &centres,
                by_position.view(),
                self.z,
                &all,
                assign,
                &mut self.upper,
                &mut self.lower,
            );
            return n * n_groups + refined;
        }
        let cs = by_position.as_slice().expect("standard layout");
        let err = self.err;
        let settled: Vec<(usize, Vec<usize>)> = assign
            .par_chunks_mut(ASSIGN_TASK)
            .zip(self.upper.par_chunks_mut(ASSIGN_TASK))
            .zip(self.lower.par_chunks_mut(ASSIGN_TASK * n_groups))
            .zip(self.z.par_chunks(ASSIGN_TASK * m))
            .enumerate()
            .map_init(Default::default, |(d, winner), (t, (((a, u), l), zc))| {
                let (mut count, mut heavy) = (0, Vec::new());
                let points = a.iter_mut().zip(u).zip(l.chunks_mut(n_groups));
                for (p, (((a, u), l), x)) in points.zip(zc.chunks_exact(m)).enumerate() {
                    let lowest = l.iter().fold(f64::INFINITY, |b, &v| b.min(v));
                    if err.surely_less(*u, lowest) {
                        continue;
                    }
                    let mut at = centres.groups.rank[*a];
                    let own = sq_dist(&cs[at * m..(at + 1) * m], x);
                    *u = err.distance_above(own);
                    if err.surely_less(*u, lowest) {
                        continue;
                    }
                    // A point with many groups to search goes to the matrix product.
                    let open = l.iter().filter(|&&lg| !err.surely_less(*u, lg)).count();
                    if open * HEAVY > n_groups {
                        heavy.push(t * ASSIGN_TASK + p);
                        count += n_groups;
                        continue;
                    }
                    count += centres.settle(x, &mut at, own, u, l, d, winner);
                    *a = centres.groups.order[at];
                }
                (count, heavy)
            })
            .collect();
        let heavy: Vec<usize> = settled
            .iter()
            .flat_map(|(_, h)| h.iter().copied())
            .collect();
        let refined = search_all(
            &centres,
            by_position.view(),
            self.z,
            &heavy,
            assign,
            &mut self.upper,
            &mut self.lower,
        );
        settled.iter().map(|(c, _)| c).sum::<usize>() + refined
    }

    /// Moves the bounds by the shifts of the centres from `old` to `new` (both (k, m)).
    fn drift(&mut self, old: ArrayView2<f32>, new: ArrayView2<f32>, assign: &[usize]) {
        let Some(groups) = &self.groups else {
            return;
        };
        // Squares of f64 differences of f32 values, summed: m + 2 roundings of 2⁻⁵³ at most.
        let sum_up = 1.0 + (self.m as f64 + 2.0) * f64::EPSILON;
        let shift: Vec<f64> = old
            .rows()
            .into_iter()
            .zip(new.rows())
            .map(|(o, n)| {
                let sq: f64 = o
                    .iter()
                    .zip(n)
                    .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                    .sum();
                up((sq * sum_up).sqrt())
            })
            .collect();
        let group_shift: Vec<f64> = groups
            .order
            .chunks(GROUP)
            .map(|g| g.iter().fold(0.0, |b: f64, &c| b.max(shift[c])))
            .collect();
        let n_groups = group_shift.len();
        for ((u, l), &a) in self
            .upper
            .iter_mut()
            .zip(self.lower.chunks_mut(n_groups))
            .zip(assign)
        {
            *u = up(*u + shift[a]);
            for (lg, &s) in l.iter_mut().zip(&group_shift) {
                *lg = down(*lg - s).max(0.0);
            }
        }
    }
}

/// The matrix-product search for the points `idx` of `z` (n, m) against the centres, by
/// position `by_position` (k, m): their centres into `assign`, and fresh bounds from its
/// screen into `upper` and `lower` (n, groups). The screen's argmin is the lowest position
/// among the nearest; `Centres::settle` then searches the groups whose bounds do not clear
/// it for a nearest centre of lower index (and tightens their bounds). Returns the number of
/// groups it searched.
fn search_all(
    centres: &Centres,
    by_position: ArrayView2<f32>,
    z: &[f32],
    idx: &[usize],
    assign: &mut [usize],
    upper: &mut [f64],
    lower: &mut [f64],
) -> usize {
    let (m, err) = (by_position.ncols(), centres.err);
    let groups = centres.k.div_ceil(GROUP);
    let cs = by_position.as_slice().expect("standard layout");
    let q = Array2::from_shape_fn((idx.len(), m), |(r, j)| z[idx[r] * m + j]); // (h, m)
    let mut found = vec![0; idx.len()];
    let mut up_found = vec![0.0; idx.len()];
    let mut low_found = vec![0.0; idx.len() * groups];
    let prepared = Prepared::new(by_position);
    let count = found
        .par_chunks_mut(ASSIGN_TASK)
        .zip(up_found.par_chunks_mut(ASSIGN_TASK))
        .zip(low_found.par_chunks_mut(ASSIGN_TASK * groups))
        .zip(q.axis_chunks_iter(Axis(0), ASSIGN_TASK).into_par_iter())
        .map_init(Default::default, |(gram, d, winner), (((a, u), l), qc)| {
            // Blocks whose (rows, k) products stay in a core's cache between the product
            // and the screen that reads them back.
            let rows = SEARCH_BLOCK;
            let blocks = a.chunks_mut(rows).zip(l.chunks_mut(rows * groups));
            for ((a, l), qb) in blocks.zip(qc.axis_chunks_iter(Axis(0), rows)) {
                prepared.nearest_bounded(qb, a, GROUP, l, gram);
            }
            let mut count = 0;
            let points = a.iter_mut().zip(u).zip(l.chunks_mut(groups));
            for (((a, u), l), x) in points.zip(qc.rows()) {
                let x = x.to_slice().expect("rows of a standard-layout array");
                for v in l.iter_mut() {
                    *v = down(v.max(0.0).sqrt());
                }
                let own = sq_dist(&cs[*a * m..(*a + 1) * m], x);
                *u = err.distance_above(own);
                count += centres.settle(x, a, own, u, l, d, winner);
            }
            count
        })
        .sum();
    for (((&i, &a), &u), l) in idx
        .iter()
        .zip(&found)
        .zip(&up_found)
        .zip(low_found.chunks(groups))
    {
        assign[i] = centres.groups.order[a];
        upper[i] = u;
        lower[i * groups..(i + 1) * groups].copy_from_slice(l);
    }
    count
}

/// The smallest of `d` (`f32::INFINITY` when empty), lane by lane so that it vectorises;
/// the same value as a scan in order for values without NaN.
fn slice_min(d: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut acc = [f32::INFINITY; LANES];
    let lanes = d.chunks_exact(LANES);
    let rest = lanes.remainder();
    for c in lanes {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = if v < *a { v } else { *a };
        }
    }
    acc.iter()
        .chain(rest)
        .fold(f32::INFINITY, |b, &v| if v < b { v } else { b })
}

/// Lower bound of the exact distance from a point to every centre of `run` but `winner`,
/// from the point's f32 sums `d` to them.
fn group_bound(
    err: SqDistError,
    run: std::ops::Range<usize>,
    d: &[f32],
    winner: Option<usize>,
) -> f64 {
    let low = run
        .zip(d)
        .filter(|&(j, _)| Some(j) != winner)
        .fold(f32::INFINITY, |b, (_, &dj)| b.min(dj));
    down(err.below(low).max(0.0).sqrt())
}

/// `x` rounded up, resp. down, past one f64 rounding of the operation that made it.
fn up(x: f64) -> f64 {
    x * (1.0 + 4.0 * f64::EPSILON)
}

fn down(x: f64) -> f64 {
    x * (1.0 - 4.0 * f64::EPSILON)
}

/// k-means++ seeding (Arthur & Vassilvitskii) of `k` ≥ 1 rows of `z` (n ≥ 1, m). The first
/// centroid is a uniform draw, each next one a draw weighted by the squared distance to the
/// nearest centroid so far, exactly as linfa's `weighted_k_means_plusplus` with unit weights:
/// same `WeightedIndex` draws, same distances (Σ (c_i − p_i)² in index order), same strict-`<`
/// minimum, and index 0 without a draw when every distance is 0 (or one is NaN).
pub fn plusplus(z: ArrayView2<f32>, k: usize, rng: &mut impl Rng) -> Array2<f32> {
    let z = z.as_standard_layout();
    let mut centroids = Array2::zeros((k, z.ncols())); // (k, m)
    let first = WeightedIndex::new(std::iter::repeat_n(1.0f32, z.nrows()))
        .expect("at least one point")
        .sample(rng);
    centroids.row_mut(0).assign(&z.row(first));
    let mut seeding = Seeding::new(
        z.as_slice().expect("standard layout"),
        z.nrows(),
        z.ncols(),
        k,
        first,
    );
    for c in 1..k {
        let next = seeding.draw(rng);
        centroids.row_mut(c).assign(&z.row(next));
        if c + 1 < k {
            seeding.add(next);
        }
    }
    centroids
}

/// The state of k-means++ between draws: each point's squared distance to its nearest seed
/// so far (the draw's weights) and which seed that is.
///
/// A new seed c can lower a point's distance only if it is closer than its seed a:
/// ‖c − x‖ ≥ ‖c − a‖ − ‖x − a‖, so when ‖c − a‖ ≥ 2 r_a, r_a the largest distance of a's
/// points to a, none of a's points moves and they are not looked at. The test runs on the
/// computed f32 sums with their rounding error bounded (`SqDistError`), so a skipped point is
/// one whose f32 distance to c is not below its current one: the weights stay bit for bit
/// those of the full pass (the minimum of the same numbers, whatever the order).
struct Seeding<'a> {
    z: &'a [f32], // (n, m)
    m: usize,
    err: SqDistError,
    min_d: Vec<f32>, // (n)
    /// The seeds so far as points of `z`, and per seed the points it is nearest to with their
    /// `min_d` and their rows (a seed's own copy, read in sweeps rather than gathered from
    /// all of `z`), the largest of these `min_d`, and the f32 sum from the seed beyond which
    /// a new seed clears them all (`SqDistError::clearing_sum`).
    seeds: Vec<usize>,
    members: Vec<Vec<(u32, f32)>>,
    rows: Vec<Vec<f32>>,
    radius: Vec<f32>,
    clear_at: Vec<f32>,
    /// The seeds by dimension, (m, k), and a new seed's distances to them, (k).
    k: usize,
    seed_cols: Vec<f32>,
    to_seeds: Vec<f32>,
    /// `cum[i]` = min_d[0] + … + min_d[i] in f32, summed in index order as `WeightedIndex`
    /// does; valid below `clean`, the lowest point whose weight changed since.
    cum: Vec<f32>,
    clean: usize,
    /// Scratch of `add`: the points of one seed it has to look at, and their distances.
    cand: Vec<u32>,
    dist: Vec<f32>,
    /// Some weight is NaN: `WeightedIndex` refuses, the draw is index 0. A NaN distance never
    /// wins the strict `<`, so the set of NaN weights is fixed by the first seed.
    nan: bool,
}

impl<'a> Seeding<'a> {
    /// After the first seed, point `first`, of at most `k`.
    fn new(z: &'a [f32], n: usize, m: usize, k: usize, first: usize) -> Self {
        let row = |i: usize| &z[i * m..(i + 1) * m];
        let min_d: Vec<f32> = (0..n).map(|i| sq_dist(row(first), row(i))).collect();
        let radius = min_d.iter().copied().fold(0.0, f32::max);
        let nan = min_d.iter().any(|d| d.is_nan());
        Seeding {
            z,
            m,
            err: SqDistError::new(m),
            cum: vec![0.0; n],
            clean: 0,
            cand: Vec::new(),
            dist: Vec::new(),
            nan,
            members: vec![(0..n as u32).zip(min_d.iter().copied()).collect()],
            rows: vec![z.to_vec()],
            radius: vec![radius],
            clear_at: vec![SqDistError::new(m).clearing_sum(radius)],
            seeds: vec![first],
            k,
            seed_cols: (0..m * k)
                .map(|j| {
                    if j % k == 0 {
                        z[first * m + j / k]
                    } else {
                        0.0
                    }
                })
                .collect(),
            to_seeds: vec![0.0; k],
            min_d,
        }
    }

    fn row(&self, i: usize) -> &'a [f32] {
        &self.z[i * self.m..(i + 1) * self.m]
    }

    /// The next seed: `WeightedIndex::new(&min_d)` and its `sample`, with the cumulative sums
    /// redone only from the first weight that changed.
    fn draw(&mut self, rng: &mut impl Rng) -> usize {
        let n = self.min_d.len();
        if self.nan {
            return 0;
        }
        let mut total = if self.clean == 0 {
            0.0
        } else {
            self.cum[self.clean - 1]
        };
        for (c, &w) in self.cum[self.clean..]
            .iter_mut()
            .zip(&self.min_d[self.clean..])
        {
            total += w;
            *c = total;
        }
        self.clean = n;
        if total == 0.0 {
            return 0;
        }
        let chosen = Uniform::new(0.0, total).sample(rng);
        // `WeightedIndex` keeps the sums before each point but the first, searches the first
        // that exceeds the draw, and falls to the last point when none does.
        self.cum[..n - 1].partition_point(|&w| w <= chosen)
    }

    /// Takes point `p` as the next seed: every point it is strictly closer to moves to it.
    fn add(&mut self, p: usize) {
        let err = self.err;
        let c = self.row(p);
        // Its distances to the seeds so far, m vectorisable passes summing as `sq_dist`.
        let count = self.seeds.len();
        let to_seeds = &mut self.to_seeds[..count];
        to_seeds.fill(0.0);
        for (i, &ci) in c.iter().enumerate() {
            let col = &self.seed_cols[i * self.k..i * self.k + count];
            for (d, &s) in to_seeds.iter_mut().zip(col) {
                let t = ci - s;
                *d += t * t;
            }
        }
        let m = self.m;
        let (mut moved, mut moved_rows): (Vec<(u32, f32)>, Vec<f32>) = Default::default();
        let (cand, dist) = (&mut self.cand, &mut self.dist);
        for (a, &ca) in to_seeds.iter().enumerate() {
            // As `clears(err.below(ca), err.reach(self.radius[a]))`, in one f32 comparison.
            if ca >= self.clear_at[a] || self.members[a].is_empty() {
                continue;
            }
            // The same test point by point, with each point's own distance to a; the
            // distances of the points left come in batches (`sq_dists_to`).
            let within = err.cleared_sum(err.below(ca));
            let (members, rows) = (&mut self.members[a], &mut self.rows[a]);
            // Written without a branch: which points pass is about as good as a coin toss.
            cand.resize(members.len(), 0);
            let mut len = 0;
            for (j, &(_, d)) in members.iter().enumerate() {
                cand[len] = j as u32;
                // Not `d <= within` (NaN included).
                len += usize::from(d.partial_cmp(&within).is_none_or(|o| o.is_gt()));
            }
            cand.truncate(len);
            if cand.is_empty() {
                continue;
            }
            sq_dists_to(c, rows, cand, dist);
            // The points c is strictly closer to move to it; each leaves its place to the
            // last member (from the back, so that member is one already looked at).
            for (&j, &d) in cand.iter().zip(dist.iter()).rev() {
                let j = j as usize;
                let (i, old) = members[j];
                if d < old {
                    self.min_d[i as usize] = d;
                    moved.push((i, d));
                    moved_rows.extend_from_slice(&rows[j * m..(j + 1) * m]);
                    members.swap_remove(j);
                    let last = rows.len() - m;
                    rows.copy_within(last.., j * m);
                    rows.truncate(last);
                }
            }
            let radius = members.iter().fold(0.0, |r: f32, &(_, d)| r.max(d));
            self.radius[a] = radius;
            self.clear_at[a] = err.clearing_sum(radius);
        }
        if let Some(i) = moved.iter().map(|&(i, _)| i).min() {
            self.clean = self.clean.min(i as usize);
        }
        let radius = moved.iter().fold(0.0, |r: f32, &(_, d)| r.max(d));
        self.radius.push(radius);
        self.clear_at.push(err.clearing_sum(radius));
        self.members.push(moved);
        self.rows.push(moved_rows);
        for (i, &ci) in c.iter().enumerate() {
            self.seed_cols[i * self.k + count] = ci;
        }
        self.seeds.push(p);
    }
}

/// `dist[j]` = `sq_dist(c, row idx[j] of z)` (rows of `c.len()` columns), bit for bit: each sum
/// still runs over the coordinates in order, but eight of them run side by side, so their
/// additions overlap instead of waiting on one another.
fn sq_dists_to(c: &[f32], z: &[f32], idx: &[u32], dist: &mut Vec<f32>) {
    const LANES: usize = 8;
    let m = c.len();
    let row = |i: u32| &z[i as usize * m..(i as usize + 1) * m];
    dist.clear();
    for batch in idx.chunks(LANES) {
        // A short last batch repeats its last row in the lanes it does not use.
        let rows: [&[f32]; LANES] = std::array::from_fn(|l| row(batch[l.min(batch.len() - 1)]));
        let mut acc = [0.0f32; LANES];
        for (k, &ck) in c.iter().enumerate() {
            for (a, r) in acc.iter_mut().zip(&rows) {
                let t = ck - r[k];
                *a += t * t;
            }
        }
        dist.extend_from_slice(&acc[..batch.len()]);
    }
}

/// `below(ca)` reaches `reach(r)`: a seed's points within `r` cannot come closer to the new
/// one (see `SqDistError::reach`). False when either is NaN.
fn clears(below_ca: f64, reach: f64) -> bool {
    below_ca >= reach
}

/// Bounds of `sq_dist`'s rounding for m dimensions: the f32 sum d̂ of m nonnegative terms
/// (c_i − p_i)², each from a rounded difference and a rounded square, lies within
/// (1 ± γ)·d ± tiny of the exact d, γ = (m + 2)·u (u = ε/2) with a 4× margin, and tiny for
/// the terms that fall below f32's normal range. The tests are worked in f64, whose own
/// rounding is far inside the margin.
#[derive(Debug, Clone, Copy)]
struct SqDistError {
    gamma: f64,
    tiny: f64,
    four_above: f64, // 4·(1 + 1e-9)/(1 − γ)
}

impl SqDistError {
    fn new(m: usize) -> Self {
        let gamma = 2.0 * (m as f64 + 2.0) * f64::from(f32::EPSILON);
        SqDistError {
            gamma,
            tiny: (m as f64 + 2.0) * f64::from(f32::MIN_POSITIVE),
            four_above: 4.0 * (1.0 + 1e-9) / (1.0 - gamma),
        }
    }

    /// A lower bound of the exact squared distance whose f32 sum is `d`.
    fn below(self, d: f32) -> f64 {
        (f64::from(d) - self.tiny) / (1.0 + self.gamma)
    }

    /// An upper bound of the exact squared distance whose f32 sum is `d`.
    fn above(self, d: f32) -> f64 {
        (f64::from(d) + self.tiny) / (1.0 - self.gamma)
    }

    /// An upper bound of the exact distance (not squared) whose f32 sum of squares is `d`.
    fn distance_above(self, d: f32) -> f64 {
        up(self.above(d).sqrt())
    }

    /// Distances `upper` to one centre and ≥ `lower` to every other make the f32 sum of the
    /// first strictly the smallest: (1 + γ)·upper² + tiny < (1 − γ)·lower² − tiny. False on NaN.
    fn surely_less(self, upper: f64, lower: f64) -> bool {
        let above = (1.0 + self.gamma) * upper * upper + self.tiny;
        let below = (1.0 - self.gamma) * lower * lower - self.tiny;
        above * (1.0 + 1e-9) < below
    }

    /// The smallest f32 sum `ca` with `clears(self.below(ca), self.reach(r))` (NaN when there
    /// is none, so that no comparison with it holds): `ca >= clearing_sum(r)` is that test,
    /// decided the same way for every f32 `ca`. The f64 predicate grows with `ca`; the
    /// estimate is a few f32 steps from the boundary, which the steps then find.
    fn clearing_sum(self, r: f32) -> f32 {
        let reach = self.reach(r);
        if reach.is_nan() {
            return f32::NAN;
        }
        let holds = |ca: f32| clears(self.below(ca), reach);
        let mut ca = ((reach * (1.0 + self.gamma) + self.tiny) as f32).max(0.0);
        if holds(ca) {
            while ca > 0.0 && holds(ca.next_down()) {
                ca = ca.next_down();
            }
        } else {
            // `holds(∞)`: `reach` is finite here.
            while !holds(ca) {
                ca = ca.next_up();
            }
        }
        ca
    }

    /// The largest f32 sum r ≥ 0 with `clears(below_ca, self.reach(r))` (−∞ when there is
    /// none, NaN when `below_ca` is NaN): a point at f32 sum d from its seed passes that test
    /// exactly when `d <= cleared_sum(below_ca)`. The f64 predicate falls as r grows (and
    /// fails at r = ∞).
    fn cleared_sum(self, below_ca: f64) -> f32 {
        let holds = |r: f32| clears(below_ca, self.reach(r));
        if below_ca.is_nan() {
            return f32::NAN;
        }
        if !holds(0.0) {
            return f32::NEG_INFINITY;
        }
        let estimate = (below_ca / self.four_above - self.tiny) as f32;
        let mut r = estimate.clamp(0.0, f32::MAX);
        if holds(r) {
            while holds(r.next_up()) {
                r = r.next_up();
            }
        } else {
            while !holds(r) {
                r = r.next_down();
            }
        }
        r
    }

    /// ‖c − a‖ ≥ 2 r when `below(ca) >= reach(r)`, for f32 sums `ca` of ‖c − a‖² and `r` of
    /// r²: then every point x with f32 sum ≤ `r` to a has f32 sum ≥ `r` to c (‖c − x‖ ≥
    /// ‖c − a‖ − ‖x − a‖ ≥ r). 4·above(r) with a margin for the f64 rounding; NaN (no
    /// comparison holds) for an infinite or NaN `r`.
    fn reach(self, r: f32) -> f64 {
        if r.is_finite() {
            (f64::from(r) + self.tiny) * self.four_above
        } else {
            f64::NAN
        }
    }
}

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
    fn ties_across_groups_of_centres_go_where_linfa_sends_them() {
        // More centres than distinct grid points: duplicate centres in different groups of
        // the bounds tie exactly, and the lowest index must win.
        let mut gen = ChaCha8Rng::seed_from_u64(15);
        for (n, m, k) in [(1500, 3, 200), (1500, 10, 150)] {
            let z = Array2::<i32>::random_using((n, m), Uniform::new(0, 3), &mut gen)
                .mapv(|v: i32| v as f32);
            let rng = ChaCha8Rng::seed_from_u64(2);
            let ours = kmeans(z.view(), k, &rng).unwrap();
            assert_eq!(ours, linfa_from_our_seeds(z.view(), k, &rng), "m={m} k={k}");
        }
    }

    #[test]
    fn batched_distances_and_lane_minimum_equal_the_scans() {
        let mut gen = ChaCha8Rng::seed_from_u64(14);
        for m in [1, 3, 16, 17] {
            let z = Array2::<f32>::random_using((50, m), StandardNormal, &mut gen) * 5.0;
            let c = z.row(3).to_vec(); // one distance is 0
                                       // 6 batches of 8 and 2 left, in no particular order.
            let idx: Vec<u32> = (0..50u32).map(|i| (i * 7) % 50).collect();
            let mut dist = vec![1.0; 3]; // overwritten
            sq_dists_to(&c, z.as_slice().unwrap(), &idx, &mut dist);
            assert_eq!(dist.len(), idx.len());
            for (&i, &d) in idx.iter().zip(&dist) {
                let scan = sq_dist(&c, z.row(i as usize).as_slice().unwrap());
                assert_eq!(d.to_bits(), scan.to_bits(), "m={m} point {i}");
            }
            for len in [0, 5, 8, 50] {
                let scan = dist[..len].iter().fold(f32::INFINITY, |b, &v| b.min(v));
                assert_eq!(slice_min(&dist[..len]).to_bits(), scan.to_bits());
            }
        }
        assert_eq!(slice_min(&[3.0, 1.0, 2.0, 1.0]), 1.0);
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

    /// k-means++ as linfa writes it (a full pass per seed, `WeightedIndex` rebuilt per draw)
    /// but keeping each point's running minimum: linfa's own seeds at O(n·k).
    fn plusplus_full_passes(z: ArrayView2<f32>, k: usize, rng: &mut ChaCha8Rng) -> Array2<f32> {
        let n = z.nrows();
        let mut seeds = Array2::zeros((k, z.ncols()));
        let first = WeightedIndex::new(vec![1.0f32; n]).unwrap().sample(rng);
        seeds.row_mut(0).assign(&z.row(first));
        let mut min_d = vec![f32::INFINITY; n];
        for c in 1..k {
            let last = seeds.row(c - 1).to_vec();
            for (d, p) in min_d.iter_mut().zip(z.rows()) {
                let dc = sq_dist(&last, p.as_slice().unwrap());
                if dc < *d || c == 1 {
                    *d = dc;
                }
            }
            let next = WeightedIndex::new(&min_d)
                .map(|w| w.sample(rng))
                .unwrap_or(0);
            seeds.row_mut(c).assign(&z.row(next));
        }
        seeds
    }

    #[test]
    fn seeds_equal_full_passes_at_codebook_sizes() {
        // Clustered points (where the skipped clusters are most of them), plain Gaussian ones,
        // and an integer grid whose distances tie.
        let mut gen = ChaCha8Rng::seed_from_u64(10);
        for (n, m, k) in [(3000, 2, 1024), (2500, 16, 700), (2000, 64, 300)] {
            let centres = Array2::<f32>::random_using((20, m), StandardNormal, &mut gen) * 4.0;
            let noise = Array2::<f32>::random_using((n, m), StandardNormal, &mut gen);
            let clustered = Array2::from_shape_fn((n, m), |(i, j)| {
                centres[[i * 20 / n, j]] + 0.3 * noise[[i, j]]
            });
            let grid = Array2::<i32>::random_using((n, m), Uniform::new(0, 3), &mut gen)
                .mapv(|v: i32| v as f32);
            for z in [clustered, noise, grid] {
                for seed in 0..2 {
                    let rng = ChaCha8Rng::seed_from_u64(seed);
                    assert_eq!(
                        plusplus(z.view(), k, &mut rng.clone()),
                        plusplus_full_passes(z.view(), k, &mut rng.clone()),
                        "n={n} m={m} k={k}"
                    );
                }
            }
        }
    }

    #[test]
    fn seeding_skips_only_clusters_no_point_of_which_can_move() {
        // On a line: a at 0, its farthest point x at r, a new seed at 2r is exactly as far
        // from x as a is, so the rule may not skip (the sums are exact here); a little
        // farther it must.
        let err = SqDistError::new(1);
        let r = 3.0f32;
        let (ca, xa) = ((2.0 * r) * (2.0 * r), r * r);
        assert!(err.below(ca) < err.reach(xa));
        assert!(err.below(ca * (1.0 + 1e-4)) >= err.reach(xa));
        // Within the rounding margin of 16 dimensions, no decision.
        let err16 = SqDistError::new(16);
        assert!(err16.below(ca * (1.0 + 1e-6)) < err16.reach(xa));
        assert!(!clears(err.below(f32::NAN), err.reach(xa)));
        assert!(!clears(err.below(ca), err.reach(f32::NAN)));
        assert!(!clears(err.below(f32::INFINITY), err.reach(f32::INFINITY)));
        // Every point whose weight the rule leaves alone keeps it under the full pass.
        let mut gen = ChaCha8Rng::seed_from_u64(11);
        let z = Array2::<f32>::random_using((400, 3), StandardNormal, &mut gen);
        let zs = z.as_slice().unwrap();
        let mut seeding = Seeding::new(zs, 400, 3, 6, 0);
        for p in [17, 230, 5, 399, 88] {
            let before = seeding.min_d.clone();
            seeding.add(p);
            for (i, (&b, &a)) in before.iter().zip(&seeding.min_d).enumerate() {
                let full = sq_dist(z.row(p).as_slice().unwrap(), z.row(i).as_slice().unwrap());
                assert_eq!(a, if full < b { full } else { b }, "point {i}");
            }
            // The points are grouped by their nearest seed, each group within its radius.
            for (a, members) in seeding.members.iter().enumerate() {
                let rows = seeding.rows[a].chunks_exact(3);
                assert_eq!(rows.len(), members.len());
                for (&(i, di), row) in members.iter().zip(rows) {
                    assert_eq!(di, seeding.min_d[i as usize]);
                    assert_eq!(row, z.row(i as usize).as_slice().unwrap());
                    let seed = z.row(seeding.seeds[a]);
                    let d = sq_dist(
                        seed.as_slice().unwrap(),
                        z.row(i as usize).as_slice().unwrap(),
                    );
                    assert_eq!(d, seeding.min_d[i as usize]);
                    assert!(d <= seeding.radius[a]);
                }
            }
        }
    }

    #[test]
    fn groups_are_whole_neighbourhoods_in_index_order() {
        // Two far clumps of a group's worth of centres each, interleaved by index: no group
        // mixes them, each group is in index order, every centre is placed.
        let mut gen = ChaCha8Rng::seed_from_u64(16);
        let k = 2 * GROUP;
        let noise = Array2::<f32>::random_using((k, 5), StandardNormal, &mut gen);
        let c = Array2::from_shape_fn((k, 5), |(i, j)| {
            noise[[i, j]] + if i % 2 == 0 { 100.0 } else { -100.0 }
        });
        let groups = Groups::new(c.view());
        let mut placed = groups.order.clone();
        placed.sort_unstable();
        assert_eq!(placed, (0..k).collect::<Vec<_>>());
        for (p, &i) in groups.order.iter().enumerate() {
            assert_eq!(groups.rank[i], p);
        }
        for run in groups.order.chunks(GROUP) {
            assert!(run.windows(2).all(|w| w[0] < w[1]), "{run:?}");
            assert!(run.iter().all(|&i| i % 2 == run[0] % 2), "{run:?}");
        }
        // Equal values split by index (the short group last), and the same centres give the
        // same groups.
        let flat = Array2::<f32>::zeros((2 * GROUP + 10, 3));
        let order = Groups::new(flat.view()).order;
        assert_eq!(order, (0..2 * GROUP + 10).collect::<Vec<_>>());
        assert_eq!(Groups::new(c.view()).order, groups.order);
    }

    #[test]
    fn f32_thresholds_decide_as_the_f64_tests() {
        let mut gen = ChaCha8Rng::seed_from_u64(17);
        for m in [1, 16, 64] {
            let err = SqDistError::new(m);
            let mut values: Vec<f32> = (0..300)
                .map(|_| {
                    let e: i32 = gen.gen_range(-130..120);
                    gen.gen_range(1.0f32..2.0) * 2f32.powi(e)
                })
                .collect();
            values.extend([0.0, f32::MIN_POSITIVE, 1e-45, 1.0, f32::MAX, f32::INFINITY]);
            for &r in &values {
                let at = err.clearing_sum(r);
                let reach = err.reach(r);
                for ca in [
                    at.next_down(),
                    at,
                    at.next_up(),
                    0.0,
                    f32::INFINITY,
                    f32::NAN,
                ] {
                    assert_eq!(
                        ca >= at,
                        clears(err.below(ca), reach),
                        "m={m} r={r} ca={ca}"
                    );
                }
                let below = err.below(r);
                let within = err.cleared_sum(below);
                for d in [within.next_down(), within, within.next_up(), 0.0, f32::NAN] {
                    if d >= 0.0 || d.is_nan() {
                        assert_eq!(d <= within, clears(below, err.reach(d)), "m={m} d={d}");
                    }
                }
                for v in [r, r.next_up(), f32::INFINITY] {
                    assert_eq!(v <= within, clears(below, err.reach(v)), "m={m} v={v}");
                }
            }
            assert!(err.clearing_sum(f32::NAN).is_nan());
            assert!(err.cleared_sum(f64::NAN).is_nan());
            assert_eq!(err.cleared_sum(-1.0), f32::NEG_INFINITY);
        }
    }

    #[test]
    fn bounds_keep_only_centres_the_full_search_would_give() {
        let err = SqDistError::new(16);
        assert!(!err.surely_less(1.0, 1.0));
        assert!(!err.surely_less(1.0, 1.0 + 1e-7));
        assert!(err.surely_less(1.0, 1.0 + 1e-4));
        assert!(!err.surely_less(f64::NAN, 2.0) && !err.surely_less(1.0, f64::NAN));
        // Centres that move a little each step, and once one that jumps onto a point: each
        // assignment equals the full search, and most groups are settled by the bounds.
        let mut gen = ChaCha8Rng::seed_from_u64(12);
        let (n, m, k) = (3000, 12, 1024); // 16 groups
        let z = Array2::<f32>::random_using((n, m), StandardNormal, &mut gen);
        let mut centres = Array2::<f32>::random_using((k, m), StandardNormal, &mut gen);
        let mut bounds = Bounds::new(z.as_slice().unwrap(), m);
        let (mut ours, mut full) = (vec![0; n], vec![0; n]);
        for step in 0..6 {
            let searched = bounds.assign(centres.view(), &mut ours);
            nearest_parallel(z.view(), centres.view(), &mut full);
            assert_eq!(ours, full, "step {step}");
            // The jump before step 4 loosens the bounds of its group only: of 16 groups per
            // point, about 1 is searched then, far fewer at the other steps.
            let most = if step == 4 { n * 3 / 2 } else { n / 4 };
            if step > 0 {
                assert!(searched < most, "step {step}: {searched} groups searched");
            }
            let old = centres.clone();
            let nudge = Array2::<f32>::random_using((k, m), StandardNormal, &mut gen) * 0.002;
            centres += &nudge;
            if step == 3 {
                centres.row_mut(7).assign(&z.row(11));
            }
            bounds.drift(old.view(), centres.view(), &ours);
        }
    }

    #[test]
    fn screen_bounds_lie_below_every_other_exact_distance() {
        // Away from the origin, where ‖q‖² − 2 q·p + ‖p‖² cancels: each run's bound is at
        // most the exact (f64) squared distance to each of its points but the winner.
        let mut gen = ChaCha8Rng::seed_from_u64(13);
        let (n, m, k, group) = (300, 16, 200, 64);
        for offset in [10.0, 50.0] {
            let z = Array2::<f32>::random_using((n, m), StandardNormal, &mut gen) + offset;
            let c = Array2::<f32>::random_using((k, m), StandardNormal, &mut gen) + offset;
            let (mut found, mut full) = (vec![0; n], vec![0; n]);
            let mut others = vec![0.0; n * k.div_ceil(group)];
            Prepared::new(c.view()).nearest_bounded(
                z.view(),
                &mut found,
                group,
                &mut others,
                &mut Vec::new(),
            );
            nearest_parallel(z.view(), c.view(), &mut full);
            assert_eq!(found, full);
            let runs = k.div_ceil(group);
            let mut tight = 0;
            for (i, x) in z.rows().into_iter().enumerate() {
                let mut nearest_in_run = vec![f64::INFINITY; runs];
                for (j, p) in c.rows().into_iter().enumerate() {
                    if j == found[i] {
                        continue;
                    }
                    let exact: f64 = x
                        .iter()
                        .zip(p)
                        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                        .sum();
                    let bound = others[i * runs + j / group];
                    assert!(bound <= exact, "point {i}, centre {j}: {bound} > {exact}");
                    nearest_in_run[j / group] = nearest_in_run[j / group].min(exact);
                }
                tight += (0..runs)
                    .filter(|&r| others[i * runs + r] > 0.9 * nearest_in_run[r])
                    .count();
            }
            // And the bounds are of use nearer the origin: most are within 10% of their run's
            // nearest (at 50 the screen's error is a tenth of the distances).
            if offset == 10.0 {
                assert!(tight > n * runs / 2, "{tight} of {}", n * runs);
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

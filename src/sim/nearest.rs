//! Nearest-neighbour search by Euclidean distance: code assignment, nearest mixture mode.
//!
//! The reference is the direct f32 loop `Σ_i (q_i − p_i)²` summed in index order, ties going to
//! the lowest index (NaN distances never win). Every path here returns exactly that argmin: small
//! dimensions run the loop itself, vectorised across points; larger ones screen candidates with a matrix product and re-check the survivors
//! with the loop, so f32 cancellation in ‖q‖² − 2 q·p + ‖p‖² can never change an answer.
//! Searches repeated in a loop (code assignment every training step) pass a `Scratch` and
//! allocate nothing once it has grown to their sizes.

use ndarray::{ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use crate::sim::kdtree::{self, insert_all, insert_smallest, KdTree};
use crate::sim::matmul::{matmul, Into};

/// Up to this dimension the direct loop beats a matrix product.
pub const DIRECT_MAX_DIM: usize = 8;
/// Queries per matrix product in the blocked path: (BLOCK, S) scratch stays cache sized.
const BLOCK: usize = 128;

/// Points from which `nearest_with` builds a k-d tree over them (in at most
/// `kdtree::MAX_DIM` dimensions) rather than scanning: the tree is refilled for every search
/// (`KdTree::refill`: new boxes, and a new partition when they grew), so it pays only when a
/// scan of every point per query costs more than that (measured on training batches of 256
/// queries; the answers are the same either way).
const TREE_MIN_POINTS: usize = 256;

/// Buffers reused across searches: the points by dimension or their k-d tree (direct
/// path), or the prepared points and a block of dot products (blocked path).
#[derive(Debug, Clone, Default)]
pub struct Scratch {
    by_dim: PointsByDim,
    tree: KdTree,
    prepared: Prepared,
    gram: Vec<f32>, // (BLOCK, S), then the block minima of `Prepared::search`
}

/// Index of the nearest row of `points` (Euclidean) for every row of `queries`; ties → lowest index.
///
/// `queries` is (n, m), `points` is (S, m) with S ≥ 1 when n ≥ 1, `out` has length n.
pub fn nearest(queries: ArrayView2<f32>, points: ArrayView2<f32>, out: &mut [usize]) {
    nearest_with(queries, points, out, &mut Scratch::default());
}

/// `nearest` with caller-owned buffers: allocates nothing when `scratch` has served searches
/// of the same sizes before and both arrays are in standard layout.
pub fn nearest_with(
    queries: ArrayView2<f32>,
    points: ArrayView2<f32>,
    out: &mut [usize],
    scratch: &mut Scratch,
) {
    if !has_queries(queries, points, out) {
        return;
    }
    let m = queries.ncols();
    let q = queries.as_standard_layout();
    let p = points.as_standard_layout();
    let qs = q.as_slice().unwrap();
    if m <= kdtree::MAX_DIM && p.nrows() >= TREE_MIN_POINTS && scratch.tree.refill(p.view()) {
        for (q, o) in qs.chunks_exact(m).zip(out.iter_mut()) {
            *o = scratch.tree.nearest(q);
        }
    } else if m <= DIRECT_MAX_DIM {
        nearest_direct(qs, p.view(), out, scratch);
    } else {
        nearest_blocked(q.view(), p.view(), out, scratch);
    }
}

/// The searches' preconditions (same dimension, one slot per query, points to search when
/// there are queries); false when there is no query.
fn has_queries(queries: ArrayView2<f32>, points: ArrayView2<f32>, out: &[usize]) -> bool {
    let (n, m) = queries.dim();
    assert_eq!(points.ncols(), m, "queries and points differ in dimension");
    assert_eq!(out.len(), n, "out must have one slot per query");
    if n == 0 {
        return false;
    }
    assert!(points.nrows() > 0, "cannot search an empty point set");
    true
}

/// Queries per task of `nearest_parallel`: a few blocks, so a task outweighs rayon's hand-off.
const TASK: usize = 4 * BLOCK;

/// `nearest` for many queries on rayon's threads: the points are prepared once, and the queries
/// go out in tasks of `TASK` rows. Each answer is the exact argmin of its own query, so the
/// result is the same whatever the number of threads and however the tasks fall; a thread busy
/// with a run of its own takes none of them, an idle one steals.
pub fn nearest_parallel(queries: ArrayView2<f32>, points: ArrayView2<f32>, out: &mut [usize]) {
    if !has_queries(queries, points, out) {
        return;
    }
    let m = queries.ncols();
    if m == 0 {
        out.fill(0); // every point at distance 0: the lowest index wins
        return;
    }
    let q = queries.as_standard_layout();
    let p = points.as_standard_layout();
    let tasks = out
        .par_chunks_mut(TASK)
        .zip(q.axis_chunks_iter(Axis(0), TASK).into_par_iter());
    if m <= DIRECT_MAX_DIM {
        let by_dim = PointsByDim::new(p.view());
        tasks.for_each(|(o, qc)| {
            let qs = qc.as_slice().expect("rows of a standard-layout array");
            for (qr, o) in qs.chunks_exact(m).zip(o.iter_mut()) {
                *o = by_dim.nearest_to(qr);
            }
        });
    } else {
        let prepared = Prepared::new(p.view());
        tasks.for_each_init(Vec::new, |gram, (o, qc)| {
            for (qb, ob) in qc.axis_chunks_iter(Axis(0), BLOCK).zip(o.chunks_mut(BLOCK)) {
                prepared.nearest(qb, ob, gram);
            }
        });
    }
}

/// Index of the row of `points` (flat, row-major, `m` columns) nearest to `q`; ties → lowest.
pub fn nearest_one(q: &[f32], points: &[f32], m: usize) -> usize {
    let mut best = (0, f32::INFINITY);
    for (j, p) in points.chunks_exact(m.max(1)).enumerate() {
        let d = sq_dist(q, p);
        if d < best.1 {
            best = (j, d);
        }
    }
    best.0
}

/// `$f::<M>(args)` with M the vectors' length `$m` when it is 1 to 4 (the loops then unroll,
/// their sums held in registers), else `$f::<0>`, which takes the length from the rows.
macro_rules! by_len {
    ($m:expr, $f:ident($($arg:expr),*)) => {
        match $m {
            1 => $f::<1>($($arg),*),
            2 => $f::<2>($($arg),*),
            3 => $f::<3>($($arg),*),
            4 => $f::<4>($($arg),*),
            _ => $f::<0>($($arg),*),
        }
    };
}
pub(crate) use by_len;

/// The first `M` values of `x`, or all of them when `M` is 0: a kernel's row with its length
/// known to the compiler.
#[inline(always)]
pub(crate) fn fixed<const M: usize>(x: &[f32]) -> &[f32] {
    if M > 0 {
        &x[..M]
    } else {
        x
    }
}

/// Squared Euclidean distance, summed in index order (the reference every path agrees with).
#[inline]
pub fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .fold(0.0, |acc, (x, y)| acc + (x - y) * (x - y))
}

/// Points stored dimension-major, (m, S), so the distances from one query to all points are m
/// vectorisable passes. Per point the sum still runs i = 0..m in order, as in `sq_dist`, so the
/// results are bit-identical to it.
#[derive(Debug, Clone, Default)]
pub struct PointsByDim {
    m: usize,
    s: usize,
    data: Vec<f32>, // (m, S)
}

impl PointsByDim {
    pub fn new(points: ArrayView2<f32>) -> Self {
        let mut by_dim = Self::default();
        by_dim.fill(points);
        by_dim
    }

    /// Holds `points` (S, m) from now on, reusing the buffer.
    pub fn fill(&mut self, points: ArrayView2<f32>) {
        let (s, m) = points.dim();
        self.data.clear();
        self.data.extend(points.t().iter().copied());
        (self.m, self.s) = (m, s);
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.s
    }

    pub fn is_empty(&self) -> bool {
        self.s == 0
    }

    /// Squared distances from `q` (m) to points `from..S`, written to `out[..S − from]`.
    pub fn sq_dists(&self, q: &[f32], from: usize, out: &mut [f32]) {
        self.sq_dists_in(q, from..self.s, out);
    }

    /// Squared distances from `q` (m) to the points in `range`, written to `out[..range.len()]`.
    pub fn sq_dists_in(&self, q: &[f32], range: std::ops::Range<usize>, out: &mut [f32]) {
        assert_eq!(q.len(), self.m, "query and points differ in dimension");
        assert!(range.end <= self.s, "points {range:?} of {}", self.s);
        let out = &mut out[..range.len()];
        match self.m {
            1 => return self.sq_dists_few::<1>(q, range, out),
            2 => return self.sq_dists_few::<2>(q, range, out),
            3 => return self.sq_dists_few::<3>(q, range, out),
            4 => return self.sq_dists_few::<4>(q, range, out),
            _ => {}
        }
        out.fill(0.0);
        for (i, &qi) in q.iter().enumerate().take(self.m) {
            let col = &self.data[i * self.s + range.start..i * self.s + range.end];
            for (o, &p) in out.iter_mut().zip(col) {
                let t = qi - p;
                *o += t * t;
            }
        }
    }
}

impl PointsByDim {
    /// `sq_dists_in` in M dimensions, in one pass instead of one per dimension over `out`:
    /// each distance is still 0 + t_0² + … + t_{M−1}², added in that order.
    fn sq_dists_few<const M: usize>(
        &self,
        q: &[f32],
        range: std::ops::Range<usize>,
        out: &mut [f32],
    ) {
        const LANES: usize = 8;
        let cols: [&[f32]; M] = std::array::from_fn(|i| &self.data[i * self.s..][range.clone()]);
        let full = out.len() - out.len() % LANES;
        let (body, rest) = out.split_at_mut(full);
        for (c, o) in body.chunks_exact_mut(LANES).enumerate() {
            let mut acc = [0.0f32; LANES];
            for (col, &qi) in cols.iter().zip(q) {
                for (a, &p) in acc.iter_mut().zip(&col[c * LANES..(c + 1) * LANES]) {
                    let t = qi - p;
                    *a += t * t;
                }
            }
            o.copy_from_slice(&acc);
        }
        for (o, j) in rest.iter_mut().zip(full..) {
            let mut acc = 0.0f32;
            for (col, &qi) in cols.iter().zip(q) {
                let t = qi - col[j];
                acc += t * t;
            }
            *o = acc;
        }
    }

    /// Index of the point nearest to `q` (m): the lowest index holding the smallest non-NaN
    /// `sq_dists(q, 0, ..)` (0 when there is none), the same distances summed in the same
    /// order, without storing them. Two passes, 8 points side by side: the first keeps only
    /// each lane's smallest distance (no index, so it vectorises without selects), the second
    /// recomputes the distances up to the first point holding the smallest of those.
    pub fn nearest_to(&self, q: &[f32]) -> usize {
        assert_eq!(q.len(), self.m, "query and points differ in dimension");
        by_len!(self.m, nearest_in(self, q))
    }
}

/// `PointsByDim::nearest_to` with the query's length `M` known to the compiler when it is 1 to
/// 4 (the loop over dimensions then unrolls), 0 for any other length.
#[inline(always)]
fn nearest_in<const M: usize>(points: &PointsByDim, q: &[f32]) -> usize {
    const LANES: usize = 8;
    let q = fixed::<M>(q);
    let (s, data) = (points.s, &points.data[..]);
    let group = |base: usize| {
        let mut d = [0.0f32; LANES];
        for (i, &qi) in q.iter().enumerate() {
            let col = &data[i * s + base..i * s + base + LANES];
            for (dl, &p) in d.iter_mut().zip(col) {
                let t = qi - p;
                *dl += t * t;
            }
        }
        d
    };
    let full = s - s % LANES;
    // Each lane's smallest; a NaN never replaces a value, so the lanes hold no NaN.
    let mut lanes = [f32::INFINITY; LANES];
    for base in (0..full).step_by(LANES) {
        for (l, d) in lanes.iter_mut().zip(group(base)) {
            *l = if d < *l { d } else { *l };
        }
    }
    let min = lanes
        .into_iter()
        .fold(f32::INFINITY, |a, b| if b < a { b } else { a });
    let mut winner = (0, f32::INFINITY);
    if min < f32::INFINITY {
        // A group is tested whole (its comparisons vectorise); only the one holding the
        // minimum is searched lane by lane, so the mispredicted branches are one group's.
        let first = (0..full).step_by(LANES).find_map(|base| {
            let d = group(base);
            let holds = d.iter().fold(false, |h, &v| h | (v == min));
            holds.then(|| base + d.iter().position(|&v| v == min).expect("held"))
        });
        winner = (first.expect("a group holds the minimum"), min);
    }
    for j in full..s {
        let mut d = 0.0f32;
        for (i, &qi) in q.iter().enumerate() {
            let t = qi - data[i * s + j];
            d += t * t;
        }
        if d < winner.1 {
            winner = (j, d);
        }
    }
    winner.0 // 0 when no distance is finite, as `first_argmin`
}

/// The direct squared-difference search, vectorised across points.
fn nearest_direct(qs: &[f32], points: ArrayView2<f32>, out: &mut [usize], scratch: &mut Scratch) {
    let m = points.ncols();
    if m == 0 {
        // Every point is at distance 0, so the lowest index wins.
        out.fill(0);
        return;
    }
    let by_dim = &mut scratch.by_dim;
    by_dim.fill(points);
    for (q, o) in qs.chunks_exact(m).zip(out.iter_mut()) {
        *o = by_dim.nearest_to(q);
    }
}

/// `Prepared::nearest` on blocks of `BLOCK` queries, so the (block, S) products stay small.
fn nearest_blocked(
    q: ArrayView2<f32>,
    p: ArrayView2<f32>,
    out: &mut [usize],
    scratch: &mut Scratch,
) {
    let Scratch { prepared, gram, .. } = scratch;
    prepared.fill(p);
    for (start, qb) in q.axis_chunks_iter(Axis(0), BLOCK).enumerate() {
        let start = start * BLOCK;
        prepared.nearest(qb, &mut out[start..start + qb.nrows()], gram);
    }
}

/// Points of the blocked search, prepared once for any number of queries: by dimension for the
/// matrix product, row-major for the re-check, and their squared norms with error bounds.
///
/// The search screens with d̃ = ‖q‖² − 2 q·p + ‖p‖² from a matrix product, then settles with
/// `sq_dist`. Both d̃ and the direct sum are within e(p) = c·(‖q‖² + ‖p‖²) of the true
/// distance, with c a few m·ε (standard dot-product error bounds; c below has a 4× margin that
/// also absorbs the rounding of the rearranged sums). The direct argmin p* has
/// d̃(p*) − e(p*) ≤ min_k d̃(k) + e(k), so keeping every such candidate and re-checking them
/// with the direct sum gives the direct argmin exactly. Usually one candidate survives.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    by_dim: PointsByDim,
    rows: Vec<f32>, // (S, m)
    p_hi: Vec<f32>, // (S)
    p_lo: Vec<f32>, // (S)
    c: f32,
}

impl Prepared {
    pub fn new(points: ArrayView2<f32>) -> Prepared {
        let mut p = Prepared::default();
        p.fill(points);
        p
    }

    /// Holds `points` (S, m) from now on, reusing the buffers.
    pub fn fill(&mut self, points: ArrayView2<f32>) {
        let m = points.ncols();
        self.c = 16.0 * (m as f32 + 2.0) * f32::EPSILON;
        self.by_dim.fill(points);
        self.rows.clear();
        self.rows.extend(points.iter().copied());
        // d̃ ± e = ‖q‖²(1 ± c) + [‖p‖²(1 ± c) − 2 q·p]: the bracket is per point, the rest per query.
        self.p_hi.clear();
        self.p_lo.clear();
        for r in self.rows.chunks_exact(m.max(1)) {
            let pn: f32 = r.iter().map(|v| v * v).sum();
            self.p_hi.push(pn * (1.0 + self.c));
            self.p_lo.push(pn * (1.0 - self.c));
        }
    }

    /// Index of the nearest point for every row of `q` (n, m), ties → lowest index, with one
    /// matrix product into `gram`, grown to (n, S) and reused by the next call.
    pub fn nearest(&self, q: ArrayView2<f32>, out: &mut [usize], gram: &mut Vec<f32>) {
        self.search(q, out, None, gram);
    }

    /// `nearest`, and in `others` (n, S.div_ceil(group)) for every query and every run of
    /// `group` points a lower bound of its exact squared distance to each point of the run
    /// but the one found (∞ when there is none): the screen's own d̃ − e.
    pub fn nearest_bounded(
        &self,
        q: ArrayView2<f32>,
        out: &mut [usize],
        group: usize,
        others: &mut [f64],
        gram: &mut Vec<f32>,
    ) {
        let groups = self.by_dim.s.div_ceil(group);
        assert_eq!(
            others.len(),
            q.nrows() * groups,
            "one bound per query and run"
        );
        self.search(q, out, Some((group, others)), gram);
    }

    /// Whether `kth_smallest_own` may screen these points: every squared norm finite, with
    /// room to spare, so that no distance between two of them is NaN or overflows.
    pub fn finite(&self) -> bool {
        self.p_hi.iter().all(|&v| (8.0 * v).is_finite())
    }

    /// For every prepared point i in `own`, the k-th smallest `sq_dist` from it to the other
    /// points (k = `best.len()`, 1 ≤ k < S), into `out`; `finite()` must hold. The screen of
    /// `nearest` with the k-th smallest upper bound in place of the least: the k points of
    /// smallest upper bound have direct sums at most that bound, so the k-th smallest direct sum
    /// r is too, and every point whose direct sum is at most r has its lower bound below it and
    /// is re-checked. The k-th smallest of the re-checked sums is then the one over all points.
    /// `best` and `gram` are scratch, `gram` grown to (len(own) + 1, S).
    pub fn kth_smallest_own(
        &self,
        own: std::ops::Range<usize>,
        out: &mut [f32],
        best: &mut [f32],
        gram: &mut Vec<f32>,
    ) {
        let (s, m) = (self.by_dim.s, self.by_dim.m);
        let n = own.len();
        let k = best.len();
        assert!(k >= 1 && k < s, "k = {k} of {s} points");
        assert_eq!(out.len(), n, "out must have one slot per query");
        let q = ArrayView2::from_shape((n, m), &self.rows[own.start * m..own.end * m])
            .expect("rows of the prepared points");
        let pt = ArrayView2::from_shape((m, s), &self.by_dim.data).expect("filled"); // (m, S)
        gram.resize((n + 1) * s, 0.0);
        let (gram, upper) = gram.split_at_mut(n * s);
        let g = ArrayViewMut2::from_shape((n, s), &mut gram[..]).expect("sized above");
        matmul(g, Into::Overwrite, q, pt);
        for ((o, i), g) in out.iter_mut().zip(own).zip(gram.chunks_exact(s)) {
            let qr = &self.rows[i * m..(i + 1) * m];
            let qn: f32 = qr.iter().map(|v| v * v).sum();
            for ((u, &gj), &pj) in upper.iter_mut().zip(g).zip(&self.p_hi) {
                *u = pj - 2.0 * gj;
            }
            upper[i] = f32::INFINITY;
            best.fill(f32::INFINITY);
            insert_all(best, upper);
            let threshold = best[k - 1] + 2.0 * self.c * qn;
            best.fill(f32::INFINITY);
            let blocks = g.chunks(SCREEN).zip(self.p_lo.chunks(SCREEN)).enumerate();
            for (block, (gb, pb)) in blocks {
                if lane_min(gb, pb) > threshold {
                    continue;
                }
                for (j, (&gj, &pj)) in (block * SCREEN..).zip(gb.iter().zip(pb)) {
                    if pj - 2.0 * gj <= threshold && j != i {
                        insert_smallest(best, sq_dist(qr, &self.rows[j * m..(j + 1) * m]));
                    }
                }
            }
            *o = best[k - 1];
        }
    }

    fn search(
        &self,
        q: ArrayView2<f32>,
        out: &mut [usize],
        mut others: Option<(usize, &mut [f64])>,
        gram: &mut Vec<f32>,
    ) {
        let (n, m) = q.dim();
        let s = self.by_dim.s;
        assert_eq!(m, self.by_dim.m, "queries and points differ in dimension");
        assert_eq!(out.len(), n, "out must have one slot per query");
        // The products, then each screen block's minimum (also its run's bound when runs are
        // blocks), in the caller's buffer so that a search in a loop allocates nothing.
        let pt = ArrayView2::from_shape((m, s), &self.by_dim.data).expect("filled"); // (m, S)
        gram.resize(n * s + s.div_ceil(SCREEN), 0.0);
        let (gram, block_min) = gram.split_at_mut(n * s);
        let mut g = ArrayViewMut2::from_shape((n, s), gram).expect("sized above"); // (n, S)
        matmul(g.view_mut(), Into::Overwrite, q, pt);
        let c = self.c;
        for (r, o) in out.iter_mut().enumerate() {
            let qrow = q.row(r);
            let qrow = qrow.as_standard_layout();
            let qr = qrow.as_slice().expect("standard layout");
            let qn: f32 = qr.iter().map(|v| v * v).sum();
            let grow = g.row(r);
            let g = grow.as_slice().expect("rows of a standard-layout buffer");
            let hi_min = lane_min(g, &self.p_hi);
            // Candidates: ‖q‖²(1 − c) + lo_j ≤ ‖q‖²(1 + c) + hi_min.
            let threshold = hi_min + 2.0 * c * qn;
            let mut best = (0, f32::INFINITY);
            let blocks = g.chunks(SCREEN).zip(self.p_lo.chunks(SCREEN));
            for (block, ((gb, pb), low)) in blocks.zip(block_min.iter_mut()).enumerate() {
                // A branch-free minimum first: almost every block holds no candidate, and a
                // vectorised pass over it is cheaper than a branch per code.
                *low = lane_min(gb, pb);
                if *low > threshold {
                    continue;
                }
                for (k, (&gj, &pj)) in gb.iter().zip(pb).enumerate() {
                    if pj - 2.0 * gj <= threshold {
                        let j = block * SCREEN + k;
                        let d = sq_dist(qr, &self.rows[j * m..(j + 1) * m]);
                        if d < best.1 {
                            best = (j, d);
                        }
                    }
                }
            }
            *o = best.0;
            if let Some((group, others)) = others.as_mut() {
                let runs = g.chunks(*group).zip(self.p_lo.chunks(*group));
                let w = s.div_ceil(*group);
                let row = &mut others[r * w..(r + 1) * w];
                for (run, (o, (gb, pb))) in row.iter_mut().zip(runs).enumerate() {
                    let v = match best.0.checked_sub(run * *group) {
                        Some(b) if b < gb.len() => {
                            lane_min(&gb[..b], &pb[..b]).min(lane_min(&gb[b + 1..], &pb[b + 1..]))
                        }
                        _ if *group == SCREEN => block_min[run],
                        _ => lane_min(gb, pb),
                    };
                    *o = f64::from(qn) * (1.0 - f64::from(c)) + f64::from(v);
                }
            }
        }
    }
}

/// Codes per block of the candidate screen in `Prepared::nearest`.
const SCREEN: usize = 64;

/// min_j (a_j − 2 g_j), lane-wise so the compiler can vectorise it.
fn lane_min(g: &[f32], a: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut acc = [f32::INFINITY; LANES];
    for (gc, ac) in g.chunks_exact(LANES).zip(a.chunks_exact(LANES)) {
        for k in 0..LANES {
            let v = ac[k] - 2.0 * gc[k];
            acc[k] = if v < acc[k] { v } else { acc[k] };
        }
    }
    let tail = g.len() - g.len() % LANES;
    let rest = g[tail..]
        .iter()
        .zip(&a[tail..])
        .map(|(&gj, &aj)| aj - 2.0 * gj);
    acc.into_iter()
        .chain(rest)
        .fold(f32::INFINITY, |m, v| if v < m { v } else { m })
}

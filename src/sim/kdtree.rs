//! An exact k-d tree for the searches in few dimensions (the latent dimension is 2 by default):
//! training's nearest code (the tree refilled for every batch), the evaluation's nearest code
//! of every point, `coverage`'s nearest codes and counts (its k-NN radii and balls where only
//! one set has a tree), the nearest embedding of each code's start in `code_travel`.
//!
//! Every answer is the one of the direct scan over `nearest::sq_dist` (the f32 sum in index
//! order): the tree only skips boxes that cannot hold a point that would change it. A box's
//! lower bound is computed with the same operations as a distance, from the gap between the
//! query and the box on each dimension (0 inside it). Rounding is monotone, so for every point
//! p of the box each |fl(q_j − p_j)| is at least the gap, each square at least the gap's
//! square, and each partial sum at least the bound's: the bound is never above a distance the
//! scan computes, with no margin needed. Ties are settled as in the scan (lowest index), since
//! a box whose bound equals the best distance so far is still visited.
//!
//! Points must be finite (`new` returns None otherwise, and callers scan); queries may be
//! anything: a query with a NaN has only NaN distances, which win nothing and count as in the
//! scan, and an infinite one only infinite distances (the tests cover both).

use ndarray::ArrayView2;

use crate::sim::nearest::sq_dist;

/// Dimensions up to which a tree is built: each level splits one dimension, so with more of
/// them a box's neighbours multiply and the scan's vectorised pass wins.
pub const MAX_DIM: usize = 4;
/// Fewest points worth a tree: the scan of fewer is a few vectorised passes per query (a
/// round number, not tuned; the answers are the same either way).
pub const MIN_POINTS: usize = 128;
/// Points per leaf: 16 rather than 8 walks fewer nodes, which mispredict their branches (at
/// S = 1 024 the evaluation's mispredictions fell by 13 %, its instructions by 4 %).
const LEAF: usize = 16;

#[derive(Debug, Clone, Default)]
pub struct KdTree {
    m: usize,
    rows: Vec<f32>,    // (S, m), the points in tree order: each node's are contiguous
    index: Vec<usize>, // (S), each stored row's index in the input
    place: Vec<usize>, // (S), each input row's place in the stored rows
    nodes: Vec<Node>,
    boxes: Vec<f32>, // (nodes, 2m): each node's bounding box, lows then highs
    /// Scratch of the build: the points beside their input rows, in the order of the splits.
    items: Vec<Item>,
    /// Σ over leaves of their boxes' extents (all dimensions) when the partition was built:
    /// what `refill` compares the moved points' boxes with.
    spread: f32,
}

/// How far the leaves' boxes may grow (Σ of extents, over the built partition's) before
/// `refill` builds a new partition: boxes that grew more overlap enough that the searches
/// cost more than a build. Any partition gives the same answers; this only sets the speed.
const REFILL_GROWTH: f32 = 1.25;

/// A point padded to `MAX_DIM` coordinates, with its input row: the splits move and compare
/// contiguous items instead of reaching into the points through an index.
type Item = ([f32; MAX_DIM], usize);

#[derive(Debug, Clone, Copy, Default)]
struct Node {
    /// Stored rows start..end.
    start: usize,
    end: usize,
    /// The first of the two children (the second follows it); 0 for a leaf.
    children: usize,
}

impl KdTree {
    /// The tree over `points` (S, m); None when a tree would not pay (m = 0 or above
    /// `MAX_DIM`, fewer than `MIN_POINTS` points) or a point is not finite.
    pub fn new(points: ArrayView2<f32>) -> Option<KdTree> {
        let mut tree = KdTree::default();
        tree.fill(points).then_some(tree)
    }

    /// Becomes the tree over `points`, as `new` builds it, reusing its buffers: the training
    /// step rebuilds it for every batch and allocates nothing once they have grown. False,
    /// and the tree unusable, where `new` gives None.
    pub fn fill(&mut self, points: ArrayView2<f32>) -> bool {
        let (s, m) = points.dim();
        self.index.clear();
        self.nodes.clear();
        self.rows.clear();
        if m == 0 || m > MAX_DIM || s < MIN_POINTS || points.iter().any(|v| !v.is_finite()) {
            return false;
        }
        let p = points.as_standard_layout();
        let ps = p.as_slice().expect("standard layout");
        self.m = m;
        self.nodes.push(Node {
            start: 0,
            end: s,
            children: 0,
        });
        self.boxes.clear();
        self.boxes.resize(2 * m, 0.0);
        let mut items = std::mem::take(&mut self.items);
        items.clear();
        items.extend(ps.chunks_exact(m).enumerate().map(|(i, row)| {
            let mut p = [0.0; MAX_DIM];
            p[..m].copy_from_slice(row);
            (p, i)
        }));
        self.split(0, &mut items);
        self.place.resize(s, 0);
        for (at, (p, i)) in items.iter().enumerate() {
            self.rows.extend_from_slice(&p[..m]);
            self.index.push(*i);
            self.place[*i] = at;
        }
        self.items = items;
        self.spread = self.leaf_spread();
        true
    }

    /// `fill` for points that moved since the last one (the training step's codebook, a batch
    /// later): when they are as many, keeps the partition and recomputes only the boxes, in
    /// one pass over the points, unless the boxes grew by more than `REFILL_GROWTH`. The
    /// answers are the same either way (module doc); only the search's speed depends on the
    /// partition.
    pub fn refill(&mut self, points: ArrayView2<f32>) -> bool {
        let (s, m) = points.dim();
        if self.nodes.is_empty() || s != self.index.len() || m != self.m {
            return self.fill(points);
        }
        let p = points.as_standard_layout();
        let ps = p.as_slice().expect("standard layout");
        for (row, &i) in self.rows.chunks_exact_mut(m).zip(&self.index) {
            row.copy_from_slice(&ps[i * m..(i + 1) * m]);
        }
        if self.rows.iter().any(|v| !v.is_finite()) {
            return self.fill(points); // which says no tree
        }
        // Children come after their parent: bottom-up in reverse.
        for node in (0..self.nodes.len()).rev() {
            let Node {
                start,
                end,
                children,
            } = self.nodes[node];
            let (before, after) = self.boxes.split_at_mut(2 * m * (node + 1));
            let (lo, hi) = before[2 * m * node..].split_at_mut(m);
            lo.fill(f32::INFINITY);
            hi.fill(f32::NEG_INFINITY);
            if children == 0 {
                for row in self.rows[start * m..end * m].chunks_exact(m) {
                    widen(lo, hi, row, row);
                }
            } else {
                let first = 2 * m * (children - node - 1);
                for child in after[first..first + 4 * m].chunks_exact(2 * m) {
                    let (clo, chi) = child.split_at(m);
                    widen(lo, hi, clo, chi);
                }
            }
        }
        if self.leaf_spread() > REFILL_GROWTH * self.spread {
            return self.fill(points);
        }
        true
    }

    /// Σ over leaves of their boxes' extents.
    fn leaf_spread(&self) -> f32 {
        let m = self.m;
        (self.nodes.iter().zip(self.boxes.chunks_exact(2 * m)))
            .filter(|(n, _)| n.children == 0)
            .map(|(_, b)| {
                (b[m..].iter().zip(&b[..m]))
                    .map(|(h, l)| h - l)
                    .sum::<f32>()
            })
            .sum()
    }

    /// Bounds `node` and splits it at the median of its widest dimension, down to leaves of
    /// at most `LEAF` points (or of one repeated point). `items` holds the input rows.
    fn split(&mut self, node: usize, items: &mut [Item]) {
        let m = self.m;
        let Node { start, end, .. } = self.nodes[node];
        let (lo, hi) = self.boxes[2 * m * node..2 * m * (node + 1)].split_at_mut(m);
        // Over the padded coordinates, a loop of known length the compiler vectorises; the
        // padding's zeros stay out of the box.
        let (mut l, mut h) = ([f32::INFINITY; MAX_DIM], [f32::NEG_INFINITY; MAX_DIM]);
        for (p, _) in &items[start..end] {
            widen(&mut l, &mut h, p, p);
        }
        lo.copy_from_slice(&l[..m]);
        hi.copy_from_slice(&h[..m]);
        let (dim, extent) =
            (0..m)
                .map(|j| (j, hi[j] - lo[j]))
                .fold((0, 0.0), |a, b| if b.1 > a.1 { b } else { a });
        if end - start <= LEAF || extent == 0.0 {
            return;
        }
        let mid = start + (end - start) / 2;
        // Any split gives the same answers; this one is deterministic.
        items[start..end].select_nth_unstable_by(mid - start, |a, b| a.0[dim].total_cmp(&b.0[dim]));
        let first = self.nodes.len();
        self.nodes[node].children = first;
        self.nodes.push(Node {
            start,
            end: mid,
            children: 0,
        });
        self.nodes.push(Node {
            start: mid,
            end,
            children: 0,
        });
        self.boxes.resize(2 * m * self.nodes.len(), 0.0);
        self.split(first, items);
        self.split(first + 1, items);
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Index of the point nearest to `q` (m): the lowest index holding the smallest non-NaN
    /// `sq_dist`, 0 when no distance is finite (as `nearest::nearest_with`).
    pub fn nearest(&self, q: &[f32]) -> usize {
        let best = self.nearest_query(q);
        if best.d == f32::INFINITY {
            0
        } else {
            best.at
        }
    }

    /// The `best.len()`-th smallest squared distance from `q` to the points other than input
    /// row `skip` (INFINITY when there are fewer), as offering every distance in index order
    /// to `prdc`'s insertion would leave it; `best` is scratch.
    pub fn kth_smallest(&self, q: &[f32], skip: usize, best: &mut [f32]) -> f32 {
        assert!(!best.is_empty(), "k ≥ 1");
        best.fill(f32::INFINITY);
        let mut query = Smallest { skip, best };
        self.search(q, &mut query);
        best[best.len() - 1]
    }

    /// The smallest non-NaN squared distance from `q` to a point (INFINITY when none is).
    pub fn nearest_sq(&self, q: &[f32]) -> f32 {
        self.nearest_query(q).d
    }

    fn nearest_query(&self, q: &[f32]) -> Nearest {
        let mut best = Nearest {
            at: usize::MAX,
            d: f32::INFINITY,
        };
        self.search(q, &mut best);
        best
    }

    /// How many points other than input row `own` lie strictly nearer to that point than
    /// squared distance `d`, counted up to `k`. The search starts in the point's own leaf, where
    /// its nearest neighbours mostly are (at k = 5 and S = 1 024 that leaf alone settles most
    /// counts), and climbs the path to the root, visiting each sibling whose box may hold a
    /// point below `d` until the count reaches `k`: no descent, no boxes bounded on the way down.
    pub fn count_below_own(&self, own: usize, d: f32, k: usize) -> usize {
        let mut query = Below {
            skip: own,
            d,
            k,
            count: 0,
        };
        match self.m {
            1 => self.climb::<1>(own, &mut query),
            2 => self.climb::<2>(own, &mut query),
            3 => self.climb::<3>(own, &mut query),
            4 => self.climb::<4>(own, &mut query),
            m => unreachable!("no tree in {m} > MAX_DIM dimensions"),
        }
        query.count.min(k)
    }

    fn climb<const M: usize>(&self, own: usize, query: &mut Below) {
        let at = self.place[own];
        let q = &self.rows[at * M..(at + 1) * M];
        // The nodes from the root to the leaf holding stored row `at`: each split halves its
        // node, so the path is shorter than the bits of a usize.
        let mut path = [0; usize::BITS as usize];
        let mut depth = 0;
        while let children @ 1.. = self.nodes[path[depth]].children {
            let next = if at < self.nodes[children].end {
                children
            } else {
                children + 1
            };
            depth += 1;
            path[depth] = next;
        }
        self.walk::<M>(path[depth], q, query);
        for level in (1..=depth).rev() {
            if query.count >= query.k {
                return;
            }
            let first = self.nodes[path[level - 1]].children;
            let sibling = if path[level] == first {
                first + 1
            } else {
                first
            };
            if !query.skips(self.lower_bound::<M>(sibling, q)) {
                self.walk::<M>(sibling, q, query);
            }
        }
    }

    /// Whether some point lies within squared distance `r` of `q` (`sq_dist` ≤ r).
    pub fn any_within(&self, q: &[f32], r: f32) -> bool {
        let mut query = Within { r, found: false };
        self.search(q, &mut query);
        query.found
    }

    /// Offers `query` every point whose box it does not skip, nearest box first.
    fn search(&self, q: &[f32], query: &mut impl Query) {
        assert_eq!(q.len(), self.m, "query and points differ in dimension");
        // One walk per dimension, so that its loops over M have a known length.
        match self.m {
            1 => self.walk::<1>(0, q, query),
            2 => self.walk::<2>(0, q, query),
            3 => self.walk::<3>(0, q, query),
            4 => self.walk::<4>(0, q, query),
            m => unreachable!("no tree in {m} > MAX_DIM dimensions"),
        }
    }

    fn walk<const M: usize>(&self, node: usize, q: &[f32], query: &mut impl Query) {
        let Node {
            start,
            end,
            children,
        } = self.nodes[node];
        if children == 0 {
            for (row, &at) in self.rows[start * M..end * M]
                .chunks_exact(M)
                .zip(&self.index[start..end])
            {
                query.offer(at, sq_dist(&q[..M], row));
            }
            return;
        }
        let (a, b) = (children, children + 1);
        let (la, lb) = (self.lower_bound::<M>(a, q), self.lower_bound::<M>(b, q));
        let near_first = if lb < la {
            [(b, lb), (a, la)]
        } else {
            [(a, la), (b, lb)]
        };
        for (child, bound) in near_first {
            if !query.skips(bound) {
                self.walk::<M>(child, q, query);
            }
        }
    }

    /// A value never above `sq_dist(q, p)` for any point p in `node`'s box (module doc).
    fn lower_bound<const M: usize>(&self, node: usize, q: &[f32]) -> f32 {
        let (lo, hi) = self.boxes[2 * M * node..2 * M * (node + 1)].split_at(M);
        let mut acc = 0.0f32;
        for ((&qj, &l), &h) in q[..M].iter().zip(lo).zip(hi) {
            // Without branches: at most one difference is positive (l ≤ h), and a NaN query
            // gives NaN differences, which `max` passes over to 0, as the comparisons did.
            let gap = (l - qj).max(qj - h).max(0.0);
            acc += gap * gap;
        }
        acc
    }
}

/// Grows the box (lo, hi) to hold the box (l, h).
fn widen(lo: &mut [f32], hi: &mut [f32], l: &[f32], h: &[f32]) {
    for (((a, b), &l), &h) in lo.iter_mut().zip(hi.iter_mut()).zip(l).zip(h) {
        *a = a.min(l);
        *b = b.max(h);
    }
}

/// What a walk looks for: it is offered points (input index, squared distance) and says which
/// boxes, by their lower bound, cannot change its answer.
trait Query {
    fn skips(&self, bound: f32) -> bool;
    fn offer(&mut self, at: usize, d: f32);
}

struct Nearest {
    at: usize,
    d: f32,
}

impl Query for Nearest {
    // A box at the best distance may hold a lower index at that distance: only farther ones go.
    fn skips(&self, bound: f32) -> bool {
        bound > self.d
    }
    fn offer(&mut self, at: usize, d: f32) {
        if d < self.d || (d == self.d && at < self.at) {
            (self.at, self.d) = (at, d);
        }
    }
}

struct Smallest<'a> {
    skip: usize,
    best: &'a mut [f32],
}

impl Query for Smallest<'_> {
    // A distance equal to the current k-th leaves it as it is.
    fn skips(&self, bound: f32) -> bool {
        bound >= self.best[self.best.len() - 1]
    }
    fn offer(&mut self, at: usize, d: f32) {
        if at != self.skip {
            insert_smallest(self.best, d);
        }
    }
}

/// Counts a leaf's rows without branches, past `k` (which `count_below_own` caps it at); no
/// box is entered once the count reached `k`.
struct Below {
    skip: usize,
    d: f32,
    k: usize,
    count: usize,
}

impl Query for Below {
    // A box whose bound reaches `d` holds no point below it.
    fn skips(&self, bound: f32) -> bool {
        self.count >= self.k || bound >= self.d
    }
    fn offer(&mut self, at: usize, d: f32) {
        self.count += usize::from((at != self.skip) & (d < self.d));
    }
}

struct Within {
    r: f32,
    found: bool,
}

impl Query for Within {
    fn skips(&self, bound: f32) -> bool {
        self.found || bound > self.r
    }
    fn offer(&mut self, _at: usize, d: f32) {
        self.found |= d <= self.r;
    }
}

/// Insert `d` into `best` (ascending, fixed length) if it is among the smallest.
pub fn insert_smallest(best: &mut [f32], d: f32) {
    let Some(last) = best.len().checked_sub(1) else {
        return;
    };
    if d >= best[last] {
        return;
    }
    let mut i = last;
    while i > 0 && best[i - 1] > d {
        best[i] = best[i - 1];
        i -= 1;
    }
    best[i] = d;
}

/// `insert_smallest` of every value of `d` in order, passing over each run of 8 that cannot
/// change `best`: none below its last entry (a NaN, which `insert_smallest` would take, could).
pub fn insert_all(best: &mut [f32], d: &[f32]) {
    const LANES: usize = 8;
    let last = best.len() - 1;
    let chunks = d.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        let t = best[last];
        let mut none = true;
        for &v in c {
            none &= v >= t;
        }
        if !none {
            c.iter().for_each(|&v| insert_smallest(best, v));
        }
    }
    rest.iter().for_each(|&v| insert_smallest(best, v));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::nearest::nearest_one;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Point sets that stress the exactness: spread out, on a small integer grid (ties at equal
    /// distances), collapsed onto a few repeated points, and at very different scales.
    fn point_sets(m: usize, rng: &mut ChaCha8Rng) -> Vec<Array2<f32>> {
        let s = rng.gen_range(MIN_POINTS..700);
        vec![
            Array2::from_shape_fn((s, m), |_| rng.gen_range(-3.0f32..3.0)),
            Array2::from_shape_fn((s, m), |_| rng.gen_range(-3..=3) as f32),
            Array2::from_shape_fn((s, m), |(i, j)| ((i % 5) * (j + 1)) as f32 * 0.1),
            Array2::from_shape_fn((s, m), |(i, _)| {
                rng.gen_range(-1.0f32..1.0) * 10f32.powi(i as i32 % 9 - 4)
            }),
        ]
    }

    /// Queries near and far from the points, on them, and not finite.
    fn queries(points: &Array2<f32>, rng: &mut ChaCha8Rng) -> Vec<Vec<f32>> {
        let m = points.ncols();
        let mut qs: Vec<Vec<f32>> = (0..60)
            .map(|_| (0..m).map(|_| rng.gen_range(-4.0f32..4.0)).collect())
            .collect();
        qs.extend((0..20).map(|i| points.row(i * 3).to_vec()));
        qs.extend((0..20).map(|_| (0..m).map(|_| rng.gen_range(-3..=3) as f32).collect()));
        qs.push(vec![1e30; m]);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut q = vec![0.5; m];
            q[m - 1] = bad;
            qs.push(q);
        }
        qs
    }

    /// The scans the tree must agree with bit for bit.
    fn scan_kth(points: &Array2<f32>, q: &[f32], skip: usize, k: usize) -> f32 {
        let mut best = vec![f32::INFINITY; k];
        for (j, p) in points.rows().into_iter().enumerate() {
            if j != skip {
                insert_smallest(&mut best, sq_dist(q, p.as_slice().unwrap()));
            }
        }
        best[k - 1]
    }

    fn scan_within(points: &Array2<f32>, q: &[f32], r: f32) -> bool {
        points
            .rows()
            .into_iter()
            .any(|p| sq_dist(q, p.as_slice().unwrap()) <= r)
    }

    #[test]
    fn answers_as_the_scan_does() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for m in 1..=MAX_DIM {
            for points in point_sets(m, &mut rng) {
                let tree = KdTree::new(points.view()).expect("a tree pays here");
                assert_eq!(tree.len(), points.nrows());
                for q in queries(&points, &mut rng) {
                    let want = nearest_one(&q, points.as_slice().unwrap(), m);
                    assert_eq!(tree.nearest(&q), want, "m = {m}, q = {q:?}");
                    for k in [1, 5] {
                        let skip = rng.gen_range(0..points.nrows() + 1); // may skip none
                        let mut best = vec![0.0; k];
                        let got = tree.kth_smallest(&q, skip, &mut best);
                        let want = scan_kth(&points, &q, skip, k);
                        assert_eq!(got.to_bits(), want.to_bits(), "m = {m}, q = {q:?}");
                    }
                    let r = scan_kth(&points, &q, usize::MAX, 3);
                    for r in [r, r * 0.999, 0.0, f32::INFINITY] {
                        let within = tree.any_within(&q, r);
                        assert_eq!(within, scan_within(&points, &q, r), "q = {q:?}, r = {r}");
                    }
                    let least = (points.rows().into_iter())
                        .map(|p| sq_dist(&q, p.as_slice().unwrap()))
                        .filter(|d| !d.is_nan())
                        .fold(f32::INFINITY, f32::min);
                    assert_eq!(tree.nearest_sq(&q).to_bits(), least.to_bits(), "q = {q:?}");
                }
            }
        }
    }

    /// `count_below_own` against the count over every other point, at thresholds on its
    /// neighbours' distances (ties included: the count is strict), a hair either side, 0,
    /// infinity and NaN; and again after a refill moved the points under a kept partition.
    #[test]
    fn counts_around_own_points_as_the_scan_does() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let check = |tree: &KdTree, points: &Array2<f32>, rng: &mut ChaCha8Rng| {
            let ps = points.as_slice().unwrap();
            let m = points.ncols();
            for _ in 0..40 {
                let own = rng.gen_range(0..points.nrows());
                let q = &ps[own * m..(own + 1) * m];
                let dists: Vec<f32> = (0..points.nrows())
                    .filter(|&j| j != own)
                    .map(|j| sq_dist(q, &ps[j * m..(j + 1) * m]))
                    .collect();
                let mut sorted = dists.clone();
                sorted.sort_by(f32::total_cmp);
                let mut ds = vec![0.0, f32::INFINITY, f32::NAN];
                for &t in &sorted[..8] {
                    ds.extend([t, t * 0.999, f32::from_bits(t.to_bits() + 1)]);
                }
                ds.push(sorted[sorted.len() / 2]);
                for d in ds {
                    for k in [1, 5, 40] {
                        let want = dists.iter().filter(|&&x| x < d).count().min(k);
                        let got = tree.count_below_own(own, d, k);
                        assert_eq!(got, want, "m = {m}, own = {own}, d = {d}, k = {k}");
                    }
                }
            }
        };
        for m in 1..=MAX_DIM {
            for mut points in point_sets(m, &mut rng) {
                let mut tree = KdTree::new(points.view()).expect("a tree pays here");
                check(&tree, &points, &mut rng);
                points.mapv_inplace(|v| v + rng.gen_range(-1e-3f32..1e-3));
                assert!(tree.refill(points.view()));
                check(&tree, &points, &mut rng);
            }
        }
    }

    #[test]
    fn a_refilled_tree_answers_for_the_moved_points() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for m in 1..=MAX_DIM {
            let mut points = Array2::from_shape_fn((500, m), |_| rng.gen_range(-3.0f32..3.0));
            let mut tree = KdTree::default();
            assert!(tree.refill(points.view()), "the first refill builds");
            let built = tree.index.clone();
            for step in 0..4 {
                match step {
                    // Small moves, then a shift of every point: the partition stays, the boxes
                    // must follow (a search in the old boxes would miss the shifted points).
                    0 | 1 => points.mapv_inplace(|v| v + rng.gen_range(-0.01f32..0.01)),
                    2 => points.mapv_inplace(|v| v + 1.0),
                    // Rows swapped at random: the boxes grow, a new partition is built.
                    _ => {
                        let order: Vec<usize> =
                            rand::seq::index::sample(&mut rng, 500, 500).into_vec();
                        points = points.select(ndarray::Axis(0), &order);
                    }
                }
                assert!(tree.refill(points.view()));
                assert_eq!(tree.index == built, step < 3, "m = {m}, step {step}");
                for q in queries(&points, &mut rng) {
                    let want = nearest_one(&q, points.as_slice().unwrap(), m);
                    assert_eq!(tree.nearest(&q), want, "m = {m}, step {step}, q = {q:?}");
                    let mut best = vec![0.0; 5];
                    let got = tree.kth_smallest(&q, 7, &mut best);
                    assert_eq!(got.to_bits(), scan_kth(&points, &q, 7, 5).to_bits());
                }
            }
            // A point that is not finite: no tree, and a finite set later builds one again.
            points[[3, 0]] = f32::NAN;
            assert!(!tree.refill(points.view()));
            points[[3, 0]] = 0.5;
            assert!(tree.refill(points.view()));
            assert_eq!(tree.nearest(points.row(3).as_slice().unwrap()), 3);
            // Another number of points: a tree of those.
            let fewer = points.slice(ndarray::s![..300, ..]).to_owned();
            assert!(tree.refill(fewer.view()));
            assert_eq!(tree.len(), 300);
        }
    }

    #[test]
    fn ties_go_to_the_lowest_index_wherever_the_tree_put_it() {
        // 300 copies of 4 points: each query is nearest to one of them, 75 times over.
        let corners = [[0.0f32, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]];
        let points = Array2::from_shape_fn((300, 2), |(i, j)| corners[(i * 7) % 4][j]);
        let tree = KdTree::new(points.view()).unwrap();
        for (c, q) in corners.iter().enumerate() {
            let first = (0..300).find(|i| (i * 7) % 4 == c).unwrap();
            assert_eq!(tree.nearest(q), first);
            // Exactly between two corners: the lower index of the two firsts.
            let mid = [q[0], 0.5];
            let lowest = (0..300).find(|&i| points[[i, 0]] == q[0]).unwrap();
            assert_eq!(tree.nearest(&mid), lowest);
        }
    }

    #[test]
    fn no_tree_where_it_would_not_pay_or_points_are_not_finite() {
        let ok = Array2::<f32>::zeros((MIN_POINTS, 2));
        assert!(KdTree::new(ok.view()).is_some());
        assert!(KdTree::new(Array2::<f32>::zeros((MIN_POINTS - 1, 2)).view()).is_none());
        assert!(KdTree::new(Array2::<f32>::zeros((MIN_POINTS, MAX_DIM + 1)).view()).is_none());
        assert!(KdTree::new(Array2::<f32>::zeros((MIN_POINTS, 0)).view()).is_none());
        for bad in [f32::NAN, f32::INFINITY] {
            let mut p = ok.clone();
            p[[7, 1]] = bad;
            assert!(KdTree::new(p.view()).is_none());
        }
    }

    #[test]
    fn leaves_are_small_and_cover_every_point_once() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let points = Array2::from_shape_fn((1000, 2), |_| rng.gen_range(-1.0f32..1.0));
        let tree = KdTree::new(points.view()).unwrap();
        let mut seen = tree.index.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        let leaves: Vec<&Node> = tree.nodes.iter().filter(|n| n.children == 0).collect();
        assert!(leaves.iter().all(|n| n.end - n.start <= LEAF));
        assert_eq!(leaves.iter().map(|n| n.end - n.start).sum::<usize>(), 1000);
        // Each stored row is its input row.
        for (pos, &i) in tree.index.iter().enumerate() {
            assert_eq!(
                &tree.rows[2 * pos..2 * pos + 2],
                points.row(i).as_slice().unwrap()
            );
        }
    }
}

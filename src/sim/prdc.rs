//! k-nearest-neighbour manifold metrics of a "fake" point set against a "real" one: precision
//! and recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020).
//!
//! Each real point x_i carries a ball of radius NND_k(x_i), the distance to its k-th nearest
//! *other* real point (k = min(k, n − 1)); likewise each fake point y_j among the fakes.
//! - precision = share of fakes inside at least one real ball;
//! - recall    = share of reals inside at least one fake ball;
//! - density   = Σ_j (real balls holding y_j) / (k · #fakes) (≈ 1 when fake ~ real);
//! - coverage  = share of real balls holding at least one fake.
//!
//! Balls are closed (distance ≤ radius), unlike the `<` of the reference `prdc` package, so
//! that collapsed (duplicate) points still count as inside each other's zero-radius balls.
//! Distances are compared squared, in f32 through the vectorised kernel of `nearest`.

use ndarray::{ArrayView2, Axis};
use rayon::prelude::*;

use crate::sim::kdtree::{insert_all, KdTree};
use crate::sim::nearest::{nearest_parallel, sq_dist, PointsByDim, Prepared, DIRECT_MAX_DIM};

/// Neighbours that define a ball (Kynkäänniemi et al. and Naeem et al. use k = 5).
pub const K: usize = 5;

/// The four metrics of one (real, fake) pair of sets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prdc {
    pub precision: f64,
    pub recall: f64,
    pub density: f64,
    pub coverage: f64,
}

/// Precision, recall, density and coverage of `fake` (n_f, d) against `real` (n_r, d) with
/// k-NN balls; NaN throughout when either set has fewer than 2 points.
pub fn prdc(real: ArrayView2<f32>, fake: ArrayView2<f32>, k: usize) -> Prdc {
    let nan = Prdc {
        precision: f64::NAN,
        recall: f64::NAN,
        density: f64::NAN,
        coverage: f64::NAN,
    };
    if real.nrows() < 2 || fake.nrows() < 2 {
        return nan;
    }
    let (kr, real_r) = knn_radii(real, k);
    let (_, fake_r) = knn_radii(fake, k);
    let in_real = balls(real, &real_r, fake);
    let in_fake = balls(fake, &fake_r, real);
    let share = |hits: &[usize]| hits.iter().filter(|&&c| c > 0).count() as f64 / hits.len() as f64;
    Prdc {
        precision: share(&in_real.per_probe),
        recall: share(&in_fake.per_probe),
        density: in_real.per_probe.iter().sum::<usize>() as f64 / (kr * fake.nrows()) as f64,
        coverage: share(&in_real.per_ball),
    }
}

/// Coverage alone (no fake balls needed): share of the real k-NN balls holding at least one
/// fake point. NaN when `real` has fewer than 2 points or `fake` is empty.
pub fn coverage(real: ArrayView2<f32>, fake: ArrayView2<f32>, k: usize) -> f64 {
    coverage_of(real, &Fakes::new(fake), k, None)
}

/// A fake set prepared once for the balls of any number of `coverage_of` calls.
pub struct Fakes<'a> {
    points: ArrayView2<'a, f32>,
    tree: Option<KdTree>,
}

impl<'a> Fakes<'a> {
    /// `points` (n_f, d), with an exact tree when there are few dimensions and many points.
    pub fn new(points: ArrayView2<'a, f32>) -> Fakes<'a> {
        Fakes {
            points,
            tree: KdTree::new(points),
        }
    }

    /// For each row of `points` (n, d) marked in `rows`, the squared distance to its nearest
    /// fake, the one `coverage_of` would find itself (NaN for the rows not marked). `nearest`,
    /// when given, holds each row's nearest fake: a finite distance to it is the least one, and
    /// only the other rows are searched, by the tree or by one exact search for all of them.
    /// The tree's rows go to rayon's threads in tasks.
    pub fn nearest_sq(
        &self,
        points: ArrayView2<f32>,
        rows: &[bool],
        nearest: Option<&[usize]>,
    ) -> Vec<f32> {
        let p = points.as_standard_layout();
        let m = p.ncols();
        let ps = p.as_slice().expect("standard layout");
        let fakes = self.points.as_standard_layout();
        let fs = fakes.as_slice().expect("standard layout");
        let row = |i: usize| &ps[i * m..(i + 1) * m];
        let known = |i: usize| {
            let d = nearest.map(|a| sq_dist(row(i), &fs[a[i] * m..(a[i] + 1) * m]));
            d.filter(|d| d.is_finite())
        };
        let mut out = vec![f32::NAN; p.nrows()];
        let Some(tree) = &self.tree else {
            let mut search = Vec::new();
            for (i, o) in out.iter_mut().enumerate().filter(|(i, _)| rows[*i]) {
                match known(i) {
                    Some(d) => *o = d,
                    None => search.push(i),
                }
            }
            let mut found = vec![0; search.len()];
            nearest_parallel(p.select(Axis(0), &search).view(), fakes.view(), &mut found);
            for (&i, &j) in search.iter().zip(&found) {
                out[i] = sq_dist(row(i), &fs[j * m..(j + 1) * m]);
            }
            return out;
        };
        out.par_chunks_mut(RADII_TASK)
            .zip(rows.par_chunks(RADII_TASK))
            .enumerate()
            .for_each(|(t, (out, rows))| {
                for ((o, &marked), i) in out.iter_mut().zip(rows).zip(t * RADII_TASK..) {
                    if marked {
                        *o = known(i).unwrap_or_else(|| tree.nearest_sq(row(i)));
                    }
                }
            });
        out
    }
}

/// `coverage` against a prepared fake set. A ball holds a fake exactly when it holds its
/// nearest fake. With trees over both sets, no radius is needed: the ball of x (radius the
/// k-th smallest distance to the other reals) holds the nearest fake, at d, exactly when fewer
/// than k other reals lie strictly nearer than d, a count the tree stops at k (every distance
/// there is a number, the points being finite, so this is the comparison `d ≤ radius` itself).
/// Otherwise the radii come from `knn_radii`, and a tree over the fakes settles each ball with
/// a search that stops at the first fake inside; without one, the ball's nearest fake does,
/// from one exact nearest search (a matrix-product screen for wide points) instead of a
/// distance to every fake. `nearest`, when given, holds each real's distance from
/// `Fakes::nearest_sq` (a caller whose sets share points finds each once).
pub fn coverage_of(real: ArrayView2<f32>, fakes: &Fakes, k: usize, nearest: Option<&[f32]>) -> f64 {
    coverage_in(real, &mut KdTree::default(), fakes, k, nearest)
}

/// `coverage_of` with the reals' tree in `tree`, refilled (`KdTree::refill`) when it holds a
/// partition of as many reals from the call before: the same answer, for less than a build.
pub fn coverage_in(
    real: ArrayView2<f32>,
    tree: &mut KdTree,
    fakes: &Fakes,
    k: usize,
    nearest: Option<&[f32]>,
) -> f64 {
    let fake = fakes.points;
    let n = real.nrows();
    if n < 2 || fake.nrows() == 0 {
        return f64::NAN;
    }
    let real = real.as_standard_layout();
    let m = real.ncols();
    let rs = real.as_slice().expect("standard layout");
    // The reals' tree is refilled or built only where the fakes have one.
    let fake_tree = fakes.tree.as_ref().filter(|_| tree.refill(real.view()));
    if let Some(fake_tree) = fake_tree {
        let real_tree = &*tree;
        let k = k.min(n - 1);
        let held = (0..n)
            .into_par_iter()
            .with_min_len(RADII_TASK)
            .filter(|&i| {
                let row = &rs[i * m..(i + 1) * m];
                let d = nearest.map_or_else(|| fake_tree.nearest_sq(row), |d| d[i]);
                real_tree.count_below_own(i, d, k) < k
            })
            .count();
        return held as f64 / n as f64;
    }
    let (_, radii) = knn_radii(real.view(), k);
    let held = match &fakes.tree {
        Some(tree) => rs
            .chunks_exact(m)
            .zip(&radii)
            .filter(|(row, &r)| tree.any_within(row, r))
            .count(),
        None => {
            let searched;
            let nearest = match nearest {
                Some(d) => d,
                None => {
                    searched = fakes.nearest_sq(real.view(), &vec![true; n], None);
                    &searched
                }
            };
            nearest.iter().zip(&radii).filter(|(&d, &r)| d <= r).count()
        }
    };
    held as f64 / real.nrows() as f64
}

/// The k actually used (min(k, n − 1), n ≥ 2) and each point's squared distance to its k-th
/// nearest other point: from an exact tree in few dimensions (`kdtree`); in many, from a matrix
/// product's screen and the direct sums of the neighbours it keeps (`Prepared`); else from each
/// point's distances to all others in one vectorised pass. Every path gives the last one's
/// radius bit for bit. The points go to rayon's threads in tasks (each radius its own, so any
/// split gives the same).
pub fn knn_radii(points: ArrayView2<f32>, k: usize) -> (usize, Vec<f32>) {
    let n = points.nrows();
    assert!(n >= 2 && k >= 1, "k-NN radii need 2 points and k ≥ 1");
    let k = k.min(n - 1);
    let p = points.as_standard_layout();
    let m = p.ncols();
    let ps = p.as_slice().expect("standard layout");
    let mut radii = vec![0.0f32; n];
    let tasks = radii.par_chunks_mut(RADII_TASK).enumerate();
    if let Some(tree) = KdTree::new(p.view()) {
        tasks.for_each_init(
            || vec![0.0f32; k],
            |best, (t, out)| {
                for (r, i) in out.iter_mut().zip(t * RADII_TASK..) {
                    *r = tree.kth_smallest(&ps[i * m..(i + 1) * m], i, best);
                }
            },
        );
        return (k, radii);
    }
    // Wide points: one matrix product per task screens the neighbours (`Prepared`), the
    // direct sums settle them.
    let prepared = (m > DIRECT_MAX_DIM).then(|| Prepared::new(p.view()));
    if let Some(prepared) = prepared.filter(Prepared::finite) {
        tasks.for_each_init(
            || (Vec::new(), vec![0.0f32; k]),
            |(gram, best), (t, out)| {
                let own = t * RADII_TASK..t * RADII_TASK + out.len();
                prepared.kth_smallest_own(own, out, best, gram);
            },
        );
        return (k, radii);
    }
    let by_dim = PointsByDim::new(p.view());
    tasks.for_each_init(
        || (vec![0.0f32; n], vec![0.0f32; k]),
        |(d, best), (t, out)| {
            for (r, i) in out.iter_mut().zip(t * RADII_TASK..) {
                by_dim.sq_dists(&ps[i * m..(i + 1) * m], 0, d);
                // The k smallest of the others, ascending, offered in index order.
                best.fill(f32::INFINITY);
                insert_all(best, &d[..i]);
                insert_all(best, &d[i + 1..]);
                *r = best[k - 1];
            }
        },
    );
    (k, radii)
}

/// Points per task of `knn_radii`.
const RADII_TASK: usize = 64;

/// Who is inside whom: for every probe, the number of balls (centre, squared radius) holding
/// it; for every ball, the number of probes inside it.
struct Hits {
    per_probe: Vec<usize>,
    per_ball: Vec<usize>,
}

fn balls(centres: ArrayView2<f32>, sq_radii: &[f32], probes: ArrayView2<f32>) -> Hits {
    let c = PointsByDim::new(centres);
    let p = probes.as_standard_layout();
    let mut hits = Hits {
        per_probe: vec![0; p.nrows()],
        per_ball: vec![0; c.len()],
    };
    let mut d = vec![0.0f32; c.len()]; // (centres)
    for (row, hp) in p.rows().into_iter().zip(&mut hits.per_probe) {
        c.sq_dists(row.as_slice().unwrap(), 0, &mut d);
        for ((&dc, &r), hb) in d.iter().zip(sq_radii).zip(&mut hits.per_ball) {
            if dc <= r {
                *hp += 1;
                *hb += 1;
            }
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::kdtree::{insert_smallest, MIN_POINTS};
    use crate::sim::nearest::nearest_one;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Coverage by its definition: each real's k-th smallest squared distance to the other
    /// reals (the scan's insertion), then whether some fake lies within it.
    fn coverage_by_definition(real: &Array2<f32>, fake: &Array2<f32>, k: usize) -> f64 {
        let k = k.min(real.nrows() - 1);
        let rows = |a: &Array2<f32>| -> Vec<Vec<f32>> {
            a.rows().into_iter().map(|r| r.to_vec()).collect()
        };
        let (r, f) = (rows(real), rows(fake));
        let held = r
            .iter()
            .enumerate()
            .filter(|(i, x)| {
                let mut best = vec![f32::INFINITY; k];
                for (j, y) in r.iter().enumerate() {
                    if j != *i {
                        insert_smallest(&mut best, sq_dist(x, y));
                    }
                }
                f.iter().any(|y| sq_dist(x, y) <= best[k - 1])
            })
            .count();
        held as f64 / r.len() as f64
    }

    #[test]
    fn coverage_with_trees_counts_the_balls_the_definition_does() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for m in 1..=4 {
            for case in 0..4 {
                let (nr, nf) = (
                    rng.gen_range(MIN_POINTS..400),
                    rng.gen_range(MIN_POINTS..400),
                );
                let mut point = |i: usize, j: usize| match case {
                    // Spread out; on an integer grid (equal distances, repeated points);
                    // collapsed onto a few points; at scales far apart.
                    0 => rng.gen_range(-2.0f32..2.0),
                    1 => rng.gen_range(-2..=2) as f32,
                    2 => ((i % 3) * (j + 1)) as f32 * 0.5,
                    _ => rng.gen_range(-1.0f32..1.0) * 10f32.powi(i as i32 % 7 - 3),
                };
                let real = Array2::from_shape_fn((nr, m), |(i, j)| point(i, j));
                let fake = Array2::from_shape_fn((nf, m), |(i, j)| point(i + 1, j) * 0.9);
                let fakes = Fakes::new(fake.view());
                assert!(fakes.tree.is_some() && KdTree::new(real.view()).is_some());
                let want = coverage_by_definition(&real, &fake, K);
                assert_eq!(
                    coverage_of(real.view(), &fakes, K, None),
                    want,
                    "m = {m}, case {case}"
                );
                // With the nearest fakes found beforehand, as `metrics::coverage` does.
                let near = fakes.nearest_sq(real.view(), &vec![true; nr], None);
                let got = coverage_of(real.view(), &fakes, K, Some(&near));
                assert_eq!(got, want, "m = {m}, case {case}, nearest given");
                // Those distances again, from each real's nearest fake found by a scan.
                let fs = fake.as_slice().unwrap();
                let rows = real.rows().into_iter();
                let assign: Vec<usize> = rows
                    .map(|r| nearest_one(r.as_slice().unwrap(), fs, m))
                    .collect();
                let from = fakes.nearest_sq(real.view(), &vec![true; nr], Some(&assign));
                let bits = |v: &[f32]| v.iter().map(|d| d.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&from), bits(&near), "m = {m}, case {case}");
                // k reaching n − 1 and beyond.
                let few = real.slice(ndarray::s![..MIN_POINTS, ..]).to_owned();
                let want = coverage_by_definition(&few, &fake, MIN_POINTS + 5);
                assert_eq!(coverage_of(few.view(), &fakes, MIN_POINTS + 5, None), want);
            }
        }
    }

    #[test]
    fn wide_radii_from_the_screen_are_the_scans() {
        // Every other point's direct sum, inserted in index order: the scan's radius.
        let scan = |p: &Array2<f32>, k: usize| -> Vec<u32> {
            let rows: Vec<&[f32]> = p
                .rows()
                .into_iter()
                .map(|r| r.to_slice().unwrap())
                .collect();
            let radius = |i: usize| {
                let mut best = vec![f32::INFINITY; k];
                for (j, y) in rows.iter().enumerate() {
                    if j != i {
                        insert_smallest(&mut best, sq_dist(rows[i], y));
                    }
                }
                best[k - 1].to_bits()
            };
            (0..rows.len()).map(radius).collect()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for m in [DIRECT_MAX_DIM + 1, 16, 40] {
            for case in 0..6 {
                let n = rng.gen_range(2..300);
                let mut point = |i: usize, j: usize| match case {
                    // Spread out; on an integer grid (equal distances, repeated points);
                    // far from the origin, where ‖q‖² − 2 q·p + ‖p‖² cancels to about the
                    // neighbours' gaps, or to far more; at scales far apart; one point not
                    // finite (no screen).
                    0 => rng.gen_range(-2.0f32..2.0),
                    1 => rng.gen_range(-1..=1) as f32,
                    2 => 100.0 + rng.gen_range(-0.1f32..0.1),
                    3 => 1000.0 + rng.gen_range(-1e-3f32..1e-3),
                    4 => rng.gen_range(-1.0f32..1.0) * 10f32.powi(i as i32 % 7 - 3),
                    _ if i == n / 2 && j == 0 => f32::NAN,
                    _ => rng.gen_range(-2.0f32..2.0),
                };
                let p = Array2::from_shape_fn((n, m), |(i, j)| point(i, j));
                assert_eq!(Prepared::new(p.view()).finite(), case < 5);
                for k in [1, K, n - 1] {
                    let (used, radii) = knn_radii(p.view(), k);
                    let bits: Vec<u32> = radii.iter().map(|r| r.to_bits()).collect();
                    assert_eq!(
                        bits,
                        scan(&p, used),
                        "m = {m}, case {case}, n = {n}, k = {k}"
                    );
                }
            }
        }
    }

    #[test]
    fn wide_coverage_counts_the_balls_the_definition_does() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for m in [5, 16] {
            for case in 0..3 {
                let (nr, nf) = (rng.gen_range(2..300), rng.gen_range(1..300));
                let mut point = |i: usize, j: usize| match case {
                    0 => rng.gen_range(-2.0f32..2.0),
                    1 => rng.gen_range(-1..=1) as f32,
                    _ => ((i % 3) * (j + 1)) as f32 * 0.5,
                };
                let real = Array2::from_shape_fn((nr, m), |(i, j)| point(i, j));
                let fake = Array2::from_shape_fn((nf, m), |(i, j)| point(i + 1, j) * 0.9);
                let fakes = Fakes::new(fake.view());
                assert!(fakes.tree.is_none());
                let want = coverage_by_definition(&real, &fake, K);
                assert_eq!(coverage_of(real.view(), &fakes, K, None), want, "m = {m}");
                let all = vec![true; nr];
                let near = fakes.nearest_sq(real.view(), &all, None);
                let fs = fake.as_slice().unwrap();
                let rows = real.rows().into_iter();
                let assign: Vec<usize> = rows
                    .map(|r| nearest_one(r.as_slice().unwrap(), fs, m))
                    .collect();
                let from = fakes.nearest_sq(real.view(), &all, Some(&assign));
                let bits = |v: &[f32]| v.iter().map(|d| d.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&from), bits(&near), "m = {m}, case {case}");
                let got = coverage_of(real.view(), &fakes, K, Some(&near));
                assert_eq!(got, want, "m = {m}, case {case}, nearest given");
            }
        }
    }

    #[test]
    fn nearest_fakes_not_at_a_finite_distance_are_searched() {
        // A fake so far that its distance overflows, or a NaN one (which no tree holds),
        // named as the nearest: those rows are searched, by the tree (m = 2) and without one
        // (m = 16).
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        for m in [2, 16] {
            let real = Array2::from_shape_fn((300, m), |_| rng.gen_range(-2.0f32..2.0));
            let mut fake = Array2::from_shape_fn((300, m), |_| rng.gen_range(-2.0f32..2.0));
            fake[[0, 0]] = 1e30;
            let far = if m == 2 { 0 } else { 1 };
            fake[[far, 0]] = if m == 2 { 1e30 } else { f32::NAN };
            let fakes = Fakes::new(fake.view());
            assert_eq!(fakes.tree.is_some(), m == 2);
            let marked: Vec<bool> = (0..300).map(|i| i % 4 != 3).collect();
            let named: Vec<usize> = (0..300).map(|i| [0, far, i][i % 3]).collect();
            let got = fakes.nearest_sq(real.view(), &marked, Some(&named));
            let fs = fake.as_slice().unwrap();
            for (i, (&d, r)) in got.iter().zip(real.rows()).enumerate() {
                let r = r.as_slice().unwrap();
                let want = match (marked[i], i % 3) {
                    (false, _) => f32::NAN,
                    (true, 2) => sq_dist(r, &fs[i * m..(i + 1) * m]),
                    _ => sq_dist(r, &fs[nearest_one(r, fs, m) * m..][..m]),
                };
                assert_eq!(d.to_bits(), want.to_bits(), "m = {m}, row {i}");
            }
        }
    }
}

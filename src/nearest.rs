//! Nearest-neighbour search by Euclidean distance: code assignment, nearest mixture mode.
//!
//! The reference is the direct f32 loop `Σ_i (q_i − p_i)²` summed in index order, ties going to
//! the lowest index. Every path here returns exactly that argmin: small latent dimensions run the
//! loop itself; larger ones screen candidates with a matrix product and re-check the survivors
//! with the loop, so f32 cancellation in ‖q‖² − 2 q·p + ‖p‖² can never change an answer.

use ndarray::{linalg::general_mat_mul, s, Array2, ArrayView2};

/// Up to this dimension the direct loop beats a matrix product.
const DIRECT_MAX_DIM: usize = 8;
/// Queries per matrix product in the blocked path: (BLOCK, S) scratch stays cache sized.
const BLOCK: usize = 128;

/// Index of the nearest row of `points` (Euclidean) for every row of `queries`; ties → lowest index.
///
/// `queries` is (n, m), `points` is (S, m) with S ≥ 1 when n ≥ 1, `out` has length n.
pub fn nearest(queries: ArrayView2<f32>, points: ArrayView2<f32>, out: &mut [usize]) {
    let (n, m) = queries.dim();
    assert_eq!(points.ncols(), m, "queries and points differ in dimension");
    assert_eq!(out.len(), n, "out must have one slot per query");
    if n == 0 {
        return;
    }
    assert!(points.nrows() > 0, "cannot search an empty point set");
    let q = queries.as_standard_layout();
    let p = points.as_standard_layout();
    let (qs, ps) = (q.as_slice().unwrap(), p.as_slice().unwrap());
    if m <= DIRECT_MAX_DIM {
        nearest_direct(qs, ps, m, out);
    } else {
        nearest_blocked(q.view(), p.view(), out);
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

/// Squared Euclidean distance, summed in index order (the reference every path agrees with).
#[inline]
pub fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .fold(0.0, |acc, (x, y)| acc + (x - y) * (x - y))
}

/// The direct loop, monomorphised per dimension so the inner sum unrolls.
fn nearest_direct(qs: &[f32], ps: &[f32], m: usize, out: &mut [usize]) {
    fn run<const M: usize>(qs: &[f32], ps: &[f32], out: &mut [usize]) {
        for (q, o) in qs.chunks_exact(M).zip(out.iter_mut()) {
            let q: &[f32; M] = q.try_into().unwrap();
            let mut best = (0, f32::INFINITY);
            for (j, p) in ps.chunks_exact(M).enumerate() {
                let p: &[f32; M] = p.try_into().unwrap();
                let mut d = 0.0f32;
                for i in 0..M {
                    d += (q[i] - p[i]) * (q[i] - p[i]);
                }
                if d < best.1 {
                    best = (j, d);
                }
            }
            *o = best.0;
        }
    }
    match m {
        // m = 0: every point is at distance 0, so the lowest index wins.
        0 => out.fill(0),
        1 => run::<1>(qs, ps, out),
        2 => run::<2>(qs, ps, out),
        3 => run::<3>(qs, ps, out),
        4 => run::<4>(qs, ps, out),
        5 => run::<5>(qs, ps, out),
        6 => run::<6>(qs, ps, out),
        7 => run::<7>(qs, ps, out),
        8 => run::<8>(qs, ps, out),
        _ => {
            for (q, o) in qs.chunks_exact(m).zip(out.iter_mut()) {
                *o = nearest_one(q, ps, m);
            }
        }
    }
}

/// Screen with d̃ = ‖q‖² − 2 q·p + ‖p‖² from a matrix product, then settle with `sq_dist`.
///
/// Both d̃ and the direct sum are within e(p) = c·(‖q‖² + ‖p‖²) of the true distance, c a few
/// m·ε (standard dot-product error bounds, doubled for margin). The direct argmin p* has
/// d̃(p*) − e(p*) ≤ min_k d̃(k) + e(k), so keeping every such candidate and re-checking them with
/// the direct sum gives the direct argmin exactly.
fn nearest_blocked(q: ArrayView2<f32>, p: ArrayView2<f32>, out: &mut [usize]) {
    let (n, m) = q.dim();
    let c = 8.0 * (m as f32 + 2.0) * f32::EPSILON;
    let ps = p.as_slice().unwrap();
    let pn: Vec<f32> = ps
        .chunks_exact(m)
        .map(|r| r.iter().map(|v| v * v).sum())
        .collect();
    let mut g = Array2::<f32>::zeros((BLOCK.min(n), p.nrows())); // (block, S)
    for start in (0..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        let qb = q.slice(s![start..end, ..]); // (b, m)
        let mut gb = g.slice_mut(s![..end - start, ..]); // (b, S)
        general_mat_mul(1.0, &qb, &p.t(), 0.0, &mut gb);
        for (r, o) in out[start..end].iter_mut().enumerate() {
            let qrow = qb.row(r);
            let qr = qrow.as_slice().unwrap();
            let qn: f32 = qr.iter().map(|v| v * v).sum();
            let grow = gb.row(r);
            let approx = |j: usize| qn - 2.0 * grow[j] + pn[j];
            let err = |j: usize| c * (qn + pn[j]);
            let bound = (0..pn.len())
                .map(|j| approx(j) + err(j))
                .fold(f32::INFINITY, f32::min);
            let mut best = (0, f32::INFINITY);
            for j in 0..pn.len() {
                if approx(j) - err(j) <= bound {
                    let d = sq_dist(qr, &ps[j * m..(j + 1) * m]);
                    if d < best.1 {
                        best = (j, d);
                    }
                }
            }
            *o = best.0;
        }
    }
}

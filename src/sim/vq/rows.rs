//! Per-code loops of the remedies that touch every code for every row (the orthogonality
//! loss, the entropy loss, IBQ, Gumbel): a code has a handful of coordinates, so a loop over
//! them written for any length costs more than its arithmetic. `by_len!` picks a kernel
//! compiled for the codes' length, and the kernels keep the arithmetic, in its order, of the
//! generic loops they replace, so results stay bit for bit.

use ndarray::ArrayView2;

use crate::sim::nearest::PointsByDim;
pub(in crate::sim::vq) use crate::sim::nearest::{by_len, fixed};

/// `fixed` for a row written to.
#[inline(always)]
pub(in crate::sim::vq) fn fixed_mut<const M: usize>(x: &mut [f32]) -> &mut [f32] {
    if M > 0 {
        &mut x[..M]
    } else {
        x
    }
}

/// `f(out)` through a local copy of `out`'s first `M` values when `M` > 0: a local array's
/// sums stay in registers across a loop, where the compiler keeps a slice's in memory.
#[inline(always)]
pub(in crate::sim::vq) fn in_registers<const M: usize>(
    out: &mut [f32],
    f: impl FnOnce(&mut [f32]),
) {
    if M == 0 {
        return f(out);
    }
    let mut acc = [0.0f32; M];
    acc.copy_from_slice(&out[..M]);
    f(&mut acc);
    out[..M].copy_from_slice(&acc);
}

/// The largest non-NaN value of `x` (−∞ if none): `fold(−∞, f32::max)` in eight lanes, so
/// the comparisons do not wait on each other. The same value, except that a zero maximum may
/// differ in sign, which a softmax's shift x − max never sees (±0 − ±0 differ only in a zero's
/// sign, and e^±0 = 1).
#[inline(always)]
pub(in crate::sim::vq) fn max_of(x: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l = l.max(v);
        }
    }
    let max = rest.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    lanes.into_iter().fold(max, f32::max)
}

/// `ArrayView1::dot` of two contiguous rows, operation for operation (ndarray's eight partial
/// sums, then the rest in order): the loops over flat rows give the values that per-pair
/// calls on ndarray's rows gave, for a fraction of their cost.
#[inline(always)]
pub(in crate::sim::vq) fn dot(x: &[f32], y: &[f32]) -> f32 {
    let body = x.len() / 8 * 8;
    let mut p = [0.0f32; 8];
    for (xc, yc) in x[..body].chunks_exact(8).zip(y[..body].chunks_exact(8)) {
        for k in 0..8 {
            p[k] += xc[k] * yc[k];
        }
    }
    let mut sum = 0.0f32;
    for k in 0..4 {
        sum += p[k] + p[k + 4];
    }
    for (a, b) in x[body..].iter().zip(&y[body..]) {
        sum += a * b;
    }
    sum
}

/// The squared distance from every row of `z` (n, m) to every code of `codes` (S, m), (n, S)
/// row-major into `out` (resized; it grows to the largest batch). Each is
/// Σ_d (z_d − e_d)² summed in coordinate order, the value of the per-pair sums the remedies
/// took (the terms are never −0, so the sum's starting zero has no sign to lose), computed
/// over the codes stored by dimension (`by_dim`, refilled here).
pub(in crate::sim::vq) fn sq_dists(
    z: ArrayView2<f32>,
    codes: ArrayView2<f32>,
    by_dim: &mut PointsByDim,
    out: &mut Vec<f32>,
) {
    let s = codes.nrows();
    by_dim.fill(codes);
    out.resize(z.nrows() * s, 0.0);
    let z = z.as_standard_layout();
    let m = z.ncols();
    if s == 0 || m == 0 {
        out.fill(0.0);
        return;
    }
    let rows = z.as_slice().expect("standard layout");
    for (zi, row) in rows.chunks_exact(m).zip(out.chunks_exact_mut(s)) {
        by_dim.sq_dists(zi, 0, row);
    }
}

/// The batch's mean margin between each row's nearest and second-nearest code,
/// mean_i (‖z_i − e_(2)‖² − ‖z_i − e_(1)‖²), from the rows' squared distances to the S codes
/// (`sq_dists`): the latent scale that soft assignments are measured against (IBQ's and the
/// entropy loss's temperatures), so that at temperature 1 a point's two nearest codes are one
/// logit apart on average, whatever the latents' scale and however well the codes fit. Kept
/// above the smallest normal float (a batch whose rows all sit midway between two codes still
/// gives finite logits).
pub(in crate::sim::vq) fn margin(d2: &[f32], s: usize) -> f32 {
    let mut total = 0.0f32;
    let n = d2.len().checked_div(s).unwrap_or(0);
    for row in d2.chunks_exact(s.max(1)).take(n) {
        let (mut first, mut second) = (f32::INFINITY, f32::INFINITY);
        for &d in row {
            if d < first {
                (first, second) = (d, first);
            } else if d < second {
                second = d;
            }
        }
        total += second - first;
    }
    (total / n.max(1) as f32).max(f32::MIN_POSITIVE)
}

#[cfg(test)]
pub(in crate::sim::vq) mod tests {
    use super::*;
    use ndarray::{Array1, Array2};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn dot_is_ndarrays_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for len in 0..40 {
            for _ in 0..20 {
                let mut v = || match rng.gen_range(0..6) {
                    0 => -0.0,
                    1 => 0.0,
                    _ => rng.gen_range(-3.0f32..3.0) * 10f32.powi(rng.gen_range(-4..4)),
                };
                let x = Array1::from_shape_fn(len, |_| v());
                let y = Array1::from_shape_fn(len, |_| v());
                let (xs, ys) = (x.as_slice().unwrap(), y.as_slice().unwrap());
                assert_eq!(dot(xs, ys).to_bits(), x.dot(&y).to_bits(), "len {len}");
            }
        }
    }

    #[test]
    fn max_of_is_the_folds_maximum() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for len in 0..40 {
            for _ in 0..20 {
                let x: Vec<f32> = (0..len)
                    .map(|_| match rng.gen_range(0..8) {
                        0 => f32::NAN,
                        1 => -0.0,
                        2 => f32::NEG_INFINITY,
                        _ => -rng.gen_range(0.0f32..5.0),
                    })
                    .collect();
                let want = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let got = max_of(&x);
                // Equal, NaN only with nothing else, and a zero maximum changes no shift.
                assert!(
                    got == want || (got.is_nan() && want.is_nan()),
                    "{x:?}: {got} vs {want}"
                );
                for &v in &x {
                    let (a, b) = ((v - got).exp(), (v - want).exp());
                    assert!(
                        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                        "{x:?}"
                    );
                }
            }
        }
    }

    /// The distances and the margin as the remedies computed them, pair by pair on ndarray's
    /// rows with iterator sums: the oracle of their tests too.
    pub(in crate::sim::vq) fn by_pairs(z: &Array2<f32>, codes: &Array2<f32>) -> (Vec<f32>, f32) {
        let mut d2 = Vec::new();
        let mut total = 0.0f32;
        for zi in z.outer_iter() {
            let (mut first, mut second) = (f32::INFINITY, f32::INFINITY);
            for e in codes.outer_iter() {
                let d: f32 = zi.iter().zip(e).map(|(x, y)| (x - y) * (x - y)).sum();
                d2.push(d);
                if d < first {
                    (first, second) = (d, first);
                } else if d < second {
                    second = d;
                }
            }
            total += second - first;
        }
        (d2, (total / z.nrows().max(1) as f32).max(f32::MIN_POSITIVE))
    }

    /// (n, m) values of mixed scales with signed zeros among them.
    pub(in crate::sim::vq) fn mixed(rng: &mut ChaCha8Rng, n: usize, m: usize) -> Array2<f32> {
        Array2::from_shape_fn((n, m), |_| match rng.gen_range(0..8) {
            0 => -0.0,
            1 => 0.0,
            _ => rng.gen_range(-3.0f32..3.0) * 10f32.powi(rng.gen_range(-1..1)),
        })
    }

    /// The bits of each value, to compare arrays bit for bit.
    pub(in crate::sim::vq) fn bits<'a>(v: impl IntoIterator<Item = &'a f32>) -> Vec<u32> {
        v.into_iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn distances_and_margin_are_the_pairwise_sums_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (mut by_dim, mut out) = (PointsByDim::default(), Vec::new());
        for (n, s, m) in [
            (5, 1, 2),
            (40, 64, 2),
            (17, 300, 1),
            (9, 33, 3),
            (8, 20, 4),
            (6, 50, 7),
        ] {
            let z = mixed(&mut rng, n, m);
            let mut codes = mixed(&mut rng, s, m);
            // A code repeated: ties between nearest and second nearest.
            if s > 2 {
                let row = codes.row(0).to_owned();
                codes.row_mut(s - 1).assign(&row);
            }
            let (want, want_margin) = by_pairs(&z, &codes);
            // Shrinking batches reuse the scratch as a step's would.
            sq_dists(z.view(), codes.view(), &mut by_dim, &mut out);
            assert_eq!(bits(&out), bits(&want), "n {n}, S {s}, m {m}");
            assert_eq!(
                margin(&out, s).to_bits(),
                want_margin.to_bits(),
                "n {n}, S {s}, m {m}"
            );
        }
        // One code: no second nearest, an infinite margin as before.
        let (z, codes) = (Array2::<f32>::ones((3, 2)), Array2::<f32>::zeros((1, 2)));
        sq_dists(z.view(), codes.view(), &mut by_dim, &mut out);
        assert_eq!(margin(&out, 1), by_pairs(&z, &codes).1);
    }
}

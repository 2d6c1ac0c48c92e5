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

use ndarray::ArrayView2;

use crate::sim::nearest::PointsByDim;

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
    if real.nrows() < 2 || fake.nrows() == 0 {
        return f64::NAN;
    }
    let (_, radii) = knn_radii(real, k);
    let hits = balls(real, &radii, fake).per_ball;
    hits.iter().filter(|&&c| c > 0).count() as f64 / hits.len() as f64
}

/// The k actually used (min(k, n − 1), n ≥ 2) and each point's squared distance to its k-th
/// nearest other point. Each pair is computed once and offered to both ends.
pub fn knn_radii(points: ArrayView2<f32>, k: usize) -> (usize, Vec<f32>) {
    let n = points.nrows();
    assert!(n >= 2 && k >= 1, "k-NN radii need 2 points and k ≥ 1");
    let k = k.min(n - 1);
    let p = points.as_standard_layout();
    let by_dim = PointsByDim::new(p.view());
    // The k smallest squared distances of each point, ascending.
    let mut knn = vec![f32::INFINITY; n * k]; // (n, k)
    let mut d = vec![0.0f32; n]; // (n)
    for (i, row) in p.rows().into_iter().enumerate() {
        by_dim.sq_dists(row.as_slice().unwrap(), i + 1, &mut d);
        for (j, &dij) in d[..n - 1 - i].iter().enumerate() {
            insert_smallest(&mut knn[i * k..(i + 1) * k], dij);
            let o = i + 1 + j;
            insert_smallest(&mut knn[o * k..(o + 1) * k], dij);
        }
    }
    (k, knn.chunks_exact(k).map(|c| c[k - 1]).collect())
}

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

/// Insert `d` into `best` (ascending, fixed length) if it is among the smallest.
fn insert_smallest(best: &mut [f32], d: f32) {
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

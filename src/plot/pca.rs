//! Principal components in f64, to show embeddings of any dimension in a 2-D panel.
//!
//! The dimensions here are small (data and latent dims of a few tens at most), so the covariance
//! is formed explicitly and diagonalised by cyclic Jacobi rotations: exact, simple, no crate.

/// Centre and leading principal axes of a point cloud.
#[derive(Debug, Clone)]
pub struct Pca {
    pub mean: Vec<f64>,
    /// Unit principal axes, by decreasing variance.
    pub axes: Vec<Vec<f64>>,
    /// Variance along each axis.
    pub variance: Vec<f64>,
}

impl Pca {
    /// The `k` leading components of `rows` (each of the same length d ≥ 1).
    pub fn fit(rows: &[Vec<f64>], k: usize) -> Pca {
        let d = rows.first().map_or(0, Vec::len);
        let n = rows.len().max(1) as f64;
        let mut mean = vec![0.0; d];
        for r in rows {
            for (m, v) in mean.iter_mut().zip(r) {
                *m += v / n;
            }
        }
        let mut cov = vec![vec![0.0; d]; d];
        for r in rows {
            for (row, (ri, mi)) in cov.iter_mut().zip(r.iter().zip(&mean)) {
                for (c, (rj, mj)) in row.iter_mut().zip(r.iter().zip(&mean)) {
                    *c += (ri - mi) * (rj - mj) / n;
                }
            }
        }
        let (values, vectors) = jacobi_eigen(cov);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
        let axes = order
            .iter()
            .take(k)
            .map(|&c| {
                let mut v: Vec<f64> = (0..d).map(|i| vectors[i][c]).collect();
                // Fix the sign so the same cloud always gives the same picture.
                let big = v
                    .iter()
                    .copied()
                    .fold(0.0, |a: f64, x| if x.abs() > a.abs() { x } else { a });
                if big < 0.0 {
                    v.iter_mut().for_each(|x| *x = -*x);
                }
                v
            })
            .collect();
        let variance = order.iter().take(k).map(|&c| values[c]).collect();
        Pca {
            mean,
            axes,
            variance,
        }
    }

    /// Coordinates of `row` along the axes.
    pub fn project(&self, row: &[f64]) -> Vec<f64> {
        self.axes
            .iter()
            .map(|a| {
                a.iter()
                    .zip(row.iter().zip(&self.mean))
                    .map(|(a, (x, m))| a * (x - m))
                    .sum()
            })
            .collect()
    }
}

/// Eigen-decomposition of a symmetric matrix: (eigenvalues, eigenvectors as columns).
fn jacobi_eigen(mut a: Vec<Vec<f64>>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let d = a.len();
    let mut v: Vec<Vec<f64>> = (0..d)
        .map(|i| (0..d).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    let scale: f64 = a
        .iter()
        .flatten()
        .map(|x| x * x)
        .sum::<f64>()
        .max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off <= 1e-24 * scale {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                if a[p][q] == 0.0 {
                    continue;
                }
                // Rotation angle that zeroes a[p][q] (Golub & Van Loan, Alg. 8.4.1).
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // A ← Jᵀ A J: rotate columns p, q, then rows p, q (p < q).
                for row in a.iter_mut() {
                    let (akp, akq) = (row[p], row[q]);
                    row[p] = c * akp - s * akq;
                    row[q] = s * akp + c * akq;
                }
                let (head, tail) = a.split_at_mut(q);
                for (apk, aqk) in head[p].iter_mut().zip(tail[0].iter_mut()) {
                    let (x, y) = (*apk, *aqk);
                    *apk = c * x - s * y;
                    *aqk = s * x + c * y;
                }
                for row in v.iter_mut() {
                    let (vp, vq) = (row[p], row[q]);
                    row[p] = c * vp - s * vq;
                    row[q] = s * vp + c * vq;
                }
            }
        }
    }
    ((0..d).map(|i| a[i][i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_the_long_axis_of_a_stretched_cloud() {
        // Points along (1, 1, 0)/√2 with spread 10, small noise along the other axes.
        let rows: Vec<Vec<f64>> = (0..200)
            .map(|i| {
                let t = (i as f64 - 100.0) / 10.0;
                let e = 0.1 * ((i * 7 % 13) as f64 - 6.0) / 6.0;
                vec![t + e, t - e, 0.05 * ((i % 5) as f64 - 2.0) + 3.0]
            })
            .collect();
        let pca = Pca::fit(&rows, 2);
        let a = &pca.axes[0];
        let h = 0.5f64.sqrt();
        assert!((a[0] - h).abs() < 1e-3 && (a[1] - h).abs() < 1e-3 && a[2].abs() < 1e-3);
        assert!(pca.variance[0] > 50.0 * pca.variance[1]);
        // Projections are centred and orthonormal axes preserve the long coordinate.
        let p = pca.project(&rows[150]);
        assert!((p[0] - (rows[150][0] + rows[150][1] - 2.0 * pca.mean[0]) * h).abs() < 1e-2);
    }

    #[test]
    fn eigenpairs_satisfy_the_definition() {
        let a = vec![
            vec![4.0, 1.0, 0.5],
            vec![1.0, 3.0, 0.2],
            vec![0.5, 0.2, 1.0],
        ];
        let (vals, vecs) = jacobi_eigen(a.clone());
        for c in 0..3 {
            for i in 0..3 {
                let av: f64 = (0..3).map(|j| a[i][j] * vecs[j][c]).sum();
                assert!((av - vals[c] * vecs[i][c]).abs() < 1e-10);
            }
        }
    }
}

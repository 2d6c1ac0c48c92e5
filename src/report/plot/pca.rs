//! Principal components in f64, to show embeddings of any dimension in a 2-D panel.
//!
//! The dimensions here are small (data and latent dims of a few tens at most), so the covariance
//! is formed explicitly and diagonalised by the Jacobi solver of `linalg`.

use ndarray::Array2;

use crate::sim::linalg::sym_eigen;

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
        let cov = Array2::from_shape_fn((d, d), |(i, j)| cov[i][j]);
        // Eigenvalues come sorted in decreasing order.
        let (values, vectors) = sym_eigen(cov.view());
        let axes = (0..d.min(k))
            .map(|c| {
                let mut v: Vec<f64> = vectors.column(c).to_vec();
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
        let variance = values.iter().take(k).copied().collect();
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
}

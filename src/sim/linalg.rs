//! Small dense linear algebra: the symmetric eigenproblem for m×m matrices (m ≲ 64), as used by
//! the effective rank of embeddings, PCA projections and the Fréchet distance.

use ndarray::{Array1, Array2, ArrayView2};

/// Sweeps after which Jacobi is stopped even if not converged (it needs ~10 for m ≤ 64).
const MAX_SWEEPS: usize = 64;

/// Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations (f64).
///
/// Returns `(values, vectors)`: eigenvalues in descending order and the matching unit
/// eigenvectors as the columns of `vectors`, so that `a · vectors[:, i] = values[i] · vectors[:, i]`.
/// Only symmetry is assumed (values may be negative); Jacobi is chosen for its accuracy on
/// tiny eigenvalues, which the effective rank of near-degenerate embeddings depends on.
pub fn sym_eigen(a: ArrayView2<f64>) -> (Array1<f64>, Array2<f64>) {
    let n = a.nrows();
    assert_eq!(a.ncols(), n, "sym_eigen needs a square matrix");
    let mut a = a.to_owned();
    let mut v = Array2::<f64>::eye(n);
    let frob2: f64 = a.iter().map(|x| x * x).sum();
    for _ in 0..MAX_SWEEPS {
        let off2: f64 = (0..n)
            .flat_map(|p| (p + 1..n).map(move |q| (p, q)))
            .map(|(p, q)| a[[p, q]] * a[[p, q]])
            .sum();
        if off2 <= (f64::EPSILON * f64::EPSILON) * frob2 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[[p, q]];
                if apq == 0.0 {
                    continue;
                }
                // Rotation J (J_pp = J_qq = c, J_pq = s, J_qp = −s) that zeroes a_pq in JᵀAJ;
                // the smaller root t keeps the rotation angle ≤ π/4 (Golub & Van Loan, sym.schur2).
                let tau = (a[[q, q]] - a[[p, p]]) / (2.0 * apq);
                let t = tau.signum() / (tau.abs() + (1.0 + tau * tau).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[[k, p]], a[[k, q]]);
                    a[[k, p]] = c * akp - s * akq;
                    a[[k, q]] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[[p, k]], a[[q, k]]);
                    a[[p, k]] = c * apk - s * aqk;
                    a[[q, k]] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[[k, p]], v[[k, q]]);
                    v[[k, p]] = c * vkp - s * vkq;
                    v[[k, q]] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[[j, j]].total_cmp(&a[[i, i]]));
    let values = Array1::from_iter(order.iter().map(|&i| a[[i, i]]));
    let vectors = Array2::from_shape_fn((n, n), |(r, c)| v[[r, order[c]]]);
    (values, vectors)
}

/// The symmetric PSD square root V diag(√λ) Vᵀ of a symmetric matrix, round-off negative
/// eigenvalues clamped to 0.
pub fn sqrt_psd(a: ArrayView2<f64>) -> Array2<f64> {
    let (values, v) = sym_eigen(a);
    let root = values.mapv(|l| l.max(0.0).sqrt());
    (&v * &root).dot(&v.t())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Checks A·V = V·Λ and VᵀV = I to `tol`.
    fn assert_decomposes(a: &Array2<f64>, tol: f64) {
        let (w, v) = sym_eigen(a.view());
        let av = a.dot(&v);
        let vl = &v * &w;
        for (x, y) in av.iter().zip(vl.iter()) {
            assert!((x - y).abs() < tol, "A·V ≠ V·Λ: {x} vs {y}");
        }
        let vtv = v.t().dot(&v);
        for ((r, c), x) in vtv.indexed_iter() {
            let want = if r == c { 1.0 } else { 0.0 };
            assert!(
                (x - want).abs() < tol,
                "V not orthonormal at ({r},{c}): {x}"
            );
        }
        assert!(
            w.windows(2).into_iter().all(|p| p[0] >= p[1]),
            "not descending: {w}"
        );
    }

    #[test]
    fn two_by_two_known_values() {
        // [[2,1],[1,2]] has eigenvalues 3 and 1.
        let (w, _) = sym_eigen(array![[2.0, 1.0], [1.0, 2.0]].view());
        assert!(
            (w[0] - 3.0).abs() < 1e-12 && (w[1] - 1.0).abs() < 1e-12,
            "{w}"
        );
    }

    #[test]
    fn diagonal_is_sorted_unchanged() {
        let (w, _) = sym_eigen(array![[1.0, 0.0, 0.0], [0.0, -2.0, 0.0], [0.0, 0.0, 5.0]].view());
        assert_eq!(w.to_vec(), vec![5.0, 1.0, -2.0]);
    }

    #[test]
    fn random_symmetric_decomposes() {
        // Deterministic pseudo-random symmetric 12×12 (a Gram matrix plus an indefinite part).
        let n = 12;
        let b = Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 13) % 11) as f64 - 5.0);
        let a = b.t().dot(&b) - 30.0 * Array2::<f64>::eye(n);
        assert_decomposes(&a, 1e-9);
    }

    #[test]
    fn sqrt_psd_squares_back() {
        let a = array![[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]];
        let r = sqrt_psd(a.view());
        for (x, y) in r.dot(&r).iter().zip(a.iter()) {
            assert!((x - y).abs() < 1e-12, "{x} vs {y}");
        }
        assert_eq!(
            sqrt_psd(array![[9.0, 0.0], [0.0, 0.0]].view()),
            array![[3.0, 0.0], [0.0, 0.0]]
        );
    }

    #[test]
    fn zero_matrix_gives_zero_values() {
        let (w, v) = sym_eigen(Array2::<f64>::zeros((3, 3)).view());
        assert!(w.iter().all(|&x| x == 0.0));
        assert_eq!(v, Array2::<f64>::eye(3));
    }
}

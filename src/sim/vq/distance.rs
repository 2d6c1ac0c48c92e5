//! `quantizer.distance = "cosine"`: inputs and codes are l2-normalised before the assignment,
//! so the nearest code by Euclidean distance is the one of largest cosine, and the losses and
//! the decoder's input live on the unit sphere (Yu et al. 2021, ViT-VQGAN §3.2; `l2norm` and
//! `use_cosine_sim` in lucidrains/vector-quantize-pytorch).

use ndarray::{ArrayView1, ArrayViewMut1, ArrayViewMut2, Axis};

/// Norms below this are clamped (as torch's `F.normalize`), so a zero vector stays zero and
/// its gradient finite.
const EPS: f32 = 1e-6;

/// x / max(‖x‖, ε), in place, row by row.
pub(super) fn normalize_rows(mut x: ArrayViewMut2<f32>) {
    for mut row in x.axis_iter_mut(Axis(0)) {
        let n = norm(row.view()).max(EPS);
        row.mapv_inplace(|v| v / n);
    }
}

fn norm(x: ArrayView1<f32>) -> f32 {
    x.dot(&x).sqrt()
}

/// Backward of y = x / max(‖x‖, ε) for one row, in place: g ← (g − (g·y)y)/‖x‖, or g/ε where
/// the norm is clamped (there y = x/ε is linear). `x` is the row before normalisation.
pub(super) fn normalize_backward(x: ArrayView1<f32>, mut g: ArrayViewMut1<f32>) {
    let n = norm(x);
    if n <= EPS {
        g.mapv_inplace(|v| v / EPS);
        return;
    }
    let gy = g.iter().zip(x).map(|(a, b)| a * b).sum::<f32>() / n;
    for (gi, &xi) in g.iter_mut().zip(x) {
        *gi = (*gi - gy * xi / n) / n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array1, Array2};

    #[test]
    fn rows_become_unit_vectors_and_zero_stays_zero() {
        let mut x = array![[3.0f32, 4.0], [0.0, 0.0]];
        normalize_rows(x.view_mut());
        assert_eq!(x, array![[0.6f32, 0.8], [0.0, 0.0]]);
    }

    #[test]
    fn backward_matches_finite_differences() {
        // L = c·normalize(x): compare ∂L/∂x with central differences, in f64 sums.
        let x = Array1::from(vec![0.7f32, -1.3, 0.4]);
        let c = Array1::from(vec![0.5f32, 2.0, -1.0]);
        let loss = |x: &Array1<f32>| {
            let mut y = Array2::from_shape_vec((1, 3), x.to_vec()).unwrap();
            normalize_rows(y.view_mut());
            y.row(0)
                .iter()
                .zip(&c)
                .map(|(a, b)| (a * b) as f64)
                .sum::<f64>()
        };
        let mut g = c.clone();
        normalize_backward(x.view(), g.view_mut());
        for j in 0..3 {
            let h = 1e-3;
            let (mut p, mut m) = (x.clone(), x.clone());
            p[j] += h;
            m[j] -= h;
            let numeric = (loss(&p) - loss(&m)) / (2.0 * h as f64);
            assert!(
                (numeric - g[j] as f64).abs() < 1e-3 * (1.0 + numeric.abs()),
                "{j}: {} vs {numeric}",
                g[j]
            );
        }
    }
}

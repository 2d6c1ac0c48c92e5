//! The matrix product of the networks, the quantizer and the metrics, on faer's kernels.
//!
//! faer rather than ndarray's matrixmultiply: at the model's shapes its single-core kernels are
//! 1.14–1.32× faster on the 64-wide products, which hold 95% of a step's FLOPs, and 0.87–0.89×
//! on the two with an inner side of 2 (`vqsim bench`; docs/performance.md, "Which GEMM"). Always sequential: a run is the unit of parallelism, and its results must not depend
//! on the number of threads.

use faer::{Accum, MatMut, MatRef, Par};
use ndarray::{Array2, ArrayView2, ArrayViewMut2};

/// What the product does with the old contents of its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Into {
    /// c ← a·b
    Overwrite,
    /// c ← c + a·b
    Add,
}

/// c (n, p) ← a·b or c + a·b, for a (n, k) and b (k, p) of any layout (transposed views are
/// read in place; other strided views are copied first).
pub fn matmul(c: ArrayViewMut2<f32>, into: Into, a: ArrayView2<f32>, b: ArrayView2<f32>) {
    assert_eq!(a.ncols(), b.nrows(), "inner dimensions differ");
    assert_eq!(c.dim(), (a.nrows(), b.ncols()), "output shape");
    let accum = match into {
        Into::Overwrite => Accum::Replace,
        Into::Add => Accum::Add,
    };
    with_ref(a, |a| {
        with_ref(b, |b| {
            with_mut(c, |c| {
                faer::linalg::matmul::matmul(c, accum, a, b, 1.0, Par::Seq)
            })
        })
    });
    clear_upper_registers();
}

/// faer's x86 kernels (private-gemm-x86) return with the upper halves of the AVX registers
/// still in use (no `vzeroupper`), and until something clears them every SSE instruction of
/// the code that follows runs slowly: 3.4× on this project's machine (the orthogonal loss at
/// S = 1024 took 1.7× as long, the IBQ estimator 2.3×). matrixmultiply's AVX kernel ends with
/// `vzeroupper`, so a 1×1 product through it clears them, without `unsafe`. `vqsim bench`
/// prints how fast SSE code runs after a product, with and without this.
pub fn clear_upper_registers() {
    let one = [1.0f32];
    let mut out = [0.0f32];
    let x = ArrayView2::from_shape((1, 1), &one).expect("1×1");
    let mut y = ArrayViewMut2::from_shape((1, 1), &mut out).expect("1×1");
    ndarray::linalg::general_mat_mul(1.0, &x, &x, 0.0, &mut y);
}

/// `f` on a faer view of `a`: row-major or column-major in place, else a row-major copy.
fn with_ref<R>(a: ArrayView2<f32>, f: impl FnOnce(MatRef<f32>) -> R) -> R {
    let (rows, cols) = a.dim();
    if let Some(s) = a.to_slice() {
        return f(MatRef::from_row_major_slice(s, rows, cols));
    }
    if let Some(s) = a.t().to_slice() {
        return f(MatRef::from_column_major_slice(s, rows, cols));
    }
    let copy = a.as_standard_layout();
    f(MatRef::from_row_major_slice(
        copy.as_slice().expect("standard layout"),
        rows,
        cols,
    ))
}

/// `f` on a faer view of `c`, written back when `c` is not row-major (never in the hot paths).
fn with_mut(mut c: ArrayViewMut2<f32>, f: impl FnOnce(MatMut<f32>)) {
    let (rows, cols) = c.dim();
    if let Some(s) = c.as_slice_mut() {
        return f(MatMut::from_row_major_slice_mut(s, rows, cols));
    }
    let mut copy: Array2<f32> = c.as_standard_layout().into_owned();
    f(MatMut::from_row_major_slice_mut(
        copy.as_slice_mut().expect("standard layout"),
        rows,
        cols,
    ));
    c.assign(&copy);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array2};

    fn mat(rows: usize, cols: usize, seed: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            ((i * 7 + j * 13 + seed) % 17) as f32 * 0.25 - 2.0
        })
    }

    /// Plain triple loop in f64: the reference the layouts are checked against.
    fn reference(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Array2<f32> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols())
                .map(|k| a[[i, k]] as f64 * b[[k, j]] as f64)
                .sum::<f64>() as f32
        })
    }

    fn close(x: &Array2<f32>, y: &Array2<f32>) -> bool {
        x.iter()
            .zip(y)
            .all(|(u, v)| (u - v).abs() <= 1e-4 * (1.0 + v.abs()))
    }

    #[test]
    fn every_layout_of_the_operands_gives_the_product() {
        let a = mat(37, 9, 1);
        let b = mat(9, 21, 2);
        let want = reference(a.view(), b.view());
        let at = a.t().to_owned(); // (9, 37): at.t() is a column-major view of a
        let bt = b.t().to_owned();
        for a in [a.view(), at.t()] {
            for b in [b.view(), bt.t()] {
                let mut c = Array2::zeros((37, 21));
                matmul(c.view_mut(), Into::Overwrite, a, b);
                assert!(close(&c, &want));
            }
        }
        let wide = mat(37, 30, 3);
        let sub = wide.slice(s![.., ..;3]); // every third column: neither layout, so copied
        let sub = sub.slice(s![.., ..9]);
        let mut c = Array2::zeros((37, 21));
        matmul(c.view_mut(), Into::Overwrite, sub, b.view());
        assert!(close(&c, &reference(sub, b.view())));
    }

    #[test]
    fn add_accumulates_and_overwrite_replaces() {
        let (a, b) = (mat(5, 4, 0), mat(4, 3, 5));
        let ab = reference(a.view(), b.view());
        let mut c = Array2::from_elem((5, 3), 1.5f32);
        matmul(c.view_mut(), Into::Add, a.view(), b.view());
        assert!(close(&c, &(&ab + 1.5)));
        matmul(c.view_mut(), Into::Overwrite, a.view(), b.view());
        assert!(close(&c, &ab));
        // A column-major output is written back.
        let mut ct = Array2::<f32>::zeros((3, 5));
        matmul(
            ct.view_mut().reversed_axes(),
            Into::Overwrite,
            a.view(),
            b.view(),
        );
        assert!(close(&ct.t().to_owned(), &ab));
    }
}

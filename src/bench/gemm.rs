//! The GEMM comparison: the training step's products on faer (vqsim's `matmul`) and on
//! ndarray's matrixmultiply, the single-thread peak, and how fast SSE code runs right after a
//! product (the guard of `sim::matmul::clear_upper_registers`).

use std::time::Instant;

use ndarray::linalg::general_mat_mul;
use ndarray::Array2;

use super::median;
use crate::sim::matmul::{clear_upper_registers, matmul, Into};

/// The matrix products of one training step at the default shapes (batch 256, width 64,
/// d = m = 2): what, rows × inner → cols, and whether the left / right operand is a transposed
/// view, as the layers pass them.
const PRODUCTS: [Product; 8] = [
    ("first layer, forward", (256, 2, 64), false, false),
    ("hidden layer, forward", (256, 64, 64), false, false),
    ("output layer, forward", (256, 64, 2), false, false),
    ("first layer, dW = xᵀ·gy", (2, 256, 64), true, false),
    ("hidden layer, dW", (64, 256, 64), true, false),
    ("output layer, dW", (64, 256, 2), true, false),
    ("hidden layer, dx = gy·Wᵀ", (256, 64, 64), false, true),
    ("output layer, dx", (256, 2, 64), false, true),
];

/// What, (rows, inner, cols), left operand transposed, right operand transposed.
type Product = (&'static str, (usize, usize, usize), bool, bool);

/// One product of `PRODUCTS` on both GEMM codes (FLOP/s, 1 thread).
#[derive(Debug, Clone)]
pub struct ProductRate {
    pub what: &'static str,
    pub shape: (usize, usize, usize),
    /// vqsim's `matmul` (faer).
    pub faer: f64,
    /// ndarray's `general_mat_mul` (matrixmultiply), what vqsim used before.
    pub matrixmultiply: f64,
}

/// Rates of every product of `PRODUCTS` on both GEMM codes, medians of `repeat` rounds that
/// alternate the two.
pub fn product_rates(repeat: usize) -> Vec<ProductRate> {
    PRODUCTS
        .iter()
        .map(|&(what, (m, k, n), ta, tb)| {
            let a = operand(if ta { (k, m) } else { (m, k) });
            let b = operand(if tb { (n, k) } else { (k, n) });
            let a = if ta { a.t() } else { a.view() };
            let b = if tb { b.t() } else { b.view() };
            let mut c = Array2::<f32>::zeros((m, n)); // (m, n)
            let flops = (2 * m * k * n) as f64;
            let (mut faer, mut mm) = (Vec::new(), Vec::new());
            for _ in 0..repeat {
                faer.push(rate(flops, || matmul(c.view_mut(), Into::Overwrite, a, b)));
                mm.push(rate(flops, || general_mat_mul(1.0, &a, &b, 0.0, &mut c)));
            }
            std::hint::black_box(&c);
            ProductRate {
                what,
                shape: (m, k, n),
                faer: median(faer),
                matrixmultiply: median(mm),
            }
        })
        .collect()
}

/// Time of an SSE loop (ndarray's dot, as the losses and metrics use it) right after a
/// product over its time after none: after vqsim's `matmul`, and after faer's product alone.
pub fn sse_after_product(repeat: usize) -> (f64, f64) {
    let (a, b) = (operand((256, 64)), operand((64, 64)));
    let mut c = Array2::<f32>::zeros((256, 64)); // (256, 64)
    let v = ndarray::Array1::from_iter((0..1024).map(|i| i as f32 * 1e-3));
    let sse = || {
        let start = Instant::now();
        let s: f32 = (0..20_000).map(|_| v.dot(&v)).sum();
        std::hint::black_box(s);
        start.elapsed().as_secs_f64()
    };
    let (mut ours, mut alone) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        clear_upper_registers();
        let clean = sse();
        matmul(c.view_mut(), Into::Overwrite, a.view(), b.view());
        ours.push(sse() / clean);
        faer::linalg::matmul::matmul(
            faer::MatMut::from_row_major_slice_mut(c.as_slice_mut().expect("standard"), 256, 64),
            faer::Accum::Replace,
            faer::MatRef::from_row_major_slice(a.as_slice().expect("standard"), 256, 64),
            faer::MatRef::from_row_major_slice(b.as_slice().expect("standard"), 64, 64),
            1.0,
            faer::Par::Seq,
        );
        alone.push(sse() / clean);
        clear_upper_registers();
    }
    (median(ours), median(alone))
}

/// FLOP/s of vqsim's `matmul` on a `side`³ product, on this thread.
pub fn gemm_peak(side: usize) -> f64 {
    let (a, b) = (operand((side, side)), operand((side, side)));
    let mut c = Array2::<f32>::zeros((side, side));
    let peak = rate((2 * side * side * side) as f64, || {
        matmul(c.view_mut(), Into::Overwrite, a.view(), b.view())
    });
    std::hint::black_box(&c);
    peak
}

/// A (rows, cols) matrix of small integers, exact in f32.
fn operand((rows, cols): (usize, usize)) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.0)
}

/// FLOP/s of `product` (`flops` a call) over about 10⁹ FLOPs, after one warm-up call.
fn rate(flops: f64, mut product: impl FnMut()) -> f64 {
    product();
    let reps = (1e9 / flops).ceil() as usize;
    let start = Instant::now();
    for _ in 0..reps {
        product();
    }
    flops * reps as f64 / start.elapsed().as_secs_f64()
}

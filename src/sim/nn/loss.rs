//! Mean squared error, averaged over batch × dimensions like torch's MSELoss.

use ndarray::{ArrayView2, ArrayViewMut2, Zip};

/// mean((pred − target)²) over all n·d entries.
pub fn mse(pred: ArrayView2<f32>, target: ArrayView2<f32>) -> f32 {
    assert_eq!(
        pred.dim(),
        target.dim(),
        "mse: pred and target shapes differ"
    );
    // f64 accumulator: the sum runs over whole data sets at evaluation time.
    let sum = Zip::from(&pred).and(&target).fold(0.0f64, |s, &p, &t| {
        let d = f64::from(p - t);
        s + d * d
    });
    (sum / pred.len().max(1) as f64) as f32
}

/// g = scale · ∂mse/∂pred = scale · 2(pred − target)/(n·d), written (not added) into `g`.
/// `scale` lets the caller form a weighted sum of losses without another pass.
pub fn mse_grad(pred: ArrayView2<f32>, target: ArrayView2<f32>, scale: f32, g: ArrayViewMut2<f32>) {
    assert_eq!(
        pred.dim(),
        target.dim(),
        "mse_grad: pred and target shapes differ"
    );
    let k = scale * 2.0 / pred.len().max(1) as f32;
    Zip::from(g)
        .and(&pred)
        .and(&target)
        .for_each(|g, &p, &t| *g = k * (p - t));
}

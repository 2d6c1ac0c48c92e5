//! Elementwise activations: relu, tanh and exact (erf-based) GELU, as torch's nn.GELU().

use ndarray::{ArrayView2, ArrayViewMut2, Zip};

use crate::sim::config::Activation;

/// out = f(pre), elementwise; `out` has the shape of `pre`.
pub fn forward(act: Activation, pre: ArrayView2<f32>, out: ArrayViewMut2<f32>) {
    let z = Zip::from(out).and(&pre);
    match act {
        Activation::Relu => z.for_each(|o, &x| *o = x.max(0.0)),
        Activation::Tanh => z.for_each(|o, &x| *o = tanh(x)),
        Activation::Gelu => z.for_each(|o, &x| *o = x * std_normal_cdf(x)),
    }
}

/// x ← f(x), in place: inference keeps no pre-activations.
pub fn apply(act: Activation, mut x: ArrayViewMut2<f32>) {
    match act {
        Activation::Relu => x.mapv_inplace(|v| v.max(0.0)),
        Activation::Tanh => x.mapv_inplace(tanh),
        Activation::Gelu => x.mapv_inplace(|v| v * std_normal_cdf(v)),
    }
}

/// g ← g ⊙ f'(pre), in place. `out` = f(pre) from the forward pass saves recomputing tanh.
pub fn backward(
    act: Activation,
    pre: ArrayView2<f32>,
    out: ArrayView2<f32>,
    g: ArrayViewMut2<f32>,
) {
    match act {
        // The kink at 0 gets derivative 0, as torch does.
        // (A select rather than a conditional store, so it vectorises.)
        Activation::Relu => Zip::from(g)
            .and(&pre)
            .for_each(|g, &x| *g = if x > 0.0 { *g } else { 0.0 }),
        Activation::Tanh => Zip::from(g).and(&out).for_each(|g, &y| *g *= 1.0 - y * y),
        // d/dx [x Φ(x)] = Φ(x) + x φ(x). Φ = out/x reuses the forward's erfc (accurate to
        // 2 ulp for any normal x); near 0 Φ is 1/2 to within 1e-20.
        Activation::Gelu => Zip::from(g).and(&pre).and(&out).for_each(|g, &x, &y| {
            let cdf = if x.abs() > 1e-20 { y / x } else { 0.5 };
            *g *= cdf + x * std_normal_pdf(x);
        }),
    }
}

/// tanh as a [13/6] rational function of x (Eigen's `generic_fast_tanh_float`): relative
/// error < 4e-7, and unlike libm's tanhf it has no branches or calls, so loops over it
/// vectorise. libm's tanh made tanh networks train 4× slower than relu ones.
pub fn tanh(x: f32) -> f32 {
    // Beyond ±7.9053 tanh rounds to ±1 in f32; clamping keeps the polynomials in range.
    const CLAMP: f32 = 7.905_311;
    let x = x.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    let p = -2.760_768_5e-16_f32;
    let p = p * x2 + 2.000_188e-13;
    let p = p * x2 - 8.604_672e-11;
    let p = p * x2 + 5.122_297e-8;
    let p = p * x2 + 1.485_722_4e-5;
    let p = p * x2 + 6.372_619_3e-4;
    let p = p * x2 + 4.893_524_6e-3;
    let q = 1.198_258_4e-6_f32;
    let q = q * x2 + 1.185_347_1e-4;
    let q = q * x2 + 2.268_434_7e-3;
    let q = q * x2 + 4.893_525e-3;
    x * p / q
}

/// Φ(x) via erfc rather than 1 + erf, so the far negative tail keeps its relative accuracy.
fn std_normal_cdf(x: f32) -> f32 {
    0.5 * erfc(-x * std::f32::consts::FRAC_1_SQRT_2)
}

fn std_normal_pdf(x: f32) -> f32 {
    // 1/sqrt(2π)
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    INV_SQRT_2PI * (-0.5 * x * x).exp()
}

/// Error function, |error| < 1e-6 over all of f32 (about 1e-7 in practice).
pub fn erf(x: f32) -> f32 {
    1.0 - erfc(x)
}

/// Complementary error function, relative error < 1.2e-7 for every x.
///
/// Chebyshev-fitted form from Numerical Recipes (`erfcc`): one exp and a degree-9 polynomial,
/// branch-free apart from the sign. Evaluated in f64 so f32 rounding inside the polynomial adds
/// nothing to the fit's own error; scalar f64 costs the same as f32 here.
pub fn erfc(x: f32) -> f32 {
    let z = f64::from(x).abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * (-z * z + poly).exp();
    (if x >= 0.0 { r } else { 2.0 - r }) as f32
}

//! Statistics over seeds: Student t confidence intervals, Welch's two-sample t-test and the
//! paired t-test on per-seed differences.
//!
//! Written out here (regularized incomplete beta by continued fraction, as in Numerical
//! Recipes §6.4) rather than pulled from a crate, because the dependency set is fixed. These
//! work in f64: they aggregate a handful of f64 numbers read back from CSV, and the t
//! quantile must be accurate to 1e-6.

/// Mean of a sample with a two-sided Student t confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanCi {
    /// Number of values used (NaNs are skipped).
    pub n: usize,
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
}

impl MeanCi {
    /// Whether both intervals are defined and disjoint. An undefined interval (n < 2) never
    /// counts as separated: one seed is no evidence of a difference.
    pub fn separated(&self, other: &MeanCi) -> bool {
        let defined = |c: &MeanCi| c.lo.is_finite() && c.hi.is_finite();
        defined(self) && defined(other) && (self.hi < other.lo || other.hi < self.lo)
    }
}

/// Mean and `level` (e.g. 0.95) t-interval of the non-NaN values of `xs`.
///
/// n = 0 gives mean, lo and hi NaN. n = 1 gives the value as mean and lo = hi = NaN: with one
/// value there is no estimate of spread, and a zero-width interval would claim certainty.
/// Zero spread (all values equal, n ≥ 2) gives lo = hi = mean.
pub fn mean_ci(xs: &[f64], level: f64) -> MeanCi {
    let (n, mean, var) = moments(xs);
    if n < 2 {
        return MeanCi {
            n,
            mean,
            lo: f64::NAN,
            hi: f64::NAN,
        };
    }
    let half = student_t_quantile(0.5 + level / 2.0, (n - 1) as f64) * (var / n as f64).sqrt();
    MeanCi {
        n,
        mean,
        lo: mean - half,
        hi: mean + half,
    }
}

/// Count, mean and unbiased variance of the non-NaN values (NaN where undefined).
fn moments(xs: &[f64]) -> (usize, f64, f64) {
    let vals: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    let n = vals.len();
    if n == 0 {
        return (0, f64::NAN, f64::NAN);
    }
    let mean = vals.iter().sum::<f64>() / n as f64;
    // Two-pass variance: the sample is tiny, and this avoids cancellation.
    let var = if n < 2 {
        f64::NAN
    } else {
        vals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
    };
    (n, mean, var)
}

/// Welch's unequal-variance t-test of equal means (two-sided).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Welch {
    /// (mean(a) − mean(b)) / standard error.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// Welch's t-test on the non-NaN values of `a` and `b`.
///
/// Fewer than two values on either side gives all NaN. When both samples have zero spread the
/// test degenerates: equal means give t = p = NaN; different means give t = ±∞, p = 0 (the
/// difference is exact), with df = n_a + n_b − 2.
pub fn welch_test(a: &[f64], b: &[f64]) -> Welch {
    let (na, ma, va) = moments(a);
    let (nb, mb, vb) = moments(b);
    if na < 2 || nb < 2 {
        return Welch {
            t: f64::NAN,
            df: f64::NAN,
            p: f64::NAN,
        };
    }
    let (sa, sb) = (va / na as f64, vb / nb as f64);
    let se2 = sa + sb;
    let diff = ma - mb;
    if se2 == 0.0 {
        let exact = diff != 0.0;
        return Welch {
            t: if exact {
                diff.signum() * f64::INFINITY
            } else {
                f64::NAN
            },
            df: (na + nb - 2) as f64,
            p: if exact { 0.0 } else { f64::NAN },
        };
    }
    let t = diff / se2.sqrt();
    let df = se2 * se2 / (sa * sa / (na - 1) as f64 + sb * sb / (nb - 1) as f64);
    Welch {
        t,
        df,
        p: two_sided_p(t, df),
    }
}

/// Paired t-test of equal means on per-seed differences a[i] − b[i] (two-sided), with the
/// t-interval of the mean difference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    /// Pairs used, their mean difference and its interval (as `mean_ci` of the differences).
    pub diff: MeanCi,
    /// Mean difference / its standard error.
    pub t: f64,
    /// n − 1.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// Paired t-test on `a[i]` vs `b[i]` (scipy's `ttest_rel`); pairs where either side is NaN are
/// dropped. Runs that share a seed share their data and initial weights, so their difference
/// removes the seed-to-seed spread that Welch's test has to carry.
///
/// Fewer than two pairs gives t = p = NaN (and the interval of `mean_ci`). Differences with
/// zero spread degenerate as in `welch_test`: all equal to 0 gives t = p = NaN; all equal to a
/// non-zero d gives t = ±∞, p = 0.
pub fn paired_test(a: &[f64], b: &[f64], level: f64) -> Paired {
    let d: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(x, y)| !x.is_nan() && !y.is_nan())
        .map(|(x, y)| x - y)
        .collect();
    let diff = mean_ci(&d, level);
    let (n, mean, var) = moments(&d);
    let df = n.saturating_sub(1) as f64;
    let (t, p) = if n < 2 {
        (f64::NAN, f64::NAN)
    } else if var == 0.0 {
        if mean != 0.0 {
            (mean.signum() * f64::INFINITY, 0.0)
        } else {
            (f64::NAN, f64::NAN)
        }
    } else {
        let t = mean / (var / n as f64).sqrt();
        (t, two_sided_p(t, df))
    };
    Paired {
        diff,
        t,
        df: if n < 2 { f64::NAN } else { df },
        p,
    }
}

/// P(|T| ≥ |t|) for T ~ Student t with `df` degrees of freedom.
fn two_sided_p(t: f64, df: f64) -> f64 {
    // The two tails together: I_x(df/2, 1/2) with x = df / (df + t²) (NR eq. 6.4.9).
    reg_inc_beta(df / 2.0, 0.5, df / (df + t * t))
}

/// P(T ≤ t) for T ~ Student t with `df` degrees of freedom.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * two_sided_p(t, df);
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

fn student_t_pdf(t: f64, df: f64) -> f64 {
    let ln_norm =
        ln_gamma((df + 1.0) / 2.0) - ln_gamma(df / 2.0) - 0.5 * (df * std::f64::consts::PI).ln();
    (ln_norm - (df + 1.0) / 2.0 * (t * t / df).ln_1p()).exp()
}

/// The t with P(T ≤ t) = p for T ~ Student t with `df` > 0 degrees of freedom (df need not be
/// an integer: Welch's df is not). NaN outside p ∈ (0, 1) or for df ≤ 0.
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    let valid = p > 0.0 && p < 1.0 && df > 0.0 && df.is_finite();
    if !valid {
        return f64::NAN;
    }
    if p < 0.5 {
        return -student_t_quantile(1.0 - p, df);
    }
    if p == 0.5 {
        return 0.0;
    }
    // Bracket the root in [lo, hi], then Newton steps that fall back to bisection whenever a
    // step would leave the bracket (the cdf is monotone, so the bracket always holds the root).
    let (mut lo, mut hi) = (0.0, 1.0);
    while student_t_cdf(hi, df) < p {
        lo = hi;
        hi *= 2.0;
        if hi > 1e300 {
            return f64::INFINITY;
        }
    }
    let mut t = 0.5 * (lo + hi);
    for _ in 0..200 {
        let f = student_t_cdf(t, df) - p;
        if f == 0.0 {
            return t;
        }
        if f < 0.0 {
            lo = t;
        } else {
            hi = t;
        }
        let newton = t - f / student_t_pdf(t, df);
        let next = if newton > lo && newton < hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
        if (next - t).abs() <= 1e-14 * t.abs().max(1.0) {
            return next;
        }
        t = next;
    }
    t
}

/// ln Γ(x) for x > 0: Lanczos approximation (g = 7, 9 terms), relative error ~1e-15.
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularized incomplete beta I_x(a, b) (NR §6.4).
pub fn reg_inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x.is_nan() || a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    // The continued fraction converges fast for x < (a+1)/(a+b+2); use the symmetry
    // I_x(a, b) = 1 − I_{1−x}(b, a) on the other side.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

/// Stands in for zero denominators in the Lentz method.
const TINY: f64 = 1e-300;

/// Continued fraction for the incomplete beta, by the modified Lentz method (NR `betacf`).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const EPS: f64 = 1e-15;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    // Iterations needed grow like sqrt(max(a, b)); 10,000 covers df up to ~1e8.
    for m in 1..10_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        // Even step, then odd step.
        h *= lentz_step(m * (b - m) * x / ((qam + m2) * (a + m2)), &mut c, &mut d);
        let del = lentz_step(
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
            &mut c,
            &mut d,
        );
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// One step of the modified Lentz algorithm for the continued fraction with partial
/// numerator `aa`: updates `c` and `d` and returns the factor the fraction's value moves by.
fn lentz_step(aa: f64, c: &mut f64, d: &mut f64) -> f64 {
    *d = 1.0 + aa * *d;
    if d.abs() < TINY {
        *d = TINY;
    }
    *c = 1.0 + aa / *c;
    if c.abs() < TINY {
        *c = TINY;
    }
    *d = 1.0 / *d;
    *d * *c
}

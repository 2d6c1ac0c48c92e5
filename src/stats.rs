//! Mean and Student-t confidence interval over seeds, for the error bands of the figures.

/// Mean of the finite values and its two-sided confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanCi {
    /// Finite values used.
    pub n: usize,
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
}

/// Mean ± t·s/√n of the finite entries of `xs` (NaNs ignored). With one value the interval is
/// that value; with none everything is NaN. `level` is 0.90, 0.95 or 0.99 (others use 0.95).
pub fn mean_ci(xs: &[f64], level: f64) -> MeanCi {
    let v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len();
    if n == 0 {
        return MeanCi {
            n,
            mean: f64::NAN,
            lo: f64::NAN,
            hi: f64::NAN,
        };
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return MeanCi {
            n,
            mean,
            lo: mean,
            hi: mean,
        };
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = t_quantile(n - 1, level) * (var / n as f64).sqrt();
    MeanCi {
        n,
        mean,
        lo: mean - half,
        hi: mean + half,
    }
}

/// Two-sided Student-t critical value for `df` degrees of freedom; the normal value past 30.
fn t_quantile(df: usize, level: f64) -> f64 {
    #[rustfmt::skip]
    const T95: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    #[rustfmt::skip]
    const T90: [f64; 30] = [
        6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812,
        1.796, 1.782, 1.771, 1.761, 1.753, 1.746, 1.740, 1.734, 1.729, 1.725,
        1.721, 1.717, 1.714, 1.711, 1.708, 1.706, 1.703, 1.701, 1.699, 1.697,
    ];
    #[rustfmt::skip]
    const T99: [f64; 30] = [
        63.657, 9.925, 5.841, 4.604, 4.032, 3.707, 3.499, 3.355, 3.250, 3.169,
        3.106, 3.055, 3.012, 2.977, 2.947, 2.921, 2.898, 2.878, 2.861, 2.845,
        2.831, 2.819, 2.807, 2.797, 2.787, 2.779, 2.771, 2.763, 2.756, 2.750,
    ];
    let (table, z) = if (level - 0.90).abs() < 1e-9 {
        (&T90, 1.645)
    } else if (level - 0.99).abs() < 1e-9 {
        (&T99, 2.576)
    } else {
        (&T95, 1.960)
    };
    if (1..=30).contains(&df) {
        table[df - 1]
    } else {
        z
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_values_use_t_with_two_df() {
        let ci = mean_ci(&[1.0, 2.0, 3.0, f64::NAN], 0.95);
        assert_eq!(ci.n, 3);
        assert!((ci.mean - 2.0).abs() < 1e-12);
        // s = 1, half width = 4.303 / sqrt(3)
        let half = 4.303 / 3f64.sqrt();
        assert!((ci.hi - 2.0 - half).abs() < 1e-9 && (2.0 - ci.lo - half).abs() < 1e-9);
    }

    #[test]
    fn empty_is_nan_and_single_is_degenerate() {
        assert!(mean_ci(&[f64::NAN], 0.95).mean.is_nan());
        let one = mean_ci(&[4.0], 0.95);
        assert_eq!((one.n, one.lo, one.hi), (1, 4.0, 4.0));
    }
}

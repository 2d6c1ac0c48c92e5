//! Known answers for the statistics, with reference values from scipy 1.x
//! (`scipy.stats.t.ppf`, `t.interval`, `ttest_ind(equal_var=False)`, and scipy 1.17.1's
//! `ttest_rel` with its `confidence_interval(0.95)` for the paired test).

use vqsim::report::stats::{
    mean_ci, paired_test, student_t_cdf, student_t_quantile, welch_test, MeanCi,
};

fn close(got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol,
        "got {got}, want {want} (tol {tol})"
    );
}

#[test]
fn t_quantiles_match_tables() {
    close(student_t_quantile(0.975, 1.0), 12.706_204_736_174_694, 1e-6);
    close(student_t_quantile(0.975, 2.0), 4.302_652_729_749_462, 1e-6);
    close(student_t_quantile(0.975, 10.0), 2.228_138_851_986_274, 1e-6);
    close(student_t_quantile(0.975, 30.0), 2.042_272_456_301_238, 1e-6);
    close(student_t_quantile(0.995, 4.0), 4.604_094_871_349_992, 1e-6);
}

#[test]
fn t_quantiles_at_fractional_df() {
    close(student_t_quantile(0.975, 2.5), 3.574_654_842_003_682, 1e-6);
    close(student_t_quantile(0.975, 7.3), 2.345_066_736_547_703, 1e-6);
}

#[test]
fn t_quantile_is_antisymmetric_and_zero_at_half() {
    close(student_t_quantile(0.05, 3.0), -2.353_363_434_801_824, 1e-6);
    assert_eq!(student_t_quantile(0.5, 5.0), 0.0);
}

#[test]
fn t_quantile_inverts_cdf() {
    close(student_t_cdf(-2.3, 4.7), 0.036_560_261_504_768_78, 1e-9);
    for &df in &[1.0, 3.0, 12.5, 100.0] {
        for &p in &[0.01, 0.2, 0.6, 0.975, 0.999] {
            close(student_t_cdf(student_t_quantile(p, df), df), p, 1e-10);
        }
    }
}

#[test]
fn t_quantile_rejects_bad_arguments() {
    assert!(student_t_quantile(0.0, 3.0).is_nan());
    assert!(student_t_quantile(1.0, 3.0).is_nan());
    assert!(student_t_quantile(0.9, 0.0).is_nan());
    assert!(student_t_quantile(0.9, f64::NAN).is_nan());
}

#[test]
fn ci_worked_example() {
    // mean 3.48, sd 1.5658..., n 5: 3.48 ± 2.776445 · 1.5658/√5.
    let ci = mean_ci(&[2.1, 3.4, 1.9, 5.6, 4.4], 0.95);
    assert_eq!(ci.n, 5);
    close(ci.mean, 3.48, 1e-12);
    close(ci.lo, 1.541_651_539_694_431_7, 1e-6);
    close(ci.hi, 5.418_348_460_305_568, 1e-6);
}

#[test]
fn ci_skips_nans() {
    let with = mean_ci(&[2.1, f64::NAN, 3.4, 1.9, 5.6, 4.4, f64::NAN], 0.95);
    let without = mean_ci(&[2.1, 3.4, 1.9, 5.6, 4.4], 0.95);
    assert_eq!(with, without);
}

#[test]
fn ci_of_one_value_is_undefined() {
    let ci = mean_ci(&[7.0, f64::NAN], 0.95);
    assert_eq!(ci.n, 1);
    assert_eq!(ci.mean, 7.0);
    assert!(ci.lo.is_nan() && ci.hi.is_nan());
}

#[test]
fn ci_of_nothing_is_nan() {
    let ci = mean_ci(&[], 0.95);
    assert_eq!(ci.n, 0);
    assert!(ci.mean.is_nan() && ci.lo.is_nan() && ci.hi.is_nan());
}

#[test]
fn ci_of_constant_values_has_zero_width() {
    let ci = mean_ci(&[64.0, 64.0, 64.0], 0.95);
    assert_eq!((ci.lo, ci.mean, ci.hi), (64.0, 64.0, 64.0));
}

#[test]
fn separated_needs_two_defined_disjoint_intervals() {
    let ci = |lo, hi| MeanCi {
        n: 3,
        mean: (lo + hi) / 2.0,
        lo,
        hi,
    };
    assert!(ci(0.0, 1.0).separated(&ci(1.5, 2.0)));
    assert!(ci(1.5, 2.0).separated(&ci(0.0, 1.0)));
    assert!(!ci(0.0, 1.0).separated(&ci(0.9, 2.0)));
    assert!(!ci(0.0, 1.0).separated(&ci(f64::NAN, f64::NAN)));
}

#[test]
fn welch_matches_scipy() {
    let a = [
        27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4,
    ];
    let b = [
        27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4,
    ];
    let w = welch_test(&a, &b);
    close(w.t, -2.455_356_398_286_006, 1e-9);
    close(w.df, 24.988_529_290_231_416, 1e-9);
    close(w.p, 0.021_378_001_462_866_992, 1e-9);
}

#[test]
fn welch_unequal_sizes_matches_scipy() {
    let w = welch_test(&[1.0, 2.0, 3.0], &[10.0, 12.0, 11.0, 13.0, 9.5]);
    close(w.t, -10.554_789_786_819_356, 1e-9);
    close(w.df, 5.662_444_134_475_789, 1e-9);
    close(w.p, 6.166_153_671_222_908e-5, 1e-12);
}

#[test]
fn welch_needs_two_values_per_side() {
    let w = welch_test(&[1.0, f64::NAN], &[2.0, 3.0, 4.0]);
    assert!(w.t.is_nan() && w.df.is_nan() && w.p.is_nan());
}

#[test]
fn welch_without_spread() {
    let w = welch_test(&[10.0, 10.0, 10.0], &[7.0, 7.0]);
    assert_eq!((w.t, w.df, w.p), (f64::INFINITY, 3.0, 0.0));
    let w = welch_test(&[10.0, 10.0], &[10.0, 10.0]);
    assert!(w.t.is_nan() && w.p.is_nan());
}

#[test]
fn paired_matches_scipy() {
    let a = [
        27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4,
    ];
    let b = [
        27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4,
    ];
    let p = paired_test(&a, &b, 0.95);
    assert_eq!((p.diff.n, p.df), (15, 14.0));
    close(p.diff.mean, -2.166_666_666_666_666_5, 1e-12);
    close(p.t, -2.685_714_574_824_638, 1e-9);
    close(p.p, 0.017_746_021_669_480_767, 1e-9);
    close(p.diff.lo, -3.896_946_521_191_168_2, 1e-6);
    close(p.diff.hi, -0.436_386_812_142_165, 1e-6);
}

#[test]
fn paired_at_five_seeds_matches_scipy() {
    // Deferred vs early perplexity, the size of the paper's comparisons.
    let p = paired_test(
        &[58.1, 60.3, 57.2, 59.9, 59.5],
        &[6.2, 3.9, 9.1, 5.0, 7.8],
        0.95,
    );
    close(p.t, 36.612_627_550_123_094, 1e-8);
    close(p.p, 3.322_544_863_417_006_8e-6, 1e-14);
    close(p.diff.lo, 48.611_184_601_993_614, 1e-6);
    close(p.diff.hi, 56.588_815_398_006_39, 1e-6);
}

#[test]
fn pairing_finds_a_shift_that_welch_misses() {
    // Every seed moves up by about 0.3 while seeds spread over 5..9: paired p = 0.0054,
    // Welch p = 0.78 (scipy).
    let (a, b) = ([5.1, 6.3, 7.2, 8.0, 9.4], [4.8, 6.0, 7.1, 7.6, 9.0]);
    let p = paired_test(&a, &b, 0.95);
    close(p.t, 5.477_225_575_051_667, 1e-9);
    close(p.p, 0.005_408_478_864_762_551, 1e-9);
    close(p.diff.lo, 0.147_927_838_620_836_72, 1e-6);
    close(p.diff.hi, 0.452_072_161_379_163_6, 1e-6);
    close(welch_test(&a, &b).p, 0.776_429_959_096_736_5, 1e-9);
}

#[test]
fn paired_drops_pairs_with_a_nan_side() {
    let with = paired_test(&[1.0, f64::NAN, 3.0, 4.5], &[0.5, 2.0, f64::NAN, 3.0], 0.95);
    let without = paired_test(&[1.0, 4.5], &[0.5, 3.0], 0.95);
    assert_eq!(with, without);
    assert_eq!(with.diff.n, 2);
}

#[test]
fn paired_degenerate_cases() {
    let one = paired_test(&[1.0], &[0.0], 0.95);
    assert!(one.t.is_nan() && one.p.is_nan() && one.df.is_nan());
    assert_eq!(one.diff.mean, 1.0);
    let shift = paired_test(&[3.0, 5.0, 9.0], &[1.0, 3.0, 7.0], 0.95);
    assert_eq!((shift.t, shift.df, shift.p), (f64::INFINITY, 2.0, 0.0));
    assert_eq!((shift.diff.lo, shift.diff.hi), (2.0, 2.0));
    let same = paired_test(&[3.0, 5.0], &[3.0, 5.0], 0.95);
    assert!(same.t.is_nan() && same.p.is_nan());
}

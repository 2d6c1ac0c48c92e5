//! Chart axes with hand-picked ticks: linear, log10 or log2. Data values are mapped onto a
//! linear coordinate (log for log scales), so every chart has the same coordinate type.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};

use super::style::num_label;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    Log10,
    Log2,
}

/// Most tick labels a log2 axis shows; beyond it, every other tick goes unlabelled.
const MAX_LABELS: usize = 6;

/// One axis: its scale, its extent and ticks in transformed units.
#[derive(Debug, Clone)]
pub struct Axis {
    pub scale: Scale,
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<f64>,
}

impl Axis {
    /// An axis covering the finite (for log scales: positive) `values`, padded by `pad`.
    pub fn fit(scale: Scale, values: impl IntoIterator<Item = f64>, pad: f64) -> Axis {
        let t: Vec<f64> = values
            .into_iter()
            .filter(|v| v.is_finite() && (scale == Scale::Linear || *v > 0.0))
            .map(|v| to(scale, v))
            .collect();
        let (mut lo, mut hi) = t
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi - lo < 1e-12 {
            let half = if scale == Scale::Linear {
                lo.abs().max(1.0) * 0.5
            } else {
                0.5
            };
            (lo, hi) = (lo - half, hi + half);
        }
        let span = hi - lo;
        let (lo, hi) = (lo - pad * span, hi + pad * span);
        Axis {
            scale,
            lo,
            hi,
            ticks: ticks(scale, lo, hi),
        }
    }

    /// The plotters coordinate of this axis.
    pub fn coord(&self) -> Ticked {
        Ticked {
            lo: self.lo,
            hi: self.hi,
            ticks: self.ticks.clone(),
        }
    }

    /// A data value in transformed units.
    pub fn to(&self, v: f64) -> f64 {
        to(self.scale, v)
    }

    /// Tick label; on a log2 axis with more than `MAX_LABELS` ticks only every other one is
    /// labelled (counting down from the largest), since wide labels like "1024" would overlap.
    pub fn label(&self, t: f64) -> String {
        if self.scale == Scale::Log2 && self.ticks.len() > MAX_LABELS {
            let last = self.ticks.len() - 1;
            let i = self.ticks.iter().position(|&k| (k - t).abs() < 1e-9);
            if i.is_some_and(|i| (last - i) % 2 == 1) {
                return String::new();
            }
        }
        match self.scale {
            Scale::Linear => num_label(t),
            Scale::Log10 => num_label(10f64.powf(t)),
            Scale::Log2 => num_label(2f64.powf(t)),
        }
    }

    /// Clamps a transformed value into the axis (for CI bands reaching ≤ 0 on log axes).
    pub fn clamp(&self, v: f64) -> f64 {
        let t = if v.is_finite() && (self.scale == Scale::Linear || v > 0.0) {
            self.to(v)
        } else {
            self.lo
        };
        t.clamp(self.lo, self.hi)
    }
}

fn to(scale: Scale, v: f64) -> f64 {
    match scale {
        Scale::Linear => v,
        Scale::Log10 => v.log10(),
        Scale::Log2 => v.log2(),
    }
}

/// Ticks in transformed units: nice 1-2-5 steps, decades (with 2 and 5 when few), powers of 2.
fn ticks(scale: Scale, lo: f64, hi: f64) -> Vec<f64> {
    match scale {
        Scale::Linear => linear_ticks(lo, hi),
        Scale::Log2 => {
            let ints: Vec<f64> = (lo.ceil() as i64..=hi.floor() as i64)
                .map(|i| i as f64)
                .collect();
            let step = ints.len().div_ceil(9).max(1);
            ints.into_iter().step_by(step).collect()
        }
        Scale::Log10 => {
            let decades: Vec<f64> = (lo.ceil() as i64..=hi.floor() as i64)
                .map(|i| i as f64)
                .collect();
            if decades.len() >= 3 {
                return decades;
            }
            let with_25: Vec<f64> = (lo.floor() as i64..=hi.ceil() as i64)
                .flat_map(|d| [1.0, 2.0, 5.0].map(|m| (m * 10f64.powi(d as i32)).log10()))
                .filter(|t| (lo..=hi).contains(t))
                .collect();
            if with_25.len() >= 3 {
                return with_25;
            }
            linear_ticks(10f64.powf(lo), 10f64.powf(hi))
                .into_iter()
                .filter(|v| *v > 0.0)
                .map(f64::log10)
                .collect()
        }
    }
}

fn linear_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    // Rounded to the step's precision so labels do not read 0.30000000000000004.
    (first..=last).map(|i| i as f64 * step).collect()
}

/// A linear f64 coordinate whose tick marks are exactly the given ones.
#[derive(Debug, Clone)]
pub struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, (a, b): (i32, i32)) -> i32 {
        let t = (v - self.lo) / (self.hi - self.lo);
        a + (t * f64::from(b - a)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // Light grid lines would double the bold ones; only the chosen ticks are drawn.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_and_tiny_tick_labels_are_powers_of_ten() {
        use super::super::style::num_label;
        let labels: Vec<String> = [-100000.0, 25000.0, 300000.0, 9999.0, 0.0005, 2e6]
            .iter()
            .map(|&v| num_label(v))
            .collect();
        assert_eq!(labels, ["-1e5", "2.5e4", "3e5", "9999", "5e-4", "2e6"]);
    }

    #[test]
    fn log2_axis_ticks_are_powers_of_two_labelled_as_numbers() {
        let a = Axis::fit(Scale::Log2, [8.0, 16.0, 64.0, 256.0], 0.04);
        assert_eq!(a.ticks, vec![3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        assert_eq!(a.label(a.ticks[0]), "8");
        assert_eq!(a.label(a.ticks[5]), "256");
    }

    #[test]
    fn crowded_log2_axes_label_every_other_tick_down_from_the_largest() {
        let a = Axis::fit(Scale::Log2, [8.0, 1024.0], 0.04);
        let labels: Vec<String> = a.ticks.iter().map(|t| a.label(*t)).collect();
        assert_eq!(labels, vec!["", "16", "", "64", "", "256", "", "1024"]);
    }

    #[test]
    fn short_log10_ranges_get_intermediate_ticks() {
        let a = Axis::fit(Scale::Log10, [0.05, 0.4], 0.0);
        let labels: Vec<String> = a.ticks.iter().map(|t| a.label(*t)).collect();
        assert_eq!(labels, vec!["0.05", "0.1", "0.2"]);
    }

    #[test]
    fn linear_ticks_use_round_steps() {
        assert_eq!(linear_ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
    }
}

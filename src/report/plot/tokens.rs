//! Token scaling (paper Fig. 4): MSE, perplexity and codebook spread vs codebook size, one
//! curve per arm, mean and 95% CI over seeds.

use std::path::PathBuf;

use super::axis::{Axis, Scale};
use super::curves::{Curve, CurvePanel, CurvesFig};
use super::runs::{spread, Group, Runs};
use super::style::{arm_color, Key};
use super::{save, Figure, PlotError, Projection};
use crate::report::results::Results;
use crate::report::stats::mean_ci;

const MAX_FIGURES: usize = 6;
const SIZE: &str = "quantizer.codebook_size";

/// One token-scaling figure per group of runs sharing every other varying parameter, when
/// the codebook size takes at least three values.
pub struct TokenScaling;

impl Figure for TokenScaling {
    fn stem(&self) -> &'static str {
        "token_scaling"
    }

    fn title(&self) -> &'static str {
        "token scaling"
    }

    fn describe(&self, _: &Results) -> String {
        "Token scaling (paper Fig. 4): reconstruction MSE, code perplexity and codebook \
         spread against codebook size S (log2 axis); mean and 95% CI band over seeds. On \
         log axes a band&rsquo;s lower edge is drawn no lower than a tenth of the mean (a \
         t-interval over few seeds can reach below zero)."
            .into()
    }

    fn fits(&self, results: &Results) -> bool {
        results.runs.distinct(SIZE).len() >= 3
    }

    fn draw(&self, results: &Results, _: Projection) -> Result<Vec<PathBuf>, PlotError> {
        let runs = &results.runs;
        let mut paths = Vec::new();
        for group in &spread(&runs.groups(&[SIZE]), MAX_FIGURES) {
            let fig = figure(runs, group);
            paths.extend(save(
                &fig,
                &results.dir,
                &format!("token_scaling{}", group.slug()),
            )?);
        }
        Ok(paths)
    }
}

/// Mean curves of `metric` against `x_key`, one per arm present in `rows`.
pub(crate) fn arm_curves(runs: &Runs, rows: &[usize], x_key: &str, metric: &str) -> Vec<Curve> {
    let mut xs: Vec<f64> = rows.iter().map(|&r| runs.num(r, x_key)).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    runs.arms
        .iter()
        .enumerate()
        .filter_map(|(i, arm)| {
            let mine: Vec<usize> = rows
                .iter()
                .copied()
                .filter(|&r| runs.arm(r) == *arm)
                .collect();
            (!mine.is_empty()).then(|| Curve {
                color: arm_color(i),
                pts: xs
                    .iter()
                    .map(|&x| {
                        let vals: Vec<f64> = mine
                            .iter()
                            .filter(|&&r| runs.num(r, x_key) == x)
                            .map(|&r| runs.num(r, metric))
                            .collect();
                        (x, mean_ci(&vals, 0.95))
                    })
                    .filter(|(_, m)| m.n > 0)
                    .collect(),
            })
        })
        .collect()
}

/// Legend entries for the arms present in `rows`.
pub(crate) fn arm_legend(runs: &Runs, rows: &[usize]) -> Vec<(Key, String)> {
    runs.arms
        .iter()
        .enumerate()
        .filter(|(_, a)| rows.iter().any(|&r| runs.arm(r) == **a))
        .map(|(i, a)| (Key::Band(arm_color(i)), a.clone()))
        .collect()
}

/// "mean ± 95% CI over 3 seeds" (or a range when groups differ).
pub(crate) fn seeds_note(runs: &Runs, rows: &[usize], by: &[&str]) -> String {
    let mut keys: Vec<&str> = by.to_vec();
    keys.extend(runs.arm_keys());
    let counts: Vec<usize> = runs
        .table
        .group_by(&keys)
        .unwrap_or_default()
        .into_iter()
        .map(|(_, rs)| rs.iter().filter(|r| rows.contains(r)).count())
        .filter(|&n| n > 0)
        .collect();
    let (lo, hi) = (
        counts.iter().copied().min().unwrap_or(0),
        counts.iter().copied().max().unwrap_or(0),
    );
    let n = if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}–{hi}")
    };
    let s = if hi == 1 { "" } else { "s" };
    format!("mean ± 95% CI over {n} seed{s}")
}

fn figure(runs: &Runs, group: &Group) -> CurvesFig {
    let rows = &group.rows;
    let mut by = vec![SIZE];
    by.extend(group.values.iter().map(|(k, _)| *k));
    let sizes: Vec<f64> = runs
        .distinct(SIZE)
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let panel = |metric: &str, title: &str, y_desc: &str, y: Scale| {
        let mut p = CurvePanel {
            title: title.into(),
            x_desc: "codebook size S (log₂ scale)".into(),
            y_desc: y_desc.into(),
            x: Axis::fit(Scale::Log2, [1.0], 0.0),
            y: Axis::fit(y, [1.0], 0.0),
            curves: arm_curves(runs, rows, SIZE, metric),
            markers: true,
            reference: (metric == "perplexity").then(|| sizes.iter().map(|&s| (s, s)).collect()),
            vlines: Vec::new(),
        };
        p.fit_axes(Scale::Log2, y);
        p
    };
    let panels = vec![
        panel(
            "mse",
            "reconstruction error",
            "MSE (a.u.², log scale)",
            Scale::Log10,
        ),
        panel(
            "perplexity",
            "code perplexity",
            "perplexity (codes, log scale)",
            Scale::Log2,
        ),
        panel(
            "codebook_dist",
            "codebook spread",
            "mean code distance (a.u.)",
            Scale::Linear,
        ),
    ];
    let mut legend = arm_legend(runs, rows);
    legend.push((
        Key::Dashed(plotters::style::RGBColor(0x77, 0x77, 0x77)),
        "ideal perplexity = S".into(),
    ));
    let mut title = format!("{}: scaling with the number of tokens", runs.scenario);
    if !group.values.is_empty() {
        title += &format!(" ({})", group.describe());
    }
    CurvesFig {
        title,
        subtitle: format!(
            "{} · {}",
            runs.subtitle(rows, &[SIZE]),
            seeds_note(runs, rows, &by)
        ),
        legend: vec![legend],
        panels,
        cols: 3,
    }
}

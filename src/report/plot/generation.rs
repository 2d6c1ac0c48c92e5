//! Generation figure (the paper's Fig. 1, on synthetic data): the real data beside the set each
//! arm generates, coloured by nearest mode.
//!
//! The generated set is as in `sim::generation`: N tokens drawn from the code usage, decoded.
//! Drawing a token with probability usage_k / N and decoding it is the same as drawing a data
//! point uniformly and taking its reconstruction dec(q(z)), which is what the snapshot holds;
//! so N points are drawn with replacement (fixed seed, `Stream::Generate`) and their
//! reconstructions shown, one marker per distinct generated point, area ∝ times drawn.

use std::collections::BTreeMap;
use std::path::PathBuf;

use plotters::coord::Shift;
use plotters::prelude::*;
use rand::Rng;

use super::axis::{Axis, Scale};
use super::pca::Pca;
use super::runs::{spread, Group, Runs, ARM_PARAMS};
use super::shrinkage::{arm_snapshots, MAX_FIGURES, MAX_POINTS};
use super::style::{self, legend, mode_color, Key};
use super::{save, Draw, DrawResult, Figure, PlotError, Projection};
use crate::report::results::Results;
use crate::sim::rng::{stream, Stream};

/// One generation figure per group of runs (as the shrinkage figures), from the lowest-seed
/// run of every arm that kept a snapshot; drawn when the schedule varies.
pub struct Generation;

impl Figure for Generation {
    fn stem(&self) -> &'static str {
        "generation"
    }

    fn title(&self) -> &'static str {
        "generation"
    }

    fn describe(&self, _: &Results) -> String {
        "Generation (paper Fig. 1): the real data coloured by true mode, and per arm (lowest \
         seed) the generated set &mdash; N tokens drawn from the code usage and decoded, as \
         a generative model that learns the token distribution perfectly would produce &mdash; \
         coloured by nearest mode, marker area proportional to times drawn, real data faint \
         behind. Dimensions above 2 are shown on the real data&rsquo;s first two principal \
         components."
            .into()
    }

    /// One panel per arm: beyond early vs deferred the panels get too narrow for their titles
    /// (a zoo has its own figure).
    fn fits(&self, results: &Results) -> bool {
        results.runs.varies("schedule.kind") && results.runs.arms.len() <= 2
    }

    fn draw(&self, results: &Results, _: Projection) -> Result<Vec<PathBuf>, PlotError> {
        let runs = &results.runs;
        let mut paths = Vec::new();
        for group in spread(&runs.groups(&[]), MAX_FIGURES) {
            if let Some(fig) = figure(runs, &group)? {
                paths.extend(save(
                    &fig,
                    &results.dir,
                    &format!("generation{}", group.slug()),
                )?);
            }
        }
        Ok(paths)
    }
}

/// One arm's generated set: (x, y, nearest mode, times drawn) per distinct point.
struct GenArm {
    name: String,
    samples: Vec<(f64, f64, usize, f64)>,
    modes_hit: usize,
}

struct GenFig {
    title: String,
    subtitle: String,
    /// (x, y, true mode) of the real data (of the first arm's run), thinned to MAX_POINTS.
    real: Vec<(f64, f64, usize)>,
    arms: Vec<GenArm>,
    modes: usize,
    projected: bool,
}

fn figure(runs: &Runs, group: &Group) -> Result<Option<GenFig>, PlotError> {
    let chosen = arm_snapshots(runs, group)?;
    let Some((_, first)) = chosen.first() else {
        return Ok(None);
    };
    let means = &first.means;
    let modes = means.len();
    let dim = first.x[0].len();
    let pca = (dim > 2).then(|| Pca::fit(&first.x, 2));
    let flat = |v: &[f64]| -> (f64, f64) {
        match &pca {
            Some(p) => {
                let q = p.project(v);
                (q[0], q[1])
            }
            None => (v[0], v.get(1).copied().unwrap_or(0.0)),
        }
    };
    let step = first.x.len().div_ceil(MAX_POINTS).max(1);
    let real = first
        .x
        .iter()
        .zip(&first.label)
        .step_by(step)
        .map(|(v, &l)| {
            let (a, b) = flat(v);
            (a, b, l)
        })
        .collect();
    let mut arms = Vec::new();
    for (row, s) in &chosen {
        let n = s.r.len();
        let mut rng = stream(0, Stream::Generate);
        // Times each distinct reconstruction is drawn, keyed by its exact bits.
        let mut drawn: BTreeMap<Vec<u64>, (usize, f64)> = BTreeMap::new();
        for _ in 0..n {
            let i = rng.gen_range(0..n);
            let key = s.r[i].iter().map(|v| v.to_bits()).collect();
            drawn.entry(key).or_insert((i, 0.0)).1 += 1.0;
        }
        let samples: Vec<(f64, f64, usize, f64)> = drawn
            .values()
            .map(|&(i, count)| {
                let (a, b) = flat(&s.r[i]);
                (a, b, nearest(&s.r[i], means), count)
            })
            .collect();
        let mut hit = vec![false; modes];
        samples.iter().for_each(|p| hit[p.2] = true);
        arms.push(GenArm {
            name: runs.arm(*row),
            modes_hit: hit.iter().filter(|&&h| h).count(),
            samples,
        });
    }
    let rows: Vec<usize> = chosen.iter().map(|(r, _)| *r).collect();
    let mut title = format!("{}: real vs generated data", runs.scenario);
    if !group.values.is_empty() {
        title += &format!(" ({})", group.describe());
    }
    Ok(Some(GenFig {
        title,
        subtitle: format!(
            "{} · lowest seed per arm · generated = N tokens drawn from the code usage, decoded",
            runs.subtitle(&rows, &ARM_PARAMS)
        ),
        real,
        arms,
        modes,
        projected: pca.is_some(),
    }))
}

/// Index of the nearest mean (squared Euclidean, ties to the lowest).
fn nearest(v: &[f64], means: &[Vec<f64>]) -> usize {
    let d = |m: &Vec<f64>| -> f64 { m.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum() };
    (0..means.len())
        .min_by(|&a, &b| d(&means[a]).total_cmp(&d(&means[b])))
        .unwrap_or(0)
}

impl Draw for GenFig {
    fn size(&self) -> (u32, u32) {
        style::size(&self.subtitle, &self.legend(), style::ROW)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let body = style::header(root, &self.title, &self.subtitle)?;
        let body = legend(&body, &self.legend())?;
        let xs = self.real.iter().map(|p| p.0);
        let ys = self.real.iter().map(|p| p.1);
        let gx = self.arms.iter().flat_map(|a| a.samples.iter().map(|p| p.0));
        let gy = self.arms.iter().flat_map(|a| a.samples.iter().map(|p| p.1));
        let xr = Axis::fit(Scale::Linear, xs.chain(gx), 0.05);
        let yr = Axis::fit(Scale::Linear, ys.chain(gy), 0.05);
        let cells = body.split_evenly((1, 1 + self.arms.len()));
        let (xd, yd) = if self.projected {
            ("PC1 of x (a.u.)", "PC2 of x (a.u.)")
        } else {
            ("x₁ (a.u.)", "x₂ (a.u.)")
        };
        let mut chart = style::panel(&cells[0], "real data (true mode)")
            .build_cartesian_2d(xr.coord(), yr.coord())?;
        style::mesh(&mut chart, xd, yd, &|v| xr.label(*v), &|v| yr.label(*v))?;
        chart.draw_series(
            self.real
                .iter()
                .map(|&(x, y, k)| Circle::new((x, y), 2, mode_color(k).mix(0.35).filled())),
        )?;
        for (arm, cell) in self.arms.iter().zip(&cells[1..]) {
            let title = format!(
                "{}: generated, {}/{} modes",
                arm.name, arm.modes_hit, self.modes
            );
            let mut chart =
                style::panel(cell, &title).build_cartesian_2d(xr.coord(), yr.coord())?;
            style::mesh(&mut chart, xd, yd, &|v| xr.label(*v), &|v| yr.label(*v))?;
            // The real data faintly behind, so missing modes show as empty clouds.
            chart.draw_series(
                self.real
                    .iter()
                    .map(|&(x, y, _)| Circle::new((x, y), 1, BLACK.mix(0.08).filled())),
            )?;
            let most = arm.samples.iter().map(|p| p.3).fold(1.0, f64::max);
            chart.draw_series(arm.samples.iter().map(|&(x, y, k, c)| {
                let r = (12.0 * (c / most).sqrt()).max(2.0) as i32;
                Circle::new((x, y), r, mode_color(k).mix(0.8).filled())
            }))?;
        }
        Ok(())
    }
}

impl GenFig {
    fn legend(&self) -> Vec<Vec<(Key, String)>> {
        let grey = RGBColor(0x8C, 0x8C, 0x8C);
        let mut mode_keys = vec![(Key::Text, "mode (true / nearest):".to_string())];
        mode_keys.extend((0..self.modes).map(|k| (Key::Square(mode_color(k)), k.to_string())));
        vec![
            vec![
                (Key::Dot(grey), "real data point".into()),
                (
                    Key::Dot(grey),
                    "generated point (area ∝ times drawn)".into(),
                ),
            ],
            mode_keys,
        ]
    }
}

//! The figure of `vqsim diagnose`: embeddings with the codes on top (area ∝ usage), sorted
//! code usage, and the distance of each embedding to its nearest code.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use ndarray::ArrayView2;

use super::axis::{Axis, Scale};
use super::pca::Pca;
use super::shrinkage::usage_panel;
use super::style::{self, arm_color, legend, mode_color, over_white, Key, OUTLINE};
use super::{save, Draw, DrawResult, PlotError};

/// Embeddings drawn at most (an even stride), and codes drawn at most.
const MAX_POINTS: usize = 3000;
const MAX_CODES: usize = 4096;
const BINS: usize = 40;

/// What the figure shows, already reduced to what is drawn.
pub struct DiagnosisFig {
    subtitle: String,
    /// (x, y, class) of the drawn embeddings, projected.
    embed: Vec<(f64, f64, Option<usize>)>,
    /// (x, y, usage) of the drawn codes, projected like the embeddings.
    codes: Vec<(f64, f64, f64)>,
    /// Usage sorted descending.
    usage: Vec<f64>,
    /// Distance to the nearest code of every embedding.
    nearest: Vec<f32>,
    projected: bool,
    /// The class labels present (`--labels`), sorted; empty without labels.
    classes: Vec<usize>,
}

/// Embeddings without labels: faint grey dots under the codes.
const EMBED: RGBColor = RGBColor(0x55, 0x55, 0x55);
const EMBED_ALPHA: f64 = 0.3;
/// Live codes: a translucent disc, area ∝ usage, with a dark outline so each code stays
/// visible where many overlap.
const CODE_FILL: RGBColor = RGBColor(0xFF, 0xFF, 0xFF);
const CODE_ALPHA: f64 = 0.55;
/// Classes named one by one in the legend; more are summarised.
const MAX_CLASS_KEYS: usize = 12;

/// Draws `dir/figures/diagnosis.{png,svg}`.
pub fn diagnosis(
    dir: &Path,
    z: ArrayView2<f32>,
    codebook: ArrayView2<f32>,
    usage: &[usize],
    nearest: &[f32],
    labels: Option<&[usize]>,
) -> Result<Vec<PathBuf>, PlotError> {
    let rows = |a: ArrayView2<f32>, step: usize| -> Vec<Vec<f64>> {
        a.rows()
            .into_iter()
            .step_by(step)
            .map(|r| r.iter().map(|&v| v as f64).collect())
            .collect()
    };
    let z_step = z.nrows().div_ceil(MAX_POINTS).max(1);
    let c_step = codebook.nrows().div_ceil(MAX_CODES).max(1);
    let zs = rows(z, z_step);
    let cs = rows(codebook, c_step);
    let projected = z.ncols() > 2;
    let pca = projected.then(|| Pca::fit(&zs, 2));
    let xy = |v: &[f64]| match &pca {
        Some(pca) => {
            let p = pca.project(v);
            (p[0], p[1])
        }
        None => (v[0], v.get(1).copied().unwrap_or(0.0)),
    };
    let class = |i: usize| labels.map(|l| l[i * z_step]);
    let embed = zs
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (a, b) = xy(v);
            (a, b, class(i))
        })
        .collect();
    let codes = cs
        .iter()
        .zip(usage.iter().step_by(c_step))
        .map(|(v, &u)| {
            let (a, b) = xy(v);
            (a, b, u as f64)
        })
        .collect();
    let mut sorted: Vec<f64> = usage.iter().map(|&u| u as f64).collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let mut subtitle = format!(
        "{} embeddings of dimension {} against {} codes",
        z.nrows(),
        z.ncols(),
        codebook.nrows()
    );
    if z_step > 1 {
        subtitle += &format!(" · drawn: 1 in {z_step} embeddings");
    }
    if c_step > 1 {
        subtitle += &format!(", 1 in {c_step} codes");
    }
    let mut classes: Vec<usize> = labels.map(<[usize]>::to_vec).unwrap_or_default();
    classes.sort_unstable();
    classes.dedup();
    let fig = DiagnosisFig {
        classes,
        subtitle,
        embed,
        codes,
        usage: sorted,
        nearest: nearest.to_vec(),
        projected,
    };
    save(&fig, dir, "diagnosis")
}

impl Draw for DiagnosisFig {
    fn size(&self) -> (u32, u32) {
        style::size(&self.subtitle, &self.legend(), style::ROW)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let body = style::header(root, "codebook diagnosis", &self.subtitle)?;
        let body = legend(&body, &self.legend())?;
        let cells = body.split_evenly((1, 3));
        self.latent_panel(&cells[0])?;
        let max = self.usage.first().copied().unwrap_or(1.0).max(1.0);
        let min = self
            .usage
            .iter()
            .copied()
            .filter(|&u| u > 0.0)
            .fold(max, f64::min);
        usage_panel("usage", &self.usage, arm_color(0), &cells[1], (min, max))?;
        self.distance_panel(&cells[2])?;
        Ok(())
    }
}

impl DiagnosisFig {
    fn legend(&self) -> Vec<Vec<(Key, String)>> {
        let embedding = if self.classes.is_empty() {
            "embedding"
        } else {
            "embedding (colour: class)"
        };
        let mut lines = vec![vec![
            (
                Key::Dot(over_white(EMBED, EMBED_ALPHA)),
                embedding.to_string(),
            ),
            (
                Key::Outlined(over_white(CODE_FILL, CODE_ALPHA)),
                "live code (area ∝ usage)".into(),
            ),
            (Key::HollowSquare(BLACK), "dead code".into()),
        ]];
        if !self.classes.is_empty() {
            let mut keys = vec![(Key::Text, "class:".to_string())];
            keys.extend(
                self.classes
                    .iter()
                    .take(MAX_CLASS_KEYS)
                    .map(|&k| (Key::Square(mode_color(k)), k.to_string())),
            );
            if self.classes.len() > MAX_CLASS_KEYS {
                keys.push((
                    Key::Text,
                    format!("… {} classes in all", self.classes.len()),
                ));
            }
            lines.push(keys);
        }
        lines
    }

    fn latent_panel<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let pts = || {
            self.embed
                .iter()
                .map(|p| (p.0, p.1))
                .chain(self.codes.iter().map(|c| (c.0, c.1)))
        };
        let xr = Axis::fit(Scale::Linear, pts().map(|p| p.0), 0.06);
        let yr = Axis::fit(Scale::Linear, pts().map(|p| p.1), 0.06);
        let mut chart = style::panel(area, "embeddings & codebook")
            .build_cartesian_2d(xr.coord(), yr.coord())?;
        let (xd, yd) = if self.projected {
            ("PC1 of z (a.u.)", "PC2 of z (a.u.)")
        } else {
            ("z₁ (a.u.)", "z₂ (a.u.)")
        };
        style::mesh(&mut chart, xd, yd, &|v| xr.label(*v), &|v| yr.label(*v))?;
        chart.draw_series(self.embed.iter().map(|&(x, y, k)| {
            let color = k.map_or(EMBED, mode_color);
            Circle::new((x, y), 2, color.mix(EMBED_ALPHA).filled())
        }))?;
        let umax = self.codes.iter().map(|c| c.2).fold(1.0, f64::max);
        // As in the shrinkage figure: the largest marker shrinks with the number of codes.
        let r_max = (11.0 * (64.0 / self.codes.len().max(1) as f64).sqrt()).clamp(3.0, 11.0);
        let r_dead = r_max.min(4.0) as i32;
        for &(x, y, u) in self.codes.iter().filter(|c| c.2 > 0.0) {
            let r = (r_max * (u / umax).sqrt()).max(2.0) as i32;
            chart.draw_series([
                Circle::new((x, y), r, CODE_FILL.mix(CODE_ALPHA).filled()),
                Circle::new((x, y), r, OUTLINE.stroke_width(1)),
            ])?;
        }
        // Squares, as in the shrinkage figure, so a dead code never reads as a rare one.
        chart.draw_series(self.codes.iter().filter(|c| c.2 <= 0.0).map(|&(x, y, _)| {
            EmptyElement::at((x, y))
                + Rectangle::new(
                    [(-r_dead, -r_dead), (r_dead, r_dead)],
                    BLACK.stroke_width(1),
                )
        }))?;
        Ok(())
    }

    fn distance_panel<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let hi = self.nearest.iter().fold(0.0f32, |a, &d| a.max(d)) as f64;
        let width = if hi > 0.0 { hi / BINS as f64 } else { 1.0 };
        let mut counts = vec![0usize; BINS];
        for &d in &self.nearest {
            counts[((d as f64 / width) as usize).min(BINS - 1)] += 1;
        }
        let xr = Axis::fit(Scale::Linear, [0.0, width * BINS as f64], 0.02);
        let top = counts.iter().copied().max().unwrap_or(1) as f64;
        let yr = Axis::fit(Scale::Linear, [0.0, top * 1.05], 0.0);
        let mut chart = style::panel(area, "distance to nearest code")
            .build_cartesian_2d(xr.coord(), yr.coord())?;
        style::mesh(
            &mut chart,
            "‖z − q(z)‖",
            "embeddings",
            &|v| xr.label(*v),
            &|v| yr.label(*v),
        )?;
        chart.draw_series(
            counts
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(|(i, &c)| {
                    let x0 = i as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width, c as f64)], arm_color(1).filled())
                }),
        )?;
        Ok(())
    }
}

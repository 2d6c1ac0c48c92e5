//! Shrinkage panel (paper Figs. 2–3): per arm, data vs reconstructions, the latent space with
//! the codebook on top, and sorted code usage, from one run's latent snapshot.

use std::fs::File;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis::{Axis, Scale};
use ndarray::{Array1, Array2};
use ndarray_npy::NpzReader;

use super::pca::Pca;
use super::runs::{spread, Group, Runs};
use super::style::{self, arm_color, legend, mode_color, over_white, Key, OUTLINE};
use super::{save, Draw, DrawResult, Figure, PlotError};
use crate::report::results::Results;
use crate::report::tsne::{tsne_joint, TsneParams};
use crate::study::store::{RUNS_DIR, SNAPSHOT_NPZ};

/// At most this many figures (groups), so a large sweep does not drown the figure folder.
pub(super) const MAX_FIGURES: usize = 4;
/// Scatter panels draw at most this many points (an even stride), to keep the SVG small.
pub(super) const MAX_POINTS: usize = 4000;
/// Height of the strip above each row that names its arm, px.
const HEADING: u32 = 34;
/// Opacity of the data points, faint under the reconstructions drawn on top.
const DATA_ALPHA: f64 = 0.2;
/// t-SNE is O(n²) per iteration: it lays out at most this many points.
const TSNE_POINTS: usize = 1000;

/// How vectors of more than two dimensions are laid flat in the scatter panels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Projection {
    /// Principal components of the first set (data, or embeddings), applied to every set.
    #[default]
    Pca,
    /// One joint t-SNE of all sets, so codes land among the embeddings they stand for (as in
    /// the paper's figures). Slower, and distances between clusters lose their meaning.
    Tsne,
}

impl Projection {
    fn max_points(self) -> usize {
        match self {
            Projection::Pca => MAX_POINTS,
            Projection::Tsne => TSNE_POINTS,
        }
    }

    /// 2-D coordinates of every vector of every set; two or fewer dimensions are kept as they
    /// are. `path` names the run in errors.
    fn flatten(
        self,
        sets: &[Vec<Vec<f64>>],
        path: &Path,
    ) -> Result<Vec<Vec<(f64, f64)>>, PlotError> {
        let dim = sets.iter().flatten().map(Vec::len).max().unwrap_or(0);
        let xy = |v: &[f64]| (v[0], v.get(1).copied().unwrap_or(0.0));
        if dim <= 2 {
            return Ok(sets
                .iter()
                .map(|set| set.iter().map(|v| xy(v)).collect())
                .collect());
        }
        match self {
            Projection::Pca => {
                let pca = Pca::fit(&sets[0], 2);
                Ok(sets
                    .iter()
                    .map(|set| set.iter().map(|v| xy(&pca.project(v))).collect())
                    .collect())
            }
            Projection::Tsne => {
                let arrays: Vec<Array2<f64>> = sets
                    .iter()
                    .map(|set| Array2::from_shape_fn((set.len(), dim), |(i, j)| set[i][j]))
                    .collect();
                let views: Vec<_> = arrays.iter().map(Array2::view).collect();
                // t-SNE takes seconds per panel; say so rather than fall silent.
                let points: usize = arrays.iter().map(Array2::nrows).sum();
                eprintln!(
                    "vqsim: t-SNE of {points} points ({dim}-D) for {}…",
                    path.display()
                );
                let flat =
                    tsne_joint(&views, &TsneParams::default()).map_err(|e| PlotError::Data {
                        path: path.to_path_buf(),
                        message: format!("t-SNE failed: {e}"),
                    })?;
                Ok(flat
                    .iter()
                    .map(|a| a.rows().into_iter().map(|r| (r[0], r[1])).collect())
                    .collect())
            }
        }
    }
}

/// One run's final state: the data, its embeddings and reconstructions, and the codebook.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// True mode of each point.
    pub label: Vec<usize>,
    pub x: Vec<Vec<f64>>,
    pub z: Vec<Vec<f64>>,
    pub r: Vec<Vec<f64>>,
    pub codebook: Vec<Vec<f64>>,
    /// Points assigned to each code.
    pub usage: Vec<f64>,
    /// The mixture means, (K, d).
    pub means: Vec<Vec<f64>>,
}

impl Snapshot {
    /// Reads `runs/<run_id>/snapshot.npz`; None when the run kept no snapshot.
    pub fn read(dir: &Path, run_id: &str) -> Result<Option<Snapshot>, PlotError> {
        let path = dir.join(RUNS_DIR).join(run_id).join(SNAPSHOT_NPZ);
        if !path.is_file() {
            return Ok(None);
        }
        let bad = |message: String| PlotError::Data {
            path: path.clone(),
            message: format!("{message}; delete that run directory to have the run recomputed"),
        };
        let file = File::open(&path).map_err(|e| bad(e.to_string()))?;
        let mut npz = NpzReader::new(file).map_err(|e| bad(e.to_string()))?;
        let mut floats = |name: &str| -> Result<Vec<Vec<f64>>, PlotError> {
            let a: Array2<f32> = npz
                .by_name(name)
                .map_err(|e| bad(format!("array `{name}`: {e}")))?;
            Ok(a.rows()
                .into_iter()
                .map(|r| r.iter().map(|&v| f64::from(v)).collect())
                .collect())
        };
        let (x, z, r, codebook, means) = (
            floats("x")?,
            floats("z")?,
            floats("r")?,
            floats("codebook")?,
            floats("means")?,
        );
        let mut ints = |name: &str| -> Result<Vec<i64>, PlotError> {
            let a: Array1<i64> = npz
                .by_name(name)
                .map_err(|e| bad(format!("array `{name}`: {e}")))?;
            Ok(a.to_vec())
        };
        let (label, usage) = (ints("label")?, ints("usage")?);
        let width = |v: &[Vec<f64>]| v.first().map_or(0, Vec::len);
        if label.len() != x.len()
            || z.len() != x.len()
            || r.len() != x.len()
            || usage.len() != codebook.len()
            || width(&r) != width(&x)
            || width(&codebook) != width(&z)
        {
            return Err(bad(
                "arrays of mismatched shapes: expected label (n), x and r (n, d), z (n, m), codebook (S, m), usage (S)".into(),
            ));
        }
        Ok(Some(Snapshot {
            label: label.iter().map(|&l| l.max(0) as usize).collect(),
            x,
            z,
            r,
            codebook,
            usage: usage.iter().map(|&u| u as f64).collect(),
            means,
        }))
    }
}

/// One shrinkage figure per group of runs that differ only in the arm parameters (at most
/// four, spread over the sweep), each from the lowest-seed run of every arm that kept a
/// snapshot.
pub struct Shrinkage;

impl Figure for Shrinkage {
    fn stem(&self) -> &'static str {
        "shrinkage"
    }

    fn title(&self) -> &'static str {
        "shrinkage"
    }

    fn describe(&self, _: &Results) -> String {
        "Shrinkage panel (paper Figs. 2&ndash;3), one row per arm, lowest seed: data (faint \
         dots) and their reconstructions (outlined discs, drawn on top) coloured by true mode; latent embeddings with the \
         codebook on top (marker area proportional to usage, hollow = dead code); code usage \
         sorted by rank. Dimensions above 2 are shown on their first two principal components."
            .into()
    }

    fn fits(&self, _: &Results) -> bool {
        true
    }

    fn draw(&self, results: &Results, projection: Projection) -> Result<Vec<PathBuf>, PlotError> {
        let runs = &results.runs;
        let mut paths = Vec::new();
        for group in spread(&runs.groups(&[]), MAX_FIGURES) {
            if let Some(fig) = figure(runs, &group, projection)? {
                paths.extend(save(
                    &fig,
                    &results.dir,
                    &format!("shrinkage{}", group.slug()),
                )?);
            }
        }
        Ok(paths)
    }
}

struct Arm {
    name: String,
    color: RGBColor,
    seed: String,
    /// (x, y, mode) of data points and of their reconstructions, projected.
    data: Vec<(f64, f64, usize)>,
    recon: Vec<(f64, f64, usize)>,
    embed: Vec<(f64, f64, usize)>,
    /// (x, y, usage) of each code, projected with the embeddings' PCA.
    codes: Vec<(f64, f64, f64)>,
    /// Usage sorted descending.
    usage: Vec<f64>,
}

struct ShrinkFig {
    title: String,
    subtitle: String,
    arms: Vec<Arm>,
    modes: usize,
    /// How data and latent panels were laid flat (None: drawn as they are, 2-D).
    data_proj: Option<Projection>,
    latent_proj: Option<Projection>,
}

/// For every arm of `group`, its lowest-seed run that kept a snapshot: (row, snapshot).
pub(super) fn arm_snapshots(
    runs: &Runs,
    group: &Group,
) -> Result<Vec<(usize, Snapshot)>, PlotError> {
    let mut chosen: Vec<(usize, Snapshot)> = Vec::new();
    for arm in &runs.arms {
        let mut rows: Vec<usize> = group
            .rows
            .iter()
            .copied()
            .filter(|&r| runs.arm(r) == *arm)
            .collect();
        rows.sort_by(|&a, &b| runs.num(a, "seed").total_cmp(&runs.num(b, "seed")));
        for r in rows {
            if let Some(s) = Snapshot::read(&runs.dir, runs.text(r, "run_id"))? {
                chosen.push((r, s));
                break;
            }
        }
    }
    Ok(chosen)
}

fn figure(
    runs: &Runs,
    group: &Group,
    projection: Projection,
) -> Result<Option<ShrinkFig>, PlotError> {
    let chosen = arm_snapshots(runs, group)?;
    if chosen.is_empty() {
        return Ok(None);
    }
    let modes = chosen
        .iter()
        .flat_map(|(_, s)| s.label.iter().copied())
        .max()
        .map_or(1, |m| m + 1);
    let (mut data_proj, mut latent_proj) = (None, None);
    let mut arms = Vec::new();
    for (row, s) in &chosen {
        let step = s.label.len().div_ceil(projection.max_points()).max(1);
        let every =
            |vs: &[Vec<f64>]| -> Vec<Vec<f64>> { vs.iter().step_by(step).cloned().collect() };
        let labels: Vec<usize> = s.label.iter().step_by(step).copied().collect();
        let path = runs.dir.join("runs").join(runs.text(*row, "run_id"));
        let data = projection.flatten(&[every(&s.x), every(&s.r)], &path)?;
        let latent = projection.flatten(&[every(&s.z), s.codebook.clone()], &path)?;
        if s.x[0].len() > 2 {
            data_proj = Some(projection);
        }
        if s.z[0].len() > 2 {
            latent_proj = Some(projection);
        }
        let labelled = |xy: &[(f64, f64)]| -> Vec<(f64, f64, usize)> {
            xy.iter()
                .zip(&labels)
                .map(|(&(a, b), &l)| (a, b, l))
                .collect()
        };
        let mut usage = s.usage.clone();
        usage.sort_by(|a, b| b.total_cmp(a));
        arms.push(Arm {
            name: runs.arm(*row),
            color: arm_color(runs.arm_index(*row)),
            seed: runs.text(*row, "seed").to_string(),
            data: labelled(&data[0]),
            recon: labelled(&data[1]),
            embed: labelled(&latent[0]),
            codes: latent[1]
                .iter()
                .zip(&s.usage)
                .map(|(&(a, b), &u)| (a, b, u))
                .collect(),
            usage,
        });
    }
    let rows: Vec<usize> = chosen.iter().map(|(r, _)| *r).collect();
    let seeds: Vec<&str> = arms.iter().map(|a| a.seed.as_str()).collect();
    let seed = if seeds.iter().all(|s| *s == seeds[0]) {
        format!("seed {}", seeds[0])
    } else {
        "lowest seed per arm".into()
    };
    let mut title = format!("{}: codebook shrinkage", runs.scenario);
    if !group.values.is_empty() {
        title += &format!(" ({})", group.describe());
    }
    Ok(Some(ShrinkFig {
        title,
        subtitle: format!("{} · {seed}", runs.subtitle(&rows, &runs.arm_params)),
        arms,
        modes,
        data_proj,
        latent_proj,
    }))
}

impl Draw for ShrinkFig {
    fn size(&self) -> (u32, u32) {
        style::size(
            &self.subtitle,
            &self.legend(),
            style::ROW * self.arms.len() as u32,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let body = style::header(root, &self.title, &self.subtitle)?;
        let body = legend(&body, &self.legend())?;
        let pts = || self.arms.iter().flat_map(|a| a.data.iter().chain(&a.recon));
        let data_range = (
            Axis::fit(Scale::Linear, pts().map(|p| p.0), 0.05),
            Axis::fit(Scale::Linear, pts().map(|p| p.1), 0.05),
        );
        let usage_max = self
            .arms
            .iter()
            .flat_map(|a| a.usage.first().copied())
            .fold(1.0, f64::max);
        let usage_min = self
            .arms
            .iter()
            .flat_map(|a| a.usage.iter().copied().filter(|&u| u > 0.0))
            .fold(usage_max, f64::min);
        for (arm, row) in self
            .arms
            .iter()
            .zip(body.split_evenly((self.arms.len(), 1)))
        {
            // The arm's name heads its row once, in its colour, at the size its width allows:
            // in each panel's title a long name ("lfq, LFQ commitment 0.25, early") ran into
            // the neighbouring panel.
            let (head, panels) = row.split_vertically(HEADING);
            let px = style::title_px(&arm.name, style::WIDTH);
            head.draw(&Text::new(
                arm.name.clone(),
                (12, (HEADING as i32 - px as i32) / 2 + 4),
                style::text(px).color(&arm.color),
            ))?;
            let cell = panels.split_evenly((1, 3));
            self.data_panel(arm, &cell[0], &data_range)?;
            self.latent_panel(arm, &cell[1])?;
            usage_panel(
                "usage",
                &arm.usage,
                arm.color,
                &cell[2],
                (usage_min, usage_max),
            )?;
        }
        Ok(())
    }
}

impl ShrinkFig {
    fn legend(&self) -> Vec<Vec<(Key, String)>> {
        let grey = RGBColor(0x55, 0x55, 0x55);
        let mut mode_keys = vec![(Key::Text, "true mode:".to_string())];
        mode_keys.extend((0..self.modes).map(|k| (Key::Square(mode_color(k)), k.to_string())));
        vec![
            vec![
                (Key::Dot(over_white(grey, DATA_ALPHA)), "data point".into()),
                (Key::Outlined(grey), "reconstruction".into()),
                (Key::Ring(BLACK), "code (ring area ∝ usage)".into()),
                (Key::HollowSquare(BLACK), "dead code".into()),
            ],
            mode_keys,
        ]
    }

    fn data_panel<DB: DrawingBackend>(
        &self,
        arm: &Arm,
        area: &DrawingArea<DB, Shift>,
        (xr, yr): &(Axis, Axis),
    ) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let mut chart = style::panel(area, "data & reconstructions")
            .build_cartesian_2d(xr.coord(), yr.coord())?;
        let (xd, yd) = axis_names(self.data_proj, 'x');
        style::mesh(&mut chart, &xd, &yd, &|v| xr.label(*v), &|v| yr.label(*v))?;
        chart.draw_series(
            arm.data
                .iter()
                .map(|&(x, y, k)| Circle::new((x, y), 2, mode_color(k).mix(DATA_ALPHA).filled())),
        )?;
        // Reconstructions on top, outlined: they are decoded codes, so under early
        // quantization they pile onto a few spots that faint data would otherwise hide. Each
        // distinct (spot, mode) is drawn once.
        let mut recon = arm.recon.clone();
        recon.sort_by(|a, b| {
            (a.0.to_bits(), a.1.to_bits(), a.2).cmp(&(b.0.to_bits(), b.1.to_bits(), b.2))
        });
        recon.dedup();
        for &(x, y, k) in &recon {
            chart.draw_series([
                Circle::new((x, y), 5, mode_color(k).filled()),
                Circle::new((x, y), 5, OUTLINE.stroke_width(2)),
            ])?;
        }
        Ok(())
    }

    fn latent_panel<DB: DrawingBackend>(
        &self,
        arm: &Arm,
        area: &DrawingArea<DB, Shift>,
    ) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let pts = || {
            arm.embed
                .iter()
                .map(|p| (p.0, p.1))
                .chain(arm.codes.iter().map(|c| (c.0, c.1)))
        };
        let xr = Axis::fit(Scale::Linear, pts().map(|p| p.0), 0.06);
        let yr = Axis::fit(Scale::Linear, pts().map(|p| p.1), 0.06);
        let mut chart =
            style::panel(area, "latent & codebook").build_cartesian_2d(xr.coord(), yr.coord())?;
        let (xd, yd) = axis_names(self.latent_proj, 'z');
        style::mesh(&mut chart, &xd, &yd, &|v| xr.label(*v), &|v| yr.label(*v))?;
        chart.draw_series(
            arm.embed
                .iter()
                .map(|&(x, y, k)| Circle::new((x, y), 2, mode_color(k).mix(0.3).filled())),
        )?;
        let umax = arm.codes.iter().map(|c| c.2).fold(1.0, f64::max);
        // Area ∝ usage; a floor of 2 px keeps rarely used codes visible. The largest marker
        // shrinks with the codebook (11 px at S = 64) so a thousand used codes do not paint
        // the embeddings over. Used codes are rings around a dot, not discs: under deferred
        // quantization the codes sit inside the embedding clouds, which discs would hide.
        let r_max = (11.0 * (64.0 / arm.codes.len().max(1) as f64).sqrt()).clamp(3.0, 11.0);
        let r_dead = r_max.min(4.0) as i32;
        let ink = BLACK.mix(0.8);
        for &(x, y, u) in &arm.codes {
            if u > 0.0 {
                let r = (r_max * (u / umax).sqrt()).max(2.0) as i32;
                chart.draw_series([
                    Circle::new((x, y), r, ink.stroke_width(1)),
                    Circle::new((x, y), 1, ink.filled()),
                ])?;
            } else {
                // A square, so a dead code never reads as a little-used ring.
                chart.draw_series(std::iter::once(
                    EmptyElement::at((x, y))
                        + Rectangle::new(
                            [(-r_dead, -r_dead), (r_dead, r_dead)],
                            BLACK.stroke_width(1),
                        ),
                ))?;
            }
        }
        Ok(())
    }
}

/// Above this codebook size usage is drawn on a log axis: bars are then narrower than a pixel
/// and the panel reads as a rank–usage curve, and a thousand codes used ~10 times each would
/// be invisible on the linear scale shared with an arm that put thousands on a few codes.
const LOG_USAGE_ABOVE: usize = 128;

/// Sorted usage bars (`usage` descending) of one codebook, titled `name: used/S codes used`.
pub(super) fn usage_panel<DB: DrawingBackend>(
    name: &str,
    usage: &[f64],
    color: RGBColor,
    area: &DrawingArea<DB, Shift>,
    (usage_min, usage_max): (f64, f64),
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let s = usage.len();
    let used = usage.iter().filter(|&&u| u > 0.0).count();
    // Ranks start at 1; bars are centred on integer ranks.
    let xr = Axis::fit(Scale::Linear, [0.5, s as f64 + 0.5], 0.0);
    let log = s > LOG_USAGE_ABOVE;
    let (yr, y_desc) = if log {
        let y = Axis::fit(Scale::Log10, [usage_min * 0.7, usage_max * 1.3], 0.0);
        (y, "points per code (log scale)")
    } else {
        let y = Axis::fit(Scale::Linear, [0.0, usage_max * 1.05], 0.0);
        (y, "points per code")
    };
    let mut chart = style::panel(area, &format!("{name}: {used}/{s} codes used"))
        .build_cartesian_2d(xr.coord(), yr.coord())?;
    style::mesh(
        &mut chart,
        "code rank (by usage)",
        y_desc,
        &|v| xr.label(*v),
        &|v| yr.label(*v),
    )?;
    // Gaps between bars only while they stay wider than a pixel or two.
    let half = if s <= 64 { 0.4 } else { 0.5 };
    chart.draw_series(
        usage
            .iter()
            .enumerate()
            .filter(|(_, &u)| u > 0.0)
            .map(|(i, &u)| {
                let i = i as f64 + 1.0;
                Rectangle::new([(i - half, yr.lo), (i + half, yr.clamp(u))], color.filled())
            }),
    )?;
    Ok(())
}

/// Axis titles for a 2-D view of `v`-space: its coordinates, or its principal components.
fn axis_names(projected: Option<Projection>, v: char) -> (String, String) {
    match projected {
        Some(Projection::Pca) => (format!("PC1 of {v} (a.u.)"), format!("PC2 of {v} (a.u.)")),
        Some(Projection::Tsne) => (format!("t-SNE 1 of {v}"), format!("t-SNE 2 of {v}")),
        None => (format!("{v}₁ (a.u.)"), format!("{v}₂ (a.u.)")),
    }
}

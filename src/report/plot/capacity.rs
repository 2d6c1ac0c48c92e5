//! Embedding collapse vs encoder capacity: depth × width heat maps of effective rank and modes
//! reconstructed (one row per arm), or curves when only one of depth and width varies.

use std::path::PathBuf;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{Axis, Scale};
use super::curves::{CurvePanel, CurvesFig};
use super::runs::{sort_values, spread, Group, Runs};
use super::style::{self, text, viridis};
use super::tokens::{arm_curves, arm_legend, seeds_note};
use super::{save, Draw, DrawResult, Figure, PlotError, Projection};
use crate::report::results::Results;
use crate::report::stats::mean_ci;

const MAX_FIGURES: usize = 6;
const DEPTH: &str = "model.depth";
const WIDTH: &str = "model.width";
const METRICS: [(&str, &str, &str); 2] = [
    (
        "embed_rank",
        "effective rank of embeddings",
        "effective rank (dims)",
    ),
    ("modes_hit", "modes reconstructed", "modes hit (of K)"),
];

/// One capacity figure per group of runs sharing every other varying parameter, when depth
/// or width varies.
pub struct Capacity;

impl Figure for Capacity {
    fn stem(&self) -> &'static str {
        "capacity"
    }

    fn title(&self) -> &'static str {
        "capacity"
    }

    fn describe(&self, _: &Results) -> String {
        "Embedding collapse against encoder capacity: effective rank of the embeddings and \
         number of modes reconstructed, per encoder depth and width, mean over seeds (the \
         colour bar under each metric gives its scale, shared by all arms)."
            .into()
    }

    fn fits(&self, results: &Results) -> bool {
        results.runs.varies(DEPTH) || results.runs.varies(WIDTH)
    }

    fn draw(&self, results: &Results, _: Projection) -> Result<Vec<PathBuf>, PlotError> {
        let runs = &results.runs;
        let (depth, width) = (runs.varies(DEPTH), runs.varies(WIDTH));
        let mut paths = Vec::new();
        for group in &spread(&runs.groups(&[DEPTH, WIDTH]), MAX_FIGURES) {
            let stem = format!("capacity{}", group.slug());
            paths.extend(if depth && width {
                save(&heat_figure(runs, group), &results.dir, &stem)?
            } else {
                let axis = if depth { DEPTH } else { WIDTH };
                save(&curve_figure(runs, group, axis), &results.dir, &stem)?
            });
        }
        Ok(paths)
    }
}

fn title(runs: &Runs, group: &Group) -> String {
    let mut t = format!("{}: embedding collapse vs encoder capacity", runs.scenario);
    if !group.values.is_empty() {
        t += &format!(" ({})", group.describe());
    }
    t
}

fn by_keys<'a>(group: &'a Group, axes: &[&'a str]) -> Vec<&'a str> {
    let mut by = axes.to_vec();
    by.extend(group.values.iter().map(|(k, _)| *k));
    by
}

fn curve_figure(runs: &Runs, group: &Group, axis: &str) -> CurvesFig {
    let rows = &group.rows;
    let xs: Vec<f64> = runs
        .distinct(axis)
        .iter()
        .filter_map(|v| v.parse().ok())
        .collect();
    let (lo, hi) = xs
        .iter()
        .fold((f64::INFINITY, 0f64), |(a, b), &x| (a.min(x), b.max(x)));
    // Widths are usually swept in powers of two; depths from 0, linearly.
    let scale = if lo > 0.0 && hi / lo >= 4.0 {
        Scale::Log2
    } else {
        Scale::Linear
    };
    let x_desc = if axis == DEPTH {
        "encoder depth (hidden layers)"
    } else {
        "encoder width (units)"
    };
    let panels = METRICS
        .iter()
        .map(|&(metric, title, y_desc)| {
            let mut p = CurvePanel {
                title: title.into(),
                x_desc: if scale == Scale::Log2 {
                    format!("{x_desc}, log₂ scale")
                } else {
                    x_desc.into()
                },
                y_desc: y_desc.into(),
                x: Axis::fit(scale, [1.0], 0.0),
                y: Axis::fit(Scale::Linear, [1.0], 0.0),
                curves: arm_curves(runs, rows, axis, metric),
                markers: true,
                reference: None,
                vlines: Vec::new(),
            };
            p.fit_axes(scale, Scale::Linear);
            p
        })
        .collect();
    CurvesFig {
        title: title(runs, group),
        subtitle: format!(
            "{} · {}",
            runs.subtitle(rows, &[axis]),
            seeds_note(runs, rows, &by_keys(group, &[axis]))
        ),
        legend: vec![arm_legend(runs, rows)],
        panels,
        cols: 2,
    }
}

/// Mean of each metric per (arm, depth, width) cell.
struct HeatFig {
    title: String,
    subtitle: String,
    depths: Vec<String>,
    widths: Vec<String>,
    /// (arm name, per metric: cell[depth][width] mean, NaN when no run).
    arms: Vec<(String, Vec<Vec<Vec<f64>>>)>,
}

fn heat_figure(runs: &Runs, group: &Group) -> HeatFig {
    let rows = &group.rows;
    let values = |key: &str| {
        let mut v: Vec<String> = rows
            .iter()
            .map(|&r| runs.text(r, key).to_string())
            .collect();
        sort_values(&mut v);
        v
    };
    let (depths, widths) = (values(DEPTH), values(WIDTH));
    let arms = runs
        .arms
        .iter()
        .filter(|a| rows.iter().any(|&r| runs.arm(r) == **a))
        .map(|arm| {
            let cells = METRICS
                .iter()
                .map(|(metric, _, _)| {
                    depths
                        .iter()
                        .map(|d| {
                            widths
                                .iter()
                                .map(|w| {
                                    let v: Vec<f64> = rows
                                        .iter()
                                        .filter(|&&r| {
                                            runs.arm(r) == *arm
                                                && runs.text(r, DEPTH) == d
                                                && runs.text(r, WIDTH) == w
                                        })
                                        .map(|&r| runs.num(r, metric))
                                        .collect();
                                    mean_ci(&v, 0.95).mean
                                })
                                .collect()
                        })
                        .collect()
                })
                .collect();
            (arm.clone(), cells)
        })
        .collect();
    let note = seeds_note(runs, rows, &by_keys(group, &[DEPTH, WIDTH])).replace(" ± 95% CI", "");
    HeatFig {
        title: title(runs, group),
        subtitle: format!("{} · {note}", runs.subtitle(rows, &[DEPTH, WIDTH])),
        depths,
        widths,
        arms,
    }
}

/// Height of the colour-bar strip under the heat maps, px.
const BAR_STRIP: u32 = 130;
/// Colour steps drawn in a colour bar.
const BAR_STEPS: usize = 120;

impl Draw for HeatFig {
    fn size(&self) -> (u32, u32) {
        let header = style::header_height(&self.subtitle, style::WIDTH);
        let rows = style::ROW * self.arms.len() as u32;
        (style::WIDTH, header + rows + BAR_STRIP)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let body = style::header(root, &self.title, &self.subtitle)?;
        let h = body.dim_in_pixel().1;
        let (maps, bars) = body.split_vertically(h.saturating_sub(BAR_STRIP));
        let cells = maps.split_evenly((self.arms.len(), METRICS.len()));
        let bars = bars.split_evenly((1, METRICS.len()));
        for (m, (_, title, y_desc)) in METRICS.iter().enumerate() {
            // One colour scale per metric across arms, so arms compare by colour too.
            let all = self
                .arms
                .iter()
                .flat_map(|(_, c)| c[m].iter().flatten().copied());
            let (lo, hi) = all
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                });
            for (a, (arm, c)) in self.arms.iter().enumerate() {
                let area = &cells[a * METRICS.len() + m];
                self.heat_panel(area, &format!("{arm}: {title}"), &c[m], (lo, hi))?;
            }
            colour_bar(
                &bars[m],
                &format!("colour scale: {y_desc}, all arms"),
                (lo, hi),
            )?;
        }
        Ok(())
    }
}

/// A horizontal viridis bar from `lo` to `hi` with numeric ticks: the scale of one metric's
/// heat maps.
fn colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    desc: &str,
    (lo, hi): (f64, f64),
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let x = Axis::fit(Scale::Linear, [lo, hi], 0.0);
    let y = Axis::fit(Scale::Linear, [0.0, 1.0], 0.0);
    let mut chart = ChartBuilder::on(area)
        .margin_left(110)
        .margin_right(40)
        .margin_top(8)
        .x_label_area_size(70)
        .build_cartesian_2d(x.coord(), y.coord())?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_y_axis()
        .label_style(text(style::TICK_PX))
        .axis_desc_style(text(style::LABEL_PX))
        .x_desc(desc)
        .x_label_formatter(&|t| x.label(*t))
        .draw()?;
    let span = if hi > lo { hi - lo } else { 1.0 };
    let step = span / BAR_STEPS as f64;
    chart.draw_series((0..BAR_STEPS).map(|i| {
        let a = x.lo + i as f64 * (x.hi - x.lo) / BAR_STEPS as f64;
        let b = a + (x.hi - x.lo) / BAR_STEPS as f64;
        let t = ((a + step / 2.0 - lo) / span).clamp(0.0, 1.0);
        Rectangle::new([(a, 0.0), (b, 1.0)], viridis(t).filled())
    }))?;
    Ok(())
}

impl HeatFig {
    fn heat_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        title: &str,
        cells: &[Vec<f64>],
        (lo, hi): (f64, f64),
    ) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let (nw, nd) = (self.widths.len(), self.depths.len());
        let cat = |n: usize| Axis {
            scale: Scale::Linear,
            lo: -0.5,
            hi: n as f64 - 0.5,
            ticks: (0..n).map(|i| i as f64).collect(),
        };
        let mut chart =
            style::panel(area, title).build_cartesian_2d(cat(nw).coord(), cat(nd).coord())?;
        let label =
            |vals: &[String], t: f64| vals.get(t.round() as usize).cloned().unwrap_or_default();
        style::mesh(
            &mut chart,
            "encoder width (units)",
            "depth (hidden layers)",
            &|t| label(&self.widths, *t),
            &|t| label(&self.depths, *t),
        )?;
        let span = if hi > lo { hi - lo } else { 1.0 };
        for (d, row) in cells.iter().enumerate() {
            for (w, &v) in row.iter().enumerate() {
                let (x, y) = (w as f64, d as f64);
                if !v.is_finite() {
                    continue;
                }
                let t = ((v - lo) / span).clamp(0.0, 1.0);
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
                    viridis(t).filled(),
                )))?;
                // Viridis is dark at the low end: light text there, dark text at the high end.
                let ink = if t < 0.6 { WHITE } else { BLACK };
                chart.draw_series(std::iter::once(Text::new(
                    style::num_label((v * 100.0).round() / 100.0),
                    (x, y),
                    text(style::TICK_PX)
                        .color(&ink)
                        .pos(Pos::new(HPos::Center, VPos::Center)),
                )))?;
            }
        }
        Ok(())
    }
}

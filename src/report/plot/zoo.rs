//! Remedies compared (`report::zoo`): one row per method, a dot with its 95% interval for
//! perplexity per code, shrink ratio, MSE and modes reconstructed, four panels side by side,
//! rows sorted by perplexity; the baseline and the plain deferred arm in colour, a dashed line
//! at the baseline's mean in every panel. One figure per configuration (e.g. codebook size).
//!
//! Sized for one column of a two-column paper: `WIDTH` px printed 3.5 inches wide puts the
//! house tick and label text (18.5 px glyphs) at about 5.8 pt.

use std::path::PathBuf;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{Axis, Scale};
use super::runs::{show, slug};
use super::style::{self, arm_color, legend, text, Key};
use super::{save, Draw, DrawResult, Figure, PlotError, Projection};
use crate::report::results::Results;
use crate::report::zoo::{self, Row, ZooTable, METRICS};

/// Figure width, px: one column.
pub const WIDTH: u32 = 800;
/// Row labels: smaller than the tick labels, so a long method name does not dwarf the panels
/// (and wraps less); the height of one of their text lines, px.
const ROW_LABEL_PX: u32 = 17;
const LINE: u32 = 21;
/// Room above the rows (panel titles) and below them (tick labels), px.
const TOP: u32 = 40;
const BOTTOM: u32 = 44;
/// Row labels get at most this share of the width; longer ones wrap at ", ".
const LABEL_SHARE: f64 = 0.3;
/// Most tick labels per panel: panels are narrow.
const MAX_TICKS: usize = 3;
/// Everything but the baseline and the deferred arm.
const OTHER: RGBColor = RGBColor(0x33, 0x33, 0x33);

/// `zoo<slug>.png/.svg` per remedies table of the summary (`report::zoo::tables`): only for
/// a declared baseline and more than two arms.
pub struct Zoo;

impl Figure for Zoo {
    fn stem(&self) -> &'static str {
        "zoo"
    }

    fn title(&self) -> &'static str {
        "remedies"
    }

    fn describe(&self, _: &Results) -> String {
        "Remedies compared: one row per method, dot = mean and bar = 95% CI over seeds of \
         perplexity per code (perplexity / S), shrink ratio, reconstruction MSE (log axis) \
         and modes reconstructed; rows sorted by perplexity, the baseline and the plain \
         deferred arm in colour, the dashed line at the baseline&rsquo;s mean."
            .into()
    }

    fn fits(&self, results: &Results) -> bool {
        !zoo::tables(&results.summary).is_empty()
    }

    fn draw(&self, results: &Results, _: Projection) -> Result<Vec<PathBuf>, PlotError> {
        let mut paths = Vec::new();
        for t in &zoo::tables(&results.summary) {
            let values: Vec<(&str, &str)> = t
                .config
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let fig = ZooFig::new(&results.name, t);
            paths.extend(save(&fig, &results.dir, &format!("zoo{}", slug(&values)))?);
        }
        Ok(paths)
    }
}

struct ZooFig {
    title: String,
    subtitle: String,
    rows: Vec<Row>,
    /// Each row's label broken into lines that fit the label column.
    labels: Vec<Vec<String>>,
    label_width: u32,
    legend: Vec<Vec<(Key, String)>>,
}

impl ZooFig {
    fn new(scenario: &str, t: &ZooTable) -> ZooFig {
        let config: Vec<String> = t.config.iter().map(|(k, v)| show(k, v)).collect();
        // An arm whose runs all diverged has no dot to draw: the subtitle names it instead.
        let (rows, lost): (Vec<&Row>, Vec<&Row>) = t.rows.iter().partition(|r| r.cells[0].ci.n > 0);
        let seeds = rows.iter().map(|r| r.cells[0].ci.n);
        let (lo, hi) = (seeds.clone().min().unwrap_or(0), seeds.max().unwrap_or(0));
        let n = if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}–{hi}")
        };
        let mut subtitle = config;
        subtitle.push(format!("mean ± 95% CI over {n} seeds"));
        subtitle.push("sorted by perplexity".into());
        for r in lost {
            subtitle.push(format!("{}: all {} runs diverged", r.label, r.diverged));
        }
        let room = (WIDTH as f64 * LABEL_SHARE) as u32;
        let labels: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                // The colour says which row is the baseline; its label says what it is.
                wrap(if r.baseline { &t.baseline } else { &r.label }, room)
            })
            .collect();
        let label_width = labels
            .iter()
            .flatten()
            .map(|l| width_of(l))
            .max()
            .unwrap_or(0)
            .min(room)
            + 12;
        let mut keys = vec![(Key::Dot(arm_color(0)), "baseline".to_string())];
        if t.rows.iter().any(|r| r.deferred) {
            keys.push((Key::Dot(arm_color(1)), "plain deferred".into()));
        }
        keys.push((Key::Dot(OTHER), "other methods".into()));
        keys.push((Key::Dashed(arm_color(0)), "baseline mean".into()));
        ZooFig {
            title: format!("{scenario}: remedies vs baseline"),
            subtitle: subtitle.join(" · "),
            rows: rows.into_iter().cloned().collect(),
            labels,
            label_width,
            legend: vec![keys],
        }
    }

    fn color(r: &Row) -> RGBColor {
        if r.baseline {
            arm_color(0)
        } else if r.deferred {
            arm_color(1)
        } else {
            OTHER
        }
    }

    /// Height of each row, px: room for its label's lines.
    fn row_heights(&self) -> Vec<u32> {
        self.labels
            .iter()
            .map(|l| l.len().max(1) as u32 * LINE + 10)
            .collect()
    }
}

/// Width of `s` at the row-label size, px.
fn width_of(s: &str) -> u32 {
    text(ROW_LABEL_PX)
        .font
        .box_size(s)
        .map_or(s.chars().count() as u32 * ROW_LABEL_PX / 2, |(w, _)| w)
}

/// `label` broken at ", " into lines at most `room` px wide; a part wider than `room` alone
/// breaks after its "=" (`parameterization=` / `affine_running`), so no label is clipped.
fn wrap(label: &str, room: u32) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for part in label.split(", ") {
        match lines.last_mut() {
            Some(last) if width_of(&format!("{last}, {part}")) <= room => {
                last.push_str(", ");
                last.push_str(part);
                continue;
            }
            Some(last) => last.push(','),
            None => {}
        }
        match part.split_once('=') {
            Some((key, value)) if width_of(part) > room => {
                lines.push(format!("{key}="));
                lines.push(value.to_string());
            }
            _ => lines.push(part.to_string()),
        }
    }
    lines
}

/// At most `MAX_TICKS` of `ticks`, evenly thinned.
fn thin(ticks: &[f64]) -> Vec<f64> {
    let step = ticks.len().div_ceil(MAX_TICKS).max(1);
    ticks.iter().copied().step_by(step).collect()
}

impl Draw for ZooFig {
    fn size(&self) -> (u32, u32) {
        let header = style::header_height(&self.subtitle, WIDTH);
        let legend = style::legend_height(&self.legend, WIDTH);
        let rows: u32 = self.row_heights().iter().sum();
        (WIDTH, header + legend + TOP + rows + BOTTOM)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let body = style::header(root, &self.title, &self.subtitle)?;
        let body = legend(&body, &self.legend)?;
        let (labels, panels) = body.split_horizontally(self.label_width);
        let (w, _) = panels.dim_in_pixel();
        let per = w / METRICS.len() as u32;
        let splits: Vec<u32> = (1..METRICS.len() as u32).map(|i| i * per).collect();
        let areas = panels.split_by_breakpoints(splits, Vec::<u32>::new());
        // Row centres in px from the top of the plotting area, and its full height.
        let heights = self.row_heights();
        let total: u32 = heights.iter().sum();
        let mut centres = Vec::new();
        let mut y = 0;
        for h in &heights {
            centres.push(f64::from(y) + f64::from(*h) / 2.0);
            y += h;
        }
        // Rows run top to bottom; the y coordinate is pixels from the top, flipped.
        let ys: Vec<f64> = centres.iter().map(|c| f64::from(total) - c).collect();
        let y_axis = Axis {
            scale: Scale::Linear,
            lo: 0.0,
            hi: f64::from(total),
            ticks: ys.clone(),
        };
        for (m, ((_, name), area)) in METRICS.iter().zip(&areas).enumerate() {
            self.panel(area, m, name, &y_axis, &ys)?;
        }
        // Labels right-aligned against the first panel, level with their rows.
        let top = i32::try_from(TOP).unwrap_or(0);
        let x = i32::try_from(self.label_width).unwrap_or(0) - 6;
        for ((lines, r), c) in self.labels.iter().zip(&self.rows).zip(&centres) {
            let color = Self::color(r);
            let style = text(ROW_LABEL_PX)
                .color(&color)
                .pos(Pos::new(HPos::Right, VPos::Center));
            let first = top + *c as i32 - (lines.len() as i32 - 1) * LINE as i32 / 2;
            for (i, line) in lines.iter().enumerate() {
                labels.draw(&Text::new(
                    line.as_str(),
                    (x, first + i as i32 * LINE as i32),
                    style.clone(),
                ))?;
            }
        }
        Ok(())
    }
}

impl ZooFig {
    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        m: usize,
        name: &str,
        y: &Axis,
        ys: &[f64],
    ) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        // MSE spans decades between a collapsed and a healthy codebook.
        let scale = if METRICS[m].0 == "mse" {
            Scale::Log10
        } else {
            Scale::Linear
        };
        let cells = self.rows.iter().map(|r| &r.cells[m].ci);
        let mut values: Vec<f64> = cells.flat_map(|c| [c.mean, c.lo, c.hi]).collect();
        // Perplexity per code and shrink ratio are 1 for a healthy codebook: keep 0 and 1 in view.
        if matches!(METRICS[m].0, "perplexity" | "shrink_ratio") {
            values.extend([0.0, 1.0]);
        }
        let mut x = Axis::fit(scale, values, 0.08);
        x.ticks = thin(&x.ticks);
        let title = if scale == Scale::Log10 {
            format!("{name} (log)")
        } else {
            name.to_string()
        };
        let (w, _) = area.dim_in_pixel();
        let mut chart = ChartBuilder::on(area)
            .caption(&title, text(style::title_px(&title, w + 12)))
            .margin_left(6)
            .margin_right(14)
            .margin_top(0)
            .x_label_area_size(BOTTOM)
            .y_label_area_size(0)
            .build_cartesian_2d(x.coord(), y.coord())?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(0xEE, 0xEE, 0xEE))
            .bold_line_style(RGBColor(0xE4, 0xE4, 0xE4))
            .label_style(text(style::TICK_PX))
            .x_label_formatter(&|t| x.label(*t))
            .y_label_formatter(&|_| String::new())
            .draw()?;
        let base = self.rows.iter().find(|r| r.baseline).map(|r| r.cells[m].ci);
        if let Some(b) = base.filter(|b| b.mean.is_finite()) {
            chart.draw_series(DashedLineSeries::new(
                [(x.clamp(b.mean), y.lo), (x.clamp(b.mean), y.hi)],
                8,
                5,
                arm_color(0).stroke_width(2),
            ))?;
        }
        for (r, &py) in self.rows.iter().zip(ys) {
            let c = r.cells[m].ci;
            let color = Self::color(r);
            if c.lo.is_finite() && c.hi.is_finite() {
                let lo = if scale == Scale::Log10 {
                    super::curves::band_lo(scale, &c)
                } else {
                    c.lo
                };
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(x.clamp(lo), py), (x.clamp(c.hi), py)],
                    color.stroke_width(3),
                )))?;
            }
            if c.mean.is_finite() {
                chart.draw_series(std::iter::once(Circle::new(
                    (x.clamp(c.mean), py),
                    6,
                    color.filled(),
                )))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_wrap_at_commas_then_after_the_equals_sign() {
        let room = (WIDTH as f64 * LABEL_SHARE) as u32;
        assert_eq!(wrap("restart=lru", room), ["restart=lru"]);
        let long = "parameterization=affine_running";
        assert!(width_of(long) > room, "the case this test is about");
        assert_eq!(wrap(long, room), ["parameterization=", "affine_running"]);
        let pair = wrap(&format!("{long}, schedule.kind=deferred"), room);
        assert_eq!(
            pair,
            [
                "parameterization=",
                "affine_running,",
                "schedule.kind=deferred"
            ]
        );
        assert!(pair.iter().all(|l| width_of(l) <= room), "{pair:?}");
    }
}

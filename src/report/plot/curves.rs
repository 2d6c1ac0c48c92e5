//! Panels of mean curves with shaded confidence bands, shared by the token-scaling, dynamics
//! and capacity figures.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis::{Axis, Scale};
use super::style::{self, legend, Key};
use super::{Draw, DrawResult};
use crate::report::stats::MeanCi;

/// One arm's mean curve and band.
#[derive(Debug, Clone)]
pub struct Curve {
    pub color: RGBColor,
    pub pts: Vec<(f64, MeanCi)>,
}

#[derive(Debug, Clone)]
pub struct CurvePanel {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub x: Axis,
    pub y: Axis,
    pub curves: Vec<Curve>,
    /// Dots at the means (for sweeps with few x values).
    pub markers: bool,
    /// A grey dashed reference curve (e.g. ideal perplexity = S).
    pub reference: Option<Vec<(f64, f64)>>,
    /// Vertical dashed lines (e.g. the quantization switch).
    pub vlines: Vec<(f64, RGBColor)>,
}

impl CurvePanel {
    /// Axes fitted to the curves (means and bands) and the reference.
    pub fn fit_axes(&mut self, x: Scale, y: Scale) {
        let xs = self.curves.iter().flat_map(|c| c.pts.iter().map(|p| p.0));
        let xs: Vec<f64> = xs.chain(self.vlines.iter().map(|v| v.0)).collect();
        self.x = Axis::fit(x, xs, 0.04);
        let ys = self.curves.iter().flat_map(|c| {
            c.pts
                .iter()
                .flat_map(|(_, m)| [m.mean, band_lo(y, m), m.hi])
        });
        let refs = self.reference.iter().flatten().map(|p| p.1);
        self.y = Axis::fit(y, ys.chain(refs).collect::<Vec<_>>(), 0.06);
    }

    pub fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let (x, y) = (&self.x, &self.y);
        let mut chart = style::panel(area, &self.title).build_cartesian_2d(x.coord(), y.coord())?;
        style::mesh(
            &mut chart,
            &self.x_desc,
            &self.y_desc,
            &|t| x.label(*t),
            &|t| y.label(*t),
        )?;
        if let Some(r) = &self.reference {
            let pts: Vec<(f64, f64)> = r
                .iter()
                .filter(|p| p.1 > 0.0 || y.scale == Scale::Linear)
                .map(|p| (x.to(p.0), y.clamp(p.1)))
                .collect();
            chart.draw_series(DashedLineSeries::new(
                pts,
                10,
                6,
                RGBColor(0x77, 0x77, 0x77).stroke_width(2),
            ))?;
        }
        for &(vx, c) in &self.vlines {
            chart.draw_series(DashedLineSeries::new(
                [(x.to(vx), y.lo), (x.to(vx), y.hi)],
                10,
                6,
                c.stroke_width(2),
            ))?;
        }
        for c in &self.curves {
            for seg in segments(&c.pts) {
                let upper = seg.iter().map(|(px, m)| (x.to(*px), y.clamp(m.hi)));
                let lower = seg
                    .iter()
                    .rev()
                    .map(|(px, m)| (x.to(*px), y.clamp(band_lo(y.scale, m))));
                chart.draw_series(std::iter::once(Polygon::new(
                    upper.chain(lower).collect::<Vec<_>>(),
                    c.color.mix(0.2).filled(),
                )))?;
            }
        }
        for c in &self.curves {
            for seg in segments(&c.pts) {
                let line: Vec<(f64, f64)> = seg
                    .iter()
                    .map(|(px, m)| (x.to(*px), y.clamp(m.mean)))
                    .collect();
                chart.draw_series(LineSeries::new(line.clone(), c.color.stroke_width(3)))?;
                if self.markers {
                    chart.draw_series(
                        line.into_iter()
                            .map(|p| Circle::new(p, 5, c.color.filled())),
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// On log axes a band's lower edge is drawn no lower than this share of the mean.
pub const LOG_BAND_FLOOR: f64 = 0.1;

/// Lower edge of a band as drawn. A t-interval of a positive metric over few seeds can reach
/// ≤ 0, which a log axis cannot show: left alone it would plunge to the axis bottom in spikes
/// (or stretch the axis over decades of nothing), so on log axes it is cut at a positive floor.
pub fn band_lo(scale: Scale, m: &MeanCi) -> f64 {
    match scale {
        Scale::Linear => m.lo,
        Scale::Log10 | Scale::Log2 => m.lo.max(LOG_BAND_FLOOR * m.mean),
    }
}

/// Runs of consecutive points with a finite mean: lines break where a metric is undefined.
fn segments(pts: &[(f64, MeanCi)]) -> Vec<&[(f64, MeanCi)]> {
    pts.split(|(_, m)| !m.mean.is_finite())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A figure of curve panels under a title and a legend strip.
pub struct CurvesFig {
    pub title: String,
    pub subtitle: String,
    pub legend: Vec<Vec<(Key, String)>>,
    pub panels: Vec<CurvePanel>,
    pub cols: usize,
}

impl Draw for CurvesFig {
    fn size(&self) -> (u32, u32) {
        let rows = self.panels.len().div_ceil(self.cols) as u32;
        style::size(&self.subtitle, &self.legend, rows * style::ROW)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let body = style::header(root, &self.title, &self.subtitle)?;
        let body = legend(&body, &self.legend)?;
        let rows = self.panels.len().div_ceil(self.cols);
        for (p, cell) in self.panels.iter().zip(body.split_evenly((rows, self.cols))) {
            p.draw(&cell)?;
        }
        Ok(())
    }
}

//! The §4.2 check (`vqsim theory`): measured diversity H and quantization error Q against their
//! predictions, as tokens are placed on M = 1 … K modes.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis::{Axis, Scale};
use super::style::{self, arm_color, legend, Key};
use super::{save, Draw, DrawResult, PlotError};
use crate::sim::theory::TheoryRow;

/// The figure's name in a sentence, and its caption on the paper page (HTML).
pub const TITLE: &str = "theory";
pub const DESCRIPTION: &str =
    "The paper&rsquo;s &sect;4.2 formula with identity encoder and decoder: S = 64 tokens \
     placed by k-means on M of K = 10 well-separated modes. Left: diversity H (entropy of the \
     tokens&rsquo; mode shares) against ln M. Right: quantization error Q against its \
     prediction from the mixture&rsquo;s geometry (within-mode k-means error for active \
     modes, distance to the nearest active tokens for the rest); log scale.";

/// Draws `dir/figures/theory.{png,svg}`.
pub fn theory(dir: &Path, rows: &[TheoryRow]) -> Result<Vec<PathBuf>, PlotError> {
    save(
        &TheoryFig {
            rows: rows.to_vec(),
        },
        dir,
        "theory",
    )
}

struct TheoryFig {
    rows: Vec<TheoryRow>,
}

impl TheoryFig {
    fn legend(&self) -> Vec<Vec<(Key, String)>> {
        vec![vec![
            (Key::Line(arm_color(1)), "predicted (§4.2)".into()),
            (Key::Dot(arm_color(0)), "measured".into()),
        ]]
    }
}

const SUBTITLE: &str = "identity encoder and decoder · K=10 modes on a circle, σ=0.5 · S=64 \
                        tokens by k-means within the M active modes";

impl Draw for TheoryFig {
    fn size(&self) -> (u32, u32) {
        let header = style::header_height(SUBTITLE, style::WIDTH);
        (
            style::WIDTH,
            header + style::legend_height(&self.legend(), style::WIDTH) + style::ROW,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let body = style::header(root, "Token diversity H and quantization error Q", SUBTITLE)?;
        let body = legend(&body, &self.legend())?;
        let cells = body.split_evenly((1, 2));
        let m: Vec<f64> = self.rows.iter().map(|r| r.active_modes as f64).collect();
        let xr = Axis::fit(Scale::Linear, m.iter().copied(), 0.05);
        // (title, y axis, scale, (measured, predicted) per M)
        type PanelSpec<'a> = (&'a str, &'a str, Scale, Vec<(f64, f64)>);
        let panels: [PanelSpec; 2] = [
            (
                "diversity H vs active modes",
                "H (nats)",
                Scale::Linear,
                self.rows
                    .iter()
                    .map(|r| (r.h_measured, r.h_predicted))
                    .collect(),
            ),
            (
                "quantization error Q vs active modes",
                "Q = E‖x − q(x)‖² (log scale)",
                Scale::Log10,
                self.rows
                    .iter()
                    .map(|r| (r.q_measured, r.q_predicted))
                    .collect(),
            ),
        ];
        for (cell, (title, y_desc, scale, values)) in cells.iter().zip(panels) {
            let yr = Axis::fit(scale, values.iter().flat_map(|&(a, b)| [a, b]), 0.08);
            let mut chart = style::panel(cell, title).build_cartesian_2d(xr.coord(), yr.coord())?;
            style::mesh(
                &mut chart,
                "active modes M",
                y_desc,
                &|v| xr.label(*v),
                &|v| yr.label(*v),
            )?;
            let at = |i: usize, v: f64| (xr.to(m[i]), yr.to(v));
            chart.draw_series(LineSeries::new(
                values.iter().enumerate().map(|(i, &(_, p))| at(i, p)),
                arm_color(1).stroke_width(3),
            ))?;
            chart.draw_series(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, &(v, _))| Circle::new(at(i, v), 6, arm_color(0).filled())),
            )?;
        }
        Ok(())
    }
}

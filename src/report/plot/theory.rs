//! The §4.2 check (`vqsim theory`): measured diversity H against ln M, and measured
//! quantization error Q against its prediction, for tokens placed on M = 1 … K modes
//! (constructed) and for trained identity-model codebooks, marked by their init.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis::{Axis, Scale};
use super::style::{self, arm_color, legend, Key};
use super::{save, Draw, DrawResult, PlotError};
use crate::sim::config::Init;
use crate::sim::theory::{Source, TheoryRow};

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

/// Whether a trained row (its init and init_std) belongs to a group.
type Member = fn(Init, f64) -> bool;

/// The trained runs' init groups: (label, colour index, whether a row belongs).
const GROUPS: [(&str, usize, Member); 5] = [
    ("trained, uniform init", 2, |i, _| i == Init::Uniform),
    ("normal σ=0.1", 3, |i, s| i == Init::Normal && s < 0.5),
    ("normal σ=1", 4, |i, s| {
        i == Init::Normal && (0.5..2.0).contains(&s)
    }),
    ("normal σ=3", 5, |i, s| i == Init::Normal && s >= 2.0),
    ("k-means", 6, |i, _| i == Init::Kmeans),
];

/// The colour of a row: constructed rows 0, trained rows by init group.
fn color(r: &TheoryRow) -> RGBColor {
    match r.source {
        Source::Constructed => arm_color(0),
        Source::Trained(t) => GROUPS
            .iter()
            .find(|(_, _, is)| is(t.init, t.init_std))
            .map_or(arm_color(7), |&(_, c, _)| arm_color(c)),
    }
}

impl TheoryFig {
    fn legend(&self) -> Vec<Vec<(Key, String)>> {
        let mut trained: Vec<(Key, String)> = GROUPS
            .iter()
            .map(|&(label, c, _)| (Key::Cross(arm_color(c)), label.into()))
            .collect();
        trained.push((Key::Text, "(S = 16 and 64, seeds 0–2)".into()));
        vec![
            vec![
                (Key::Line(arm_color(1)), "predicted (§4.2)".into()),
                (
                    Key::Dot(arm_color(0)),
                    "constructed: S=64 tokens by k-means on M of K=10 modes on a circle".into(),
                ),
            ],
            trained,
        ]
    }
}

const SUBTITLE: &str = "identity encoder and decoder, σ=0.5 · constructed: tokens placed as \
                        the formula assumes · trained: 30 early-quantization runs on the \
                        built-in data, prediction from their active modes M alone";

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
        let (constructed, trained): (Vec<&TheoryRow>, Vec<&TheoryRow>) = self
            .rows
            .iter()
            .partition(|r| matches!(r.source, Source::Constructed));
        // H against M, with ln M.
        let m_max = self.rows.iter().map(|r| r.active_modes).max().unwrap_or(1);
        let xr = Axis::fit(Scale::Linear, [0.5, m_max as f64 + 0.5], 0.0);
        let yr = Axis::fit(
            Scale::Linear,
            self.rows.iter().flat_map(|r| [r.h_measured, r.h_predicted]),
            0.08,
        );
        let mut chart = style::panel(&cells[0], "diversity H vs active modes M")
            .build_cartesian_2d(xr.coord(), yr.coord())?;
        style::mesh(
            &mut chart,
            "active modes M (modes nearest to ≥ 1 token)",
            "H (nats)",
            &|v| xr.label(*v),
            &|v| yr.label(*v),
        )?;
        chart.draw_series(LineSeries::new(
            (1..=m_max).map(|m| (xr.to(m as f64), yr.to((m as f64).ln()))),
            arm_color(1).stroke_width(3),
        ))?;
        let at = |r: &TheoryRow| (xr.to(r.active_modes as f64), yr.to(r.h_measured));
        chart.draw_series(
            constructed
                .iter()
                .map(|r| Circle::new(at(r), 6, color(r).filled())),
        )?;
        chart.draw_series(
            trained
                .iter()
                .map(|r| Cross::new(at(r), 5, color(r).stroke_width(2))),
        )?;
        // Q measured against Q predicted, with the diagonal.
        let q = Axis::fit(
            Scale::Log10,
            self.rows.iter().flat_map(|r| [r.q_measured, r.q_predicted]),
            0.08,
        );
        let mut chart = style::panel(&cells[1], "quantization error Q: measured vs predicted")
            .build_cartesian_2d(q.coord(), q.coord())?;
        style::mesh(
            &mut chart,
            "Q predicted from M (log scale)",
            "Q = E‖x − q(x)‖² measured (log scale)",
            &|v| q.label(*v),
            &|v| q.label(*v),
        )?;
        let (lo, hi) = self
            .rows
            .iter()
            .flat_map(|r| [r.q_measured, r.q_predicted])
            .fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
        chart.draw_series(LineSeries::new(
            [(q.to(lo), q.to(lo)), (q.to(hi), q.to(hi))],
            arm_color(1).stroke_width(3),
        ))?;
        let at = |r: &TheoryRow| (q.to(r.q_predicted), q.to(r.q_measured));
        chart.draw_series(
            constructed
                .iter()
                .map(|r| Circle::new(at(r), 6, color(r).filled())),
        )?;
        chart.draw_series(
            trained
                .iter()
                .map(|r| Cross::new(at(r), 5, color(r).stroke_width(2))),
        )?;
        Ok(())
    }
}

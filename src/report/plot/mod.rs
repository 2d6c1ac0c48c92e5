//! Figures from a results directory on disk (SPEC §6), as PNG and SVG in `DIR/figures/`.
//!
//! Everything is read back from the CSVs a sweep wrote, so `vqsim plot DIR` draws exactly what
//! a user can inspect. Which figures are drawn depends on which parameters vary among the runs.

mod axis;
mod capacity;
mod curves;
mod diagnosis;
mod dynamics;
mod generation;
pub mod pca;
mod runs;
mod shrinkage;
pub mod style;
mod theory;
mod tokens;
mod zoo;

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::atomic;
use crate::report::summary::SummaryError;
use crate::report::table::TableError;

pub use capacity::capacity;
pub use diagnosis::diagnosis;
pub use dynamics::dynamics;
pub use generation::generation;
pub use runs::{params, slug, Runs, ARM_PARAMS};
pub use shrinkage::{shrinkage, Projection, Snapshot};
pub use theory::theory;
pub use tokens::token_scaling;
pub use zoo::zoo;

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Summary(#[from] SummaryError),
    #[error("{path}: {message}")]
    Data { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot draw {path}: {message}")]
    Draw { path: PathBuf, message: String },
    #[error("the vendored assets/DejaVuSans.ttf is not a usable font")]
    Font,
}

/// The kinds of figure, in the order `plot_all` draws them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    /// Paper Figs. 2–3: data, latent space and code usage per arm.
    Shrinkage,
    /// Paper Fig. 4: metrics vs codebook size.
    TokenScaling,
    /// Metrics vs epoch, from history.csv.
    Dynamics,
    /// Embedding collapse vs encoder depth and width.
    Capacity,
    /// Remedies compared: every arm against the declared baseline (with `zoo.csv`).
    Zoo,
    /// Paper Fig. 1: real data vs each arm's generated set.
    Generation,
    /// The §4.2 check of `vqsim theory` (not drawn from a results directory).
    Theory,
}

/// The figures that fit the runs in `dir`.
pub fn discover(dir: &Path) -> Result<Vec<Figure>, PlotError> {
    let runs = Runs::load(dir)?;
    Ok(fitting(&runs, dir))
}

fn fitting(runs: &Runs, dir: &Path) -> Vec<Figure> {
    let mut figures = vec![Figure::Shrinkage];
    if runs.distinct("quantizer.codebook_size").len() >= 3 {
        figures.push(Figure::TokenScaling);
    }
    if dir.join("history.csv").is_file() {
        figures.push(Figure::Dynamics);
    }
    if runs.varies("model.depth") || runs.varies("model.width") {
        figures.push(Figure::Capacity);
    }
    // Drawn only when the scenario declares a baseline and has more than two arms; `zoo`
    // decides from the summary.
    if dir.join(crate::study::store::SCENARIO_TOML).is_file() {
        figures.push(Figure::Zoo);
    }
    // One panel per arm: beyond early vs deferred the panels get too narrow for their titles
    // (a zoo has its own figure).
    if runs.varies("schedule.kind") && runs.arms.len() <= 2 {
        figures.push(Figure::Generation);
    }
    figures
}

/// Draws every figure that fits the runs in `dir` into `dir/figures/`; returns the files.
pub fn plot_all(dir: &Path, projection: Projection) -> Result<Vec<PathBuf>, PlotError> {
    // Temp files of an earlier, interrupted `plot` (the summary tables' in `dir` too).
    for d in [dir.to_path_buf(), dir.join("figures")] {
        atomic::remove_stale_temps(&d).map_err(|source| PlotError::Io { path: d, source })?;
    }
    let mut paths = Vec::new();
    for figure in discover(dir)? {
        paths.extend(match figure {
            Figure::Shrinkage => shrinkage(dir, projection)?,
            Figure::TokenScaling => token_scaling(dir)?,
            Figure::Dynamics => dynamics(dir)?,
            Figure::Capacity => capacity(dir)?,
            Figure::Zoo => zoo(dir)?,
            Figure::Generation => generation(dir)?,
            // Drawn by `vqsim theory` from its own computation; `fitting` never lists it.
            Figure::Theory => Vec::new(),
        });
    }
    Ok(paths)
}

pub(crate) type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// One figure's drawing, independent of the backend so PNG and SVG are the same picture.
pub(crate) trait Draw {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static;
}

/// Writes `fig` as `dir/figures/<stem>.png` and `.svg`, each atomically (`crate::atomic`).
pub(crate) fn save(fig: &impl Draw, dir: &Path, stem: &str) -> Result<Vec<PathBuf>, PlotError> {
    style::init()?;
    let out = dir.join("figures");
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PlotError::Io { path, source }
    };
    std::fs::create_dir_all(&out).map_err(io_err(&out))?;
    let size = fig.size();
    let draw_err = |path: &Path, e: Box<dyn std::error::Error>| PlotError::Draw {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let png = out.join(format!("{stem}.png"));
    atomic::write_with(
        &png,
        |tmp| {
            let root = BitMapBackend::new(tmp, size).into_drawing_area();
            root.fill(&WHITE).map_err(|e| draw_err(&png, e.into()))?;
            fig.draw(&root).map_err(|e| draw_err(&png, e))?;
            root.present().map_err(|e| draw_err(&png, e.into()))
        },
        io_err(&png),
    )?;

    let svg = out.join(format!("{stem}.svg"));
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err(&svg, e.into()))?;
        fig.draw(&root).map_err(|e| draw_err(&svg, e))?;
        root.present().map_err(|e| draw_err(&svg, e.into()))?;
    }
    atomic::write(&svg, text.as_bytes()).map_err(io_err(&svg))?;
    Ok(vec![png, svg])
}

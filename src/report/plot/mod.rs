//! Figures from a results directory on disk, as PNG and SVG in `DIR/figures/`.
//!
//! Everything is drawn from the loaded results (`report::results`), so `vqsim plot DIR` draws
//! exactly what a user can inspect. Which figures are drawn depends on which parameters vary
//! among the runs: each figure says whether it fits (`Figure::fits`).

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
pub mod theory;
mod tokens;
mod zoo;

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::atomic;
use crate::report::results::Results;
use crate::report::summary::SummaryError;
use crate::report::table::TableError;

pub use capacity::Capacity;
pub use diagnosis::diagnosis;
pub use dynamics::Dynamics;
pub use generation::Generation;
pub use runs::{params, slug, Runs, ARM_PARAMS};
pub use shrinkage::{Projection, Shrinkage, Snapshot};
pub use theory::theory;
pub use tokens::TokenScaling;
pub use zoo::Zoo;

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

/// One kind of figure drawn from a results directory. Adding a figure is one implementation
/// and one line in `FIGURES`; `plot` and the paper page read everything else from here.
pub trait Figure: Sync {
    /// Start of its file names: `<stem><group slug>.png` and `.svg` in `DIR/figures/`.
    fn stem(&self) -> &'static str;
    /// Its name in a sentence ("token scaling").
    fn title(&self) -> &'static str;
    /// Its caption on the paper page, as HTML (trusted: entities, no user text).
    fn describe(&self, results: &Results) -> String;
    /// Whether these results have what the figure shows.
    fn fits(&self, results: &Results) -> bool;
    /// Draws its files (one pair per group of runs, or none) and returns their paths.
    fn draw(&self, results: &Results, projection: Projection) -> Result<Vec<PathBuf>, PlotError>;
}

/// Every figure, in the order `plot_all` draws them.
pub const FIGURES: [&dyn Figure; 6] = [
    &Shrinkage,
    &TokenScaling,
    &Dynamics,
    &Capacity,
    &Zoo,
    &Generation,
];

/// The figures that fit `results`.
pub fn fitting(results: &Results) -> Vec<&'static dyn Figure> {
    FIGURES.into_iter().filter(|f| f.fits(results)).collect()
}

/// The files one figure drew.
pub struct Drawn {
    pub figure: &'static dyn Figure,
    pub files: Vec<PathBuf>,
}

/// Draws every figure that fits `results` into `DIR/figures/`.
pub fn plot_all(results: &Results, projection: Projection) -> Result<Vec<Drawn>, PlotError> {
    let dir = &results.dir;
    if results.runs.is_empty() {
        return Err(PlotError::Data {
            path: results.table.path.clone(),
            message: "no run with status `ok` to plot".into(),
        });
    }
    // Temp files of an earlier, interrupted `plot` (the summary tables' in `dir` too).
    for d in [dir.to_path_buf(), dir.join("figures")] {
        atomic::remove_stale_temps(&d).map_err(|source| PlotError::Io { path: d, source })?;
    }
    fitting(results)
        .into_iter()
        .map(|figure| {
            Ok(Drawn {
                figure,
                files: figure.draw(results, projection)?,
            })
        })
        .collect()
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

//! One results directory, loaded once: its tables, the scenario stored with them, and what is
//! computed from those (the summary with its comparisons, the arms figures draw).
//!
//! Everything comes from the directory itself: `runs.csv`, `history.csv`, `manifest.toml` and
//! the resolved `scenario.toml`, read without the data file it names (`StoredScenario`), so a
//! results folder can be summarised and redrawn after its data set has moved or been deleted.
//! Tables, figures, claims and the paper page all receive this value; none re-reads a file.

use std::path::{Path, PathBuf};

use crate::report::plot::Runs;
use crate::report::summary::{self, Summary, SummaryError};
use crate::report::table::Table;
use crate::report::zoo;
use crate::study::scenario::StoredScenario;
use crate::study::store::{Manifest, HISTORY_CSV, MANIFEST_TOML, RUNS_CSV, SCENARIO_TOML};

#[derive(Debug)]
pub struct Results {
    pub dir: PathBuf,
    /// The directory's name, which names the scenario in figure titles.
    pub name: String,
    /// The resolved scenario the sweep stored; None for tables written without one.
    pub scenario: Option<StoredScenario>,
    /// runs.csv, every row whatever its status.
    pub table: Table,
    /// history.csv, when the sweep kept one.
    pub history: Option<Table>,
    /// manifest.toml, when present and readable (it only adds a completeness line).
    pub manifest: Option<Manifest>,
    pub summary: Summary,
    /// The `ok` runs in the vocabulary of figures: arms, groups, subtitles.
    pub runs: Runs,
}

impl Results {
    pub fn load(dir: &Path) -> Result<Results, SummaryError> {
        let table = Table::read(&dir.join(RUNS_CSV))?;
        let scenario = dir.join(SCENARIO_TOML);
        let scenario = if scenario.is_file() {
            Some(StoredScenario::load(&scenario)?)
        } else {
            None
        };
        let history = dir.join(HISTORY_CSV);
        let history = if history.is_file() {
            Some(Table::read(&history)?)
        } else {
            None
        };
        let manifest = std::fs::read_to_string(dir.join(MANIFEST_TOML))
            .ok()
            .and_then(|text| toml::from_str::<Manifest>(&text).ok());
        let declared = scenario
            .as_ref()
            .and_then(|s| s.baseline.as_ref())
            .map(|b| b.texts());
        let seeds = scenario.as_ref().map(|s| s.seeds.len());
        let summary = Summary::new(&table, declared.clone(), seeds)?;
        let name = dir
            .file_name()
            .map_or_else(|| "results".into(), |n| n.to_string_lossy().into_owned());
        let runs = Runs::new(dir, &name, &table, declared.as_deref())?;
        Ok(Results {
            dir: dir.to_path_buf(),
            name,
            scenario,
            table,
            history,
            manifest,
            summary,
            runs,
        })
    }

    /// Writes `summary.csv`, `comparisons.csv` and, for a remedies comparison, `zoo.csv`;
    /// returns the paths written.
    pub fn write_tables(&self) -> Result<Vec<PathBuf>, SummaryError> {
        summary::write(&self.dir, &self.summary)?;
        let mut paths = vec![
            self.dir.join("summary.csv"),
            self.dir.join("comparisons.csv"),
        ];
        paths.extend(zoo::write_csv(&self.dir, &zoo::tables(&self.summary))?);
        Ok(paths)
    }
}

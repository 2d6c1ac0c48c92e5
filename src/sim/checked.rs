//! A configuration that passed validation (`crate::sim::valid::validate`), with the data file
//! it was checked against: the only form in which training, the model and the quantizer accept
//! a configuration, so none of them re-checks anything.

use std::ops::Deref;

use crate::sim::config::RunConfig;
use crate::sim::data::DataFile;

/// A validated run configuration. It reads as its `RunConfig` (through `Deref`) and cannot be
/// changed: a changed configuration must be validated again.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRun {
    config: RunConfig,
    data: Option<DataFile>,
    points: usize,
    chosen: Chosen,
}

/// Each family's chosen remedy, as its position in the family's registry list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chosen {
    pub restart: usize,
    pub estimator: usize,
    pub parameterization: usize,
    pub kind: usize,
}

impl ValidRun {
    /// Made by validation only.
    pub(crate) fn new(config: RunConfig, data: Option<DataFile>, chosen: Chosen) -> ValidRun {
        let points = match &data {
            Some(f) => f.data.len(),
            None => config.data.modes * config.data.points_per_mode,
        };
        ValidRun {
            config,
            data,
            points,
            chosen,
        }
    }

    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// The data file used in place of the mixture, read once and shared by every run.
    pub fn data_file(&self) -> Option<&DataFile> {
        self.data.as_ref()
    }

    /// Number of data points: the file's rows, or `modes · points_per_mode`.
    pub fn points(&self) -> usize {
        self.points
    }

    pub(crate) fn chosen(&self) -> Chosen {
        self.chosen
    }
}

impl Deref for ValidRun {
    type Target = RunConfig;

    fn deref(&self) -> &RunConfig {
        &self.config
    }
}

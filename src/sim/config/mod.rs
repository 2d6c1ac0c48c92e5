//! One run's configuration: the five scenario sections with the built-in defaults.
//!
//! These are plain data. Scenario loading parses them from TOML and `crate::sim::valid`
//! checks them against the key table.

pub mod key;
pub mod remedy;

use serde::{Deserialize, Serialize};

pub use key::{Field, FieldValue, Key, RangeError, Rule};
pub(crate) use remedy::family;
pub use remedy::{Check, Family, Params, Remedy};

/// Synthetic data: a mixture of `modes` isotropic Gaussians, or a data file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Number of mixture components K.
    pub modes: usize,
    /// Points per component on average: the data set has `modes · points_per_mode` points.
    pub points_per_mode: usize,
    /// Input dimension d.
    pub dim: usize,
    /// Means are uniform in [-mean_range, mean_range]^d.
    pub mean_range: f64,
    /// Standard deviation of the first component (of every one when `std_ratio` = 1).
    pub std: f64,
    /// Largest over smallest component weight; weights fall geometrically from the first
    /// component to the last. 1 = equal weights.
    pub weight_ratio: f64,
    /// Largest over smallest component σ; σ grows geometrically from `std` (first component)
    /// to `std · std_ratio` (last). 1 = shared σ.
    pub std_ratio: f64,
    /// Share of the points held out of training (chosen at random); `heldout_mse` measures
    /// reconstruction on them. 0 = train on everything.
    pub holdout: f64,
    /// A data file (N, d) used in place of the mixture; "" = the mixture. Scenario loading
    /// resolves it against the scenario's directory, reads it once (the validated run holds
    /// its contents) and sets `modes`, `points_per_mode` and `dim` from the file.
    pub path: String,
    /// The array of an `.npz` data file; "" = its only array.
    pub array: String,
    /// A file of one integer class per row of `path`; their means are the modes. "" = none.
    pub labels: String,
    /// z-score each column of the data file.
    pub standardize: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            modes: 10,
            points_per_mode: 1000,
            dim: 2,
            mean_range: 10.0,
            std: 0.5,
            weight_ratio: 1.0,
            std_ratio: 1.0,
            holdout: 0.0,
            path: String::new(),
            array: String::new(),
            labels: String::new(),
            standardize: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    Tanh,
    Gelu,
}

/// What encoder and decoder are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// MLPs of `depth` hidden layers of `width` units.
    Mlp,
    /// Both the identity (latent = input): the only distortion is quantization, as in the
    /// paper's §4.2 model. Needs latent_dim = dim; width, depth and activation unused.
    Identity,
}

/// Encoder and decoder MLPs (mirror images of each other).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Dimension of the encoder output and of the codes.
    pub latent_dim: usize,
    /// Units per hidden layer.
    pub width: usize,
    /// Hidden layers per network; 0 makes encoder and decoder linear maps.
    pub depth: usize,
    pub activation: Activation,
    pub kind: ModelKind,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            latent_dim: 2,
            width: 64,
            depth: 2,
            activation: Activation::Relu,
            kind: ModelKind::Mlp,
        }
    }
}

/// How the codebook learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Update {
    /// Gradient of the codebook loss ‖sg(z) − q‖², with its own Adam.
    Loss,
    /// Exponential moving averages of assigned counts and sums (VQ-VAE appendix).
    Ema,
}

/// How the codebook starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// Uniform in ±1/S (the VQ-VAE default).
    Uniform,
    /// Normal with standard deviation `init_std`.
    Normal,
    /// k-means on the current encoder outputs of the whole data set.
    Kmeans,
}

/// How the assignment measures closeness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distance {
    /// Euclidean distance between the raw vectors.
    L2,
    /// Inputs and codes l2-normalised: the nearest code by cosine (Yu et al. 2021, ViT-VQGAN).
    Cosine,
}

/// The `[quantizer]` section. Its typed fields are the keys every quantizer has; the words
/// choose a remedy of each family (`crate::sim::vq`), and `params` holds the values of the
/// remedies' own keys, each declared in its remedy's file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// No `deny_unknown_fields`: the flattened `params` takes every other key, and the key table
// refuses the unknown ones before a section is deserialized.
#[serde(default)]
pub struct QuantizerConfig {
    /// Number of codes S.
    pub codebook_size: usize,
    pub update: Update,
    /// The codebook optimizer's learning rate as a multiple of `train.lr` (update = "loss";
    /// Łańcucki et al. 2020 raise it 10×).
    pub lr_scale: f64,
    /// Weight of the commitment loss ‖z − sg(q)‖².
    pub beta: f64,
    /// Decay of the EMA statistics (used when update = "ema").
    pub ema_decay: f64,
    pub init: Init,
    /// Standard deviation of the codes when init = "normal".
    pub init_std: f64,
    /// The dead-code restart rule.
    pub restart: String,
    /// The gradient estimator.
    pub estimator: String,
    pub distance: Distance,
    /// Dimension of the lookup space reached through learned projections (0 = no projection).
    pub code_dim: usize,
    /// How the codes are made from the learned parameters.
    pub parameterization: String,
    /// What kind of quantizer the bottleneck is.
    pub kind: String,
    /// Synchronised update: share ν of the decoder's gradient also reaches the selected code
    /// (0 = off).
    pub sync_nu: f64,
    /// The remedies' own keys (restart thresholds, regulariser weights, …).
    #[serde(flatten)]
    pub params: Params,
}

impl Default for QuantizerConfig {
    fn default() -> Self {
        Self {
            codebook_size: 64,
            update: Update::Loss,
            lr_scale: 1.0,
            beta: 0.25,
            ema_decay: 0.99,
            init: Init::Kmeans,
            init_std: 1.0,
            restart: "none".into(),
            estimator: "ste".into(),
            distance: Distance::L2,
            code_dim: 0,
            parameterization: "direct".into(),
            kind: "vq".into(),
            sync_nu: 0.0,
            params: Params::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Adam learning rate (networks and, for update = "loss", the codebook).
    pub lr: f64,
    pub batch_size: usize,
    /// Quantized epochs (early and deferred); with kind = "continuous", further unquantized ones.
    pub epochs: usize,
    /// The whole data set is measured (a history.csv row) every this many epochs of each phase,
    /// and always at its start and end: 1 keeps every epoch.
    pub history_every: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            batch_size: 256,
            epochs: 30,
            history_every: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// Quantize from the first step.
    Early,
    /// Train a plain autoencoder first, then initialise the codebook and quantize.
    Deferred,
    /// The plain autoencoder alone, never quantized, for `continuous_epochs + epochs` epochs:
    /// deferred's training budget, its first `continuous_epochs` identical to deferred's
    /// continuous phase. Isolates embedding collapse from token collapse.
    Continuous,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    pub kind: ScheduleKind,
    /// Epochs of continuous (unquantized) training before the switch, for kind = "deferred"
    /// (and the first part of kind = "continuous").
    pub continuous_epochs: usize,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            kind: ScheduleKind::Early,
            continuous_epochs: 30,
        }
    }
}

/// Everything that determines one run apart from its seed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    pub data: DataConfig,
    pub model: ModelConfig,
    pub quantizer: QuantizerConfig,
    pub train: TrainConfig,
    pub schedule: ScheduleConfig,
}

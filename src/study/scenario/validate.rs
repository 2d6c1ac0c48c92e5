//! The configuration keys, their types and allowed ranges — every rule in one place.
//!
//! `fields` lists each key of a `RunConfig` with its value and its rule. It destructures the
//! config exhaustively, so a field added to `config.rs` fails to compile here until it has a
//! rule. Raw TOML values are checked against the same rules (`check_value`) before they are
//! deserialized, so type errors name the key; typed configs are checked by `validate`.

use std::fmt;

use crate::sim::config::{
    DataConfig, ModelConfig, QuantizerConfig, RunConfig, ScheduleConfig, TrainConfig,
};

/// The sections of a configuration, in `RunConfig` order.
pub const SECTIONS: [&str; 5] = ["data", "model", "quantizer", "train", "schedule"];

/// Above this many points the data set alone (and every full-data metric) becomes absurd.
pub const MAX_TOTAL_POINTS: u64 = 10_000_000;
/// Largest float accepted anywhere: far below f32::MAX, so squares and sums stay finite in f32.
const MAX_FLOAT: f64 = 1e6;

/// One configuration key: its dotted name, its value in some config, what is allowed, and how
/// it is named in figures and documented. The list in `fields` is the registry every other
/// description of the keys (validation messages, README table, resolved scenarios, plot
/// labels, run ids) is derived from.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub key: &'static str,
    pub value: FieldValue,
    pub rule: Rule,
    /// Short name for figure titles and legends ("S", "σ", "width").
    pub label: &'static str,
    /// One line: what the key means, with the method's reference where it has one.
    pub doc: &'static str,
}

/// How a key is named and documented: the last two columns of every `fields` entry.
type Doc = (&'static str, &'static str);

#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Int(u64),
    Float(f64),
    Word(String),
    Bool(bool),
}

/// What a key accepts.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// An integer in `min..=max`, further capped by `cap` (which depends on other keys).
    Int { min: u64, max: u64, cap: Cap },
    /// A float between two bounds; the bounds are finite, so NaN and ±inf always fail.
    Float { lo: Bound, hi: Bound },
    /// One of these words (the serde names of an enum).
    Choice(&'static [&'static str]),
    /// Any string; the phrase says what it names ("a file path …").
    Text(&'static str),
    /// true or false.
    Bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    pub value: f64,
    pub inclusive: bool,
}

/// Cross-key limits on an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    None,
    /// k-means needs at least as many points as codes: codebook_size ≤ modes · points_per_mode.
    DataPoints,
    /// modes · points_per_mode ≤ MAX_TOTAL_POINTS.
    TotalPoints,
    /// A lookup space no wider than the latent space: code_dim ≤ model.latent_dim.
    LatentDim,
}

/// A value outside its allowed range, before the file and sweep context are known.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeError {
    pub key: String,
    pub value: String,
    pub allowed: String,
}

fn int(key: &'static str, value: usize, min: u64, max: u64, cap: Cap, doc: Doc) -> Field {
    Field {
        key,
        label: doc.0,
        doc: doc.1,
        // usize → u64 never loses bits on the platforms Rust supports.
        value: FieldValue::Int(value as u64),
        rule: Rule::Int { min, max, cap },
    }
}

fn float(key: &'static str, value: f64, lo: (f64, bool), hi: (f64, bool), doc: Doc) -> Field {
    Field {
        key,
        label: doc.0,
        doc: doc.1,
        value: FieldValue::Float(value),
        rule: Rule::Float {
            lo: Bound {
                value: lo.0,
                inclusive: lo.1,
            },
            hi: Bound {
                value: hi.0,
                inclusive: hi.1,
            },
        },
    }
}

fn choice<T: serde::Serialize>(
    key: &'static str,
    value: &T,
    words: &'static [&'static str],
    doc: Doc,
) -> Field {
    Field {
        key,
        label: doc.0,
        doc: doc.1,
        value: FieldValue::Word(word(value)),
        rule: Rule::Choice(words),
    }
}

/// The serde name of a unit enum variant.
pub(super) fn word<T: serde::Serialize>(value: &T) -> String {
    match toml::Value::try_from(value) {
        Ok(toml::Value::String(s)) => s,
        // Only unit variants of the config enums reach here; they always serialize to a string.
        other => unreachable!("config enum serialized as {other:?}"),
    }
}

fn text(key: &'static str, value: &str, allowed: &'static str, doc: Doc) -> Field {
    Field {
        key,
        label: doc.0,
        doc: doc.1,
        value: FieldValue::Word(value.to_string()),
        rule: Rule::Text(allowed),
    }
}

fn boolean(key: &'static str, value: bool, doc: Doc) -> Field {
    Field {
        key,
        label: doc.0,
        doc: doc.1,
        value: FieldValue::Bool(value),
        rule: Rule::Bool,
    }
}

/// The data-file keys: with `data.path` set, the mixture keys come from the file.
pub const FILE_KEYS: [&str; 4] = ["data.path", "data.array", "data.labels", "data.standardize"];
/// The keys that shape the mixture, which a data file replaces.
pub const MIXTURE_KEYS: [&str; 7] = [
    "data.modes",
    "data.points_per_mode",
    "data.dim",
    "data.mean_range",
    "data.std",
    "data.weight_ratio",
    "data.std_ratio",
];

const INCL: bool = true;
const EXCL: bool = false;

/// Every key of `cfg` in a fixed order (sections in `SECTIONS` order, keys in struct order),
/// with its value and rule.
pub fn fields(cfg: &RunConfig) -> Vec<Field> {
    // Exhaustive patterns (no `..`): a new config field must be given a rule here.
    let RunConfig {
        data,
        model,
        quantizer,
        train,
        schedule,
    } = cfg;
    let DataConfig {
        modes,
        points_per_mode,
        dim,
        mean_range,
        std,
        weight_ratio,
        std_ratio,
        holdout,
        path,
        array,
        labels,
        standardize,
        // Not a key: the contents of `path`, attached when the scenario is loaded.
        file: _,
    } = data;
    let ModelConfig {
        latent_dim,
        width,
        depth,
        activation,
        kind: model_kind,
    } = model;
    let QuantizerConfig {
        codebook_size,
        update,
        beta,
        ema_decay,
        init,
        init_std,
        restart,
        restart_threshold,
        restart_decay,
        lru_timeout,
        lru_jitter,
        kmeans_every,
        estimator,
        orthogonal_weight,
        entropy_weight,
        entropy_temperature,
        distance,
        code_dim,
        parameterization,
        kind: quantizer_kind,
        sync_nu,
    } = quantizer;
    let TrainConfig {
        lr,
        batch_size,
        epochs,
        history_every,
    } = train;
    let ScheduleConfig {
        kind,
        continuous_epochs,
    } = schedule;
    vec![
        int("data.modes", *modes, 1, 10_000, Cap::None, ("K", "mixture components K")),
        int(
            "data.points_per_mode",
            *points_per_mode,
            1,
            MAX_TOTAL_POINTS,
            Cap::TotalPoints,
            ("n", "points per component (on average, with unequal weights)"),
        ),
        int("data.dim", *dim, 1, 1024, Cap::None, ("d", "input dimension d")),
        float(
            "data.mean_range",
            *mean_range,
            (0.0, EXCL),
            (MAX_FLOAT, INCL),
            ("r", "means uniform in [−r, r]^d"),
        ),
        float(
            "data.std",
            *std,
            (0.0, INCL),
            (MAX_FLOAT, INCL),
            ("σ", "σ of the components (of the first one when std_ratio > 1)"),
        ),
        float(
            "data.weight_ratio",
            *weight_ratio,
            (1.0, INCL),
            (MAX_FLOAT, INCL),
            (
                "weights",
                "largest / smallest component share, falling geometrically from the first component to the last; the total stays K × points_per_mode",
            ),
        ),
        float(
            "data.std_ratio",
            *std_ratio,
            (1.0, INCL),
            (MAX_FLOAT, INCL),
            (
                "σ ratio",
                "per-mode σ growing geometrically from std (first component) to std × std_ratio (last)",
            ),
        ),
        float(
            "data.holdout",
            *holdout,
            (0.0, INCL),
            (0.9, INCL),
            (
                "holdout",
                "share of the points held out of training (chosen at random from the seed); heldout_mse measures them",
            ),
        ),
        text(
            "data.path",
            path,
            "a .npy, .npz or .csv file of shape (points, dimensions), relative to the scenario file, or \"\" for none",
            (
                "data file",
                "data file used in place of the mixture (f32 or f64; a .csv may have a header); data.modes, data.points_per_mode and data.dim then come from the file (classes, rows per class, columns)",
            ),
        ),
        text(
            "data.array",
            array,
            "an array name in the data.path .npz file, or \"\" for its only one",
            ("array", "array of an .npz data file"),
        ),
        text(
            "data.labels",
            labels,
            "a .npy, .npz or .csv file of one integer per row of data.path, relative to the scenario file, or \"\" for none",
            (
                "labels",
                "class of each row of the data file; the class means are the modes of modes_hit, mode_entropy, token_mode_entropy and gen_mode*, which are NaN without labels",
            ),
        ),
        boolean(
            "data.standardize",
            *standardize,
            (
                "standardized",
                "z-score each column of the data file (population σ; constant columns only centred)",
            ),
        ),
        int(
            "model.latent_dim",
            *latent_dim,
            1,
            1024,
            Cap::None,
            ("m", "encoder output / code dimension m"),
        ),
        int("model.width", *width, 1, 4096, Cap::None, ("width", "units per hidden layer")),
        int(
            "model.depth",
            *depth,
            0,
            16,
            Cap::None,
            ("depth", "hidden layers per network (0 = linear)"),
        ),
        choice(
            "model.activation",
            activation,
            &["relu", "tanh", "gelu"],
            ("act", "hidden activation (gelu is the exact, erf-based one)"),
        ),
        choice(
            "model.kind",
            model_kind,
            &["mlp", "identity"],
            (
                "model",
                "MLP encoder and decoder, or both the identity (the paper's §4.2 model: needs latent_dim = dim, width/depth/activation left at their defaults)",
            ),
        ),
        int(
            "quantizer.codebook_size",
            *codebook_size,
            2,
            65_536,
            Cap::DataPoints,
            ("S", "codes S"),
        ),
        choice(
            "quantizer.update",
            update,
            &["loss", "ema"],
            (
                "update",
                "codebook learned by the codebook loss (own Adam) or by exponential moving averages (van den Oord et al. 2017, appendix)",
            ),
        ),
        float(
            "quantizer.beta",
            *beta,
            (0.0, INCL),
            (MAX_FLOAT, INCL),
            ("β", "commitment weight β"),
        ),
        float(
            "quantizer.ema_decay",
            *ema_decay,
            (0.0, INCL),
            (1.0, EXCL),
            ("decay", "EMA decay γ (update = \"ema\")"),
        ),
        choice(
            "quantizer.init",
            init,
            &["uniform", "normal", "kmeans"],
            (
                "init",
                "codebook init: ±1/S, N(0, init_std²), or k-means on the current encoder outputs",
            ),
        ),
        float(
            "quantizer.init_std",
            *init_std,
            (0.0, EXCL),
            (MAX_FLOAT, INCL),
            ("init σ", "σ of init = \"normal\""),
        ),
        choice(
            "quantizer.restart",
            restart,
            &["none", "threshold", "lru", "kmeans"],
            (
                "restart",
                "dead-code restart: none; threshold = codes whose usage EMA falls below restart_threshold move to random encoder outputs of the batch (Dhariwal et al. 2020, Jukebox; Zeghidour et al. 2021, SoundStream); lru = codes unused for lru_timeout steps move to random batch outputs plus jitter (Huh et al. 2023); kmeans = k-means re-init of the codebook on recent encoder outputs every kmeans_every epochs (Łańcucki et al. 2020)",
            ),
        ),
        float(
            "quantizer.restart_threshold",
            *restart_threshold,
            (0.0, EXCL),
            (MAX_FLOAT, INCL),
            (
                "restart threshold",
                "restart = \"threshold\": usage EMA (points per step) below which a code restarts (Jukebox: 1)",
            ),
        ),
        float(
            "quantizer.restart_decay",
            *restart_decay,
            (0.0, INCL),
            (1.0, EXCL),
            (
                "usage decay",
                "restart = \"threshold\": decay of the usage EMA (Jukebox: 0.99)",
            ),
        ),
        int(
            "quantizer.lru_timeout",
            *lru_timeout,
            1,
            1_000_000_000,
            Cap::None,
            (
                "LRU timeout",
                "restart = \"lru\": steps without use before a code is replaced (vqtorch: 100)",
            ),
        ),
        float(
            "quantizer.lru_jitter",
            *lru_jitter,
            (0.0, INCL),
            (MAX_FLOAT, INCL),
            (
                "LRU jitter",
                "restart = \"lru\": Gaussian jitter of a replacement, relative to its norm (vqtorch: 1e-4)",
            ),
        ),
        int(
            "quantizer.kmeans_every",
            *kmeans_every,
            1,
            100_000,
            Cap::None,
            (
                "k-means every",
                "restart = \"kmeans\": epochs between re-initialisations (on the last 4096 encoder outputs)",
            ),
        ),
        choice(
            "quantizer.estimator",
            estimator,
            &["ste", "rotation", "ibq"],
            (
                "estimator",
                "gradient through the quantizer: ste = straight-through (van den Oord et al. 2017); rotation = the rotation trick, λR z with R rotating z onto q (Fifty et al. 2024); ibq = index backpropagation, decoder input (onehot − sg(p) + p)·E with p = softmax(−‖z − e‖²) over all codes, so z and every code get the decoder's gradient (Shi et al. 2024; its reference's logits are dot products, here squared distances so the forward pass stays the nearest code)",
            ),
        ),
        float(
            "quantizer.orthogonal_weight",
            *orthogonal_weight,
            (0.0, INCL),
            (MAX_FLOAT, INCL),
            (
                "orthogonal weight",
                "weight of the orthogonality loss Σ cos²(e_i, e_j)/S² − 1/S of the codes (Shin et al. 2023); moves codes learned by gradient (update = \"loss\"); 0 = off",
            ),
        ),
        float(
            "quantizer.entropy_weight",
            *entropy_weight,
            (0.0, INCL),
            (MAX_FLOAT, INCL),
            (
                "entropy weight",
                "weight of the code-usage entropy loss mean_i H(p_i) − H(mean_i p_i), p_i = softmax(−‖z_i − e‖/τ) (MAGVIT-v2, Yu et al. 2024); 0 = off",
            ),
        ),
        float(
            "quantizer.entropy_temperature",
            *entropy_temperature,
            (0.0, EXCL),
            (MAX_FLOAT, INCL),
            (
                "entropy τ",
                "temperature τ of the entropy loss's soft assignments (lucidrains: 0.01)",
            ),
        ),
        choice(
            "quantizer.distance",
            distance,
            &["l2", "cosine"],
            (
                "distance",
                "assignment distance: l2 = Euclidean; cosine = inputs and codes l2-normalised for the assignment, the losses and the decoder's input (Yu et al. 2021, ViT-VQGAN; lucidrains' use_cosine_sim)",
            ),
        ),
        int(
            "quantizer.code_dim",
            *code_dim,
            0,
            1024,
            Cap::LatentDim,
            (
                "code dim",
                "lookup through learned projections z → W_in → nearest code in code_dim dims → W_out → decoder, trained by the quantizer's own Adam (Yu et al. 2021, ViT-VQGAN factorized codes: 32 of 768; lucidrains' codebook_dim); 0 = off",
            ),
        ),
        choice(
            "quantizer.parameterization",
            parameterization,
            &["direct", "simvq", "affine"],
            (
                "param.",
                "direct = the codes are learned; simvq = frozen basis C (the init codebook) × learned map W, W = I at start (Zhu et al. 2024); affine = raw codes scaled and shifted so their running mean/std match the inputs', momentum 0.1 (Huh et al. 2023, vqtorch); both need update = \"loss\" and restart = \"none\"",
            ),
        ),
        choice(
            "quantizer.kind",
            quantizer_kind,
            &["vq", "fsq"],
            (
                "quantizer",
                "vq = a learned codebook searched for the nearest code; fsq = finite scalar quantization, each latent dim bounded by tanh and rounded to L levels with S = L^m, straight-through, no codebook loss (Mentzer et al. 2023; lucidrains' bound); the metrics see its grid of S codes; every other quantizer key must keep its default",
            ),
        ),
        float(
            "quantizer.sync_nu",
            *sync_nu,
            (0.0, INCL),
            (MAX_FLOAT, INCL),
            (
                "sync ν",
                "synchronised update z + sg(q − z) + νq − sg(νq): the selected code also receives ν × the decoder's gradient (Huh et al. 2023; vqtorch's example: 0.2); 0 = off",
            ),
        ),
        float(
            "train.lr",
            *lr,
            (0.0, EXCL),
            (MAX_FLOAT, INCL),
            ("lr", "Adam learning rate"),
        ),
        int(
            "train.batch_size",
            *batch_size,
            1,
            MAX_TOTAL_POINTS,
            Cap::None,
            ("batch", "mini-batch size (last partial batch kept)"),
        ),
        int(
            "train.epochs",
            *epochs,
            1,
            100_000,
            Cap::None,
            (
                "epochs",
                "quantized epochs (early, deferred); further unquantized ones for continuous",
            ),
        ),
        int(
            "train.history_every",
            *history_every,
            1,
            100_000,
            Cap::None,
            (
                "history every",
                "measure the whole data set (a history.csv row) every this many epochs of each phase, and at its first and last; 1 = every epoch. The final metrics do not depend on it; larger values make sweeps faster and the dynamics curves coarser",
            ),
        ),
        choice(
            "schedule.kind",
            kind,
            &["early", "deferred", "continuous"],
            (
                "schedule",
                "quantize from step 0, or after a continuous phase (the paper's fix), or never (the plain autoencoder for continuous_epochs + epochs epochs; codebook metrics NaN)",
            ),
        ),
        int(
            "schedule.continuous_epochs",
            *continuous_epochs,
            0,
            100_000,
            Cap::None,
            (
                "cont. epochs",
                "continuous epochs before the switch (deferred; continuous trains these plus epochs)",
            ),
        ),
    ]
}

/// The rule of dotted `key`, if it is a configuration key.
pub fn rule_of(key: &str) -> Option<Rule> {
    fields(&RunConfig::default())
        .into_iter()
        .find(|f| f.key == key)
        .map(|f| f.rule)
}

/// The short figure label of dotted `key`; the key itself when it is not a configuration key.
pub fn label(key: &str) -> &str {
    fields(&RunConfig::default())
        .into_iter()
        .find(|f| f.key == key)
        .map_or(key, |f| f.label)
}

/// The configuration keys as a Markdown table (key, default, allowed, meaning): the README's
/// key table and `vqsim keys` print this, so the documentation cannot drift from the rules.
pub fn keys_markdown() -> String {
    let mut out = String::from("| key | default | allowed | meaning |\n|---|---|---|---|\n");
    for f in fields(&RunConfig::default()) {
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            f.key,
            f.value.to_toml(),
            f.rule.allowed(None),
            f.doc
        ));
    }
    out
}

/// The keys of `section`, in struct order.
pub fn section_keys(section: &str) -> Vec<&'static str> {
    fields(&RunConfig::default())
        .into_iter()
        .filter_map(|f| f.key.strip_prefix(section)?.strip_prefix('.'))
        .collect()
}

/// Number of data points in `cfg` (the file's rows when it has one), saturating rather than
/// overflowing on absurd inputs.
fn data_points(cfg: &RunConfig) -> u64 {
    match &cfg.data.file {
        Some(f) => f.data.len() as u64,
        None => (cfg.data.modes as u64).saturating_mul(cfg.data.points_per_mode as u64),
    }
}

impl Rule {
    /// The largest integer allowed, given the other keys of `cfg` when known.
    fn int_max(&self, cfg: Option<&RunConfig>) -> u64 {
        let Rule::Int { max, cap, .. } = *self else {
            return u64::MAX;
        };
        match (cap, cfg) {
            (Cap::DataPoints, Some(cfg)) => max.min(data_points(cfg)),
            (Cap::TotalPoints, Some(cfg)) => {
                max.min(MAX_TOTAL_POINTS / (cfg.data.modes.max(1) as u64))
            }
            (Cap::LatentDim, Some(cfg)) => max.min(cfg.model.latent_dim as u64),
            _ => max,
        }
    }

    /// What is allowed, as a phrase completing "allowed: …"; `cfg` supplies cross-key caps.
    pub fn allowed(&self, cfg: Option<&RunConfig>) -> String {
        match self {
            Rule::Int { min, max, cap } => {
                let head = format!("an integer ≥ {min}");
                match (cap, cfg) {
                    (Cap::DataPoints, Some(c)) if data_points(c) < *max => format!(
                        "{head} and ≤ the number of data points ({}, data.modes × data.points_per_mode)",
                        data_points(c)
                    ),
                    (Cap::DataPoints, None) => {
                        format!("{head} and ≤ {max} and ≤ the number of data points")
                    }
                    (Cap::LatentDim, Some(c)) => format!(
                        "{head} and ≤ model.latent_dim ({})",
                        self.int_max(Some(c))
                    ),
                    (Cap::LatentDim, None) => format!("{head} and ≤ model.latent_dim"),
                    (Cap::TotalPoints, _) => format!(
                        "{head} and ≤ {} (data.modes × data.points_per_mode may not exceed {MAX_TOTAL_POINTS})",
                        self.int_max(cfg)
                    ),
                    _ => format!("{head} and ≤ {max}"),
                }
            }
            Rule::Float { lo, hi } => format!(
                "a float {} {} and {} {}",
                if lo.inclusive { "≥" } else { ">" },
                lo.value,
                if hi.inclusive { "≤" } else { "<" },
                hi.value
            ),
            Rule::Choice(words) => {
                let quoted: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
                format!("one of {}", quoted.join(", "))
            }
            Rule::Text(what) => what.to_string(),
            Rule::Bool => "true or false".into(),
        }
    }

    /// What TOML type the key takes, as a phrase completing "must be …".
    pub fn expected_type(&self) -> &'static str {
        match self {
            Rule::Int { .. } => "an integer",
            Rule::Float { .. } => "a float",
            Rule::Choice(_) | Rule::Text(_) => "a string",
            Rule::Bool => "true or false",
        }
    }
}

impl Bound {
    fn admits_above(&self, x: f64) -> bool {
        if self.inclusive {
            x >= self.value
        } else {
            x > self.value
        }
    }
    fn admits_below(&self, x: f64) -> bool {
        if self.inclusive {
            x <= self.value
        } else {
            x < self.value
        }
    }
}

impl fmt::Display for FieldValue {
    /// Plain text, as in the parameter columns of runs.csv.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Int(i) => write!(f, "{i}"),
            FieldValue::Float(x) => write!(f, "{x}"),
            FieldValue::Word(w) => f.write_str(w),
            FieldValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl FieldValue {
    /// The value as a TOML literal (strings quoted, floats with a decimal point).
    pub fn to_toml(&self) -> toml::Value {
        match self {
            // Integers above i64::MAX cannot come from a file and fail validation anyway.
            FieldValue::Int(i) => toml::Value::Integer(i64::try_from(*i).unwrap_or(i64::MAX)),
            FieldValue::Float(x) => toml::Value::Float(*x),
            FieldValue::Word(w) => toml::Value::String(w.clone()),
            FieldValue::Bool(b) => toml::Value::Boolean(*b),
        }
    }
}

/// Why a raw TOML value does not fit a key's rule.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueError {
    /// Wrong TOML type: "must be {expected}, found {found}".
    Type {
        expected: &'static str,
        found: String,
    },
    /// Right type, outside the range that can be judged without the other keys.
    Range { value: String, allowed: String },
}

/// Checks a raw TOML value against `rule` and returns it normalised: an integer given for a
/// float key becomes that float (`lr = 1` means 1.0). Cross-key caps are left to `validate`.
pub fn check_value(rule: &Rule, value: &toml::Value) -> Result<toml::Value, ValueError> {
    let type_error = || ValueError::Type {
        expected: rule.expected_type(),
        found: describe(value),
    };
    match (rule, value) {
        (Rule::Int { min, max, cap }, toml::Value::Integer(i)) => {
            // A capped key's bound depends on other keys: leave all but the sign to `validate`,
            // whose message can then state the actual bound.
            let (min, max) = match cap {
                Cap::None => (*min, *max),
                _ => (0, u64::MAX),
            };
            if *i < 0 || (*i as u64) < min || (*i as u64) > max {
                return Err(ValueError::Range {
                    value: i.to_string(),
                    allowed: rule.allowed(None),
                });
            }
            Ok(value.clone())
        }
        (Rule::Float { .. }, toml::Value::Integer(i)) => Ok(toml::Value::Float(*i as f64)),
        (Rule::Float { .. }, toml::Value::Float(_)) => Ok(value.clone()),
        (Rule::Choice(words), toml::Value::String(s)) => {
            if words.contains(&s.as_str()) {
                Ok(value.clone())
            } else {
                Err(ValueError::Range {
                    value: value.to_string(),
                    allowed: rule.allowed(None),
                })
            }
        }
        (Rule::Text(_), toml::Value::String(_)) | (Rule::Bool, toml::Value::Boolean(_)) => {
            Ok(value.clone())
        }
        _ => Err(type_error()),
    }
}

/// Checks every key of a typed config against its rule, including the cross-key caps.
pub fn validate(cfg: &RunConfig) -> Result<(), RangeError> {
    for field in fields(cfg) {
        let ok = match (&field.rule, &field.value) {
            (Rule::Int { min, .. }, FieldValue::Int(i)) => {
                *i >= *min && *i <= field.rule.int_max(Some(cfg))
            }
            (Rule::Float { lo, hi }, FieldValue::Float(x)) => {
                lo.admits_above(*x) && hi.admits_below(*x)
            }
            (Rule::Choice(words), FieldValue::Word(w)) => words.contains(&w.as_str()),
            (Rule::Text(_), FieldValue::Word(_)) | (Rule::Bool, FieldValue::Bool(_)) => true,
            _ => unreachable!("`fields` pairs each rule with a value of its kind"),
        };
        if !ok {
            return Err(RangeError {
                key: field.key.to_string(),
                value: field.value.to_toml().to_string(),
                allowed: field.rule.allowed(Some(cfg)),
            });
        }
    }
    super::combine::check(cfg)
}

/// A short description of a TOML value for error messages: its type and (abridged) text.
pub fn describe(value: &toml::Value) -> String {
    let kind = match value {
        toml::Value::String(_) => "string",
        toml::Value::Integer(_) => "integer",
        toml::Value::Float(_) => "float",
        toml::Value::Boolean(_) => "boolean",
        // Display of a datetime Value shows toml's private wrapper table; show the date itself.
        toml::Value::Datetime(d) => return format!("datetime {d}"),
        toml::Value::Array(a) if a.is_empty() => return "an empty array".to_string(),
        toml::Value::Array(_) => "array",
        toml::Value::Table(_) => return "a table".to_string(),
    };
    format!("{kind} {}", abridge(&value.to_string(), 60))
}

/// `text` cut to at most `max` characters, marking the cut.
fn abridge(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let head: String = text.chars().take(max).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::config::ModelKind;

    fn with(key: &str, value: toml::Value) -> RunConfig {
        let (section, name) = key.split_once('.').unwrap();
        let mut table = toml::Value::try_from(RunConfig::default()).unwrap();
        table[section]
            .as_table_mut()
            .unwrap()
            .insert(name.into(), value);
        table.try_into().unwrap()
    }

    /// Asserts `key = value` breaks a rule of `key` (and only one of that key).
    fn rejects(key: &str, value: toml::Value) {
        let cfg = with(key, value.clone());
        let err = validate(&cfg).expect_err(&format!("{key} = {value} should be rejected"));
        assert_eq!(err.key, key);
    }

    fn accepts(key: &str, value: toml::Value) {
        let cfg = with(key, value.clone());
        assert_eq!(validate(&cfg), Ok(()), "{key} = {value} should be accepted");
    }

    use toml::Value::{Float as F, Integer as I};

    #[test]
    fn defaults_are_valid() {
        assert_eq!(validate(&RunConfig::default()), Ok(()));
    }

    #[test]
    fn identity_model_needs_latent_dim_equal_to_dim_and_default_mlp_keys() {
        let identity = |edit: fn(&mut RunConfig)| {
            let mut cfg = RunConfig::default();
            cfg.model.kind = ModelKind::Identity;
            edit(&mut cfg);
            validate(&cfg)
        };
        assert_eq!(identity(|_| {}), Ok(()));
        assert_eq!(
            identity(|c| {
                c.data.dim = 8;
                c.model.latent_dim = 8;
            }),
            Ok(())
        );
        let err = identity(|c| c.data.dim = 8).unwrap_err();
        assert_eq!(err.key, "model.latent_dim");
        assert!(err.allowed.contains("data.dim (8)"), "{}", err.allowed);
        assert_eq!(
            identity(|c| c.model.width = 8).unwrap_err().key,
            "model.width"
        );
        assert_eq!(
            identity(|c| c.model.depth = 0).unwrap_err().key,
            "model.depth"
        );
        let err = identity(|c| c.model.activation = crate::sim::config::Activation::Tanh);
        assert_eq!(err.unwrap_err().key, "model.activation");
    }

    #[test]
    fn keys_match_the_serialized_config() {
        let table = toml::Value::try_from(RunConfig::default()).unwrap();
        let mut serialized: Vec<String> = Vec::new();
        for (section, keys) in table.as_table().unwrap() {
            for key in keys.as_table().unwrap().keys() {
                serialized.push(format!("{section}.{key}"));
            }
        }
        serialized.sort();
        let mut ours: Vec<String> = fields(&RunConfig::default())
            .iter()
            .map(|f| f.key.to_string())
            .collect();
        ours.sort();
        assert_eq!(ours, serialized);
    }

    #[test]
    fn choice_words_are_the_serde_names() {
        for field in fields(&RunConfig::default()) {
            if let Rule::Choice(words) = field.rule {
                for w in words {
                    accepts(field.key, toml::Value::String(w.to_string()));
                }
                let (section, name) = field.key.split_once('.').unwrap();
                let mut table = toml::Value::try_from(RunConfig::default()).unwrap();
                table[section][name] = toml::Value::String("bogus".into());
                assert!(table.try_into::<RunConfig>().is_err());
            }
        }
    }

    #[test]
    fn modes_at_least_1_at_most_10000() {
        rejects("data.modes", I(0));
        accepts("data.modes", I(1));
        accepts("data.modes", I(10_000));
    }

    #[test]
    fn points_per_mode_at_least_1() {
        rejects("data.points_per_mode", I(0));
    }

    #[test]
    fn total_points_at_most_1e7() {
        // 10 modes × 1e6 points is the largest allowed data set.
        accepts("data.points_per_mode", I(1_000_000));
        rejects("data.points_per_mode", I(1_000_001));
    }

    #[test]
    fn dim_between_1_and_1024() {
        rejects("data.dim", I(0));
        accepts("data.dim", I(1024));
        rejects("data.dim", I(1025));
    }

    #[test]
    fn mean_range_positive_finite() {
        rejects("data.mean_range", F(0.0));
        rejects("data.mean_range", F(-1.0));
        rejects("data.mean_range", F(f64::INFINITY));
        rejects("data.mean_range", F(f64::NAN));
        accepts("data.mean_range", F(1e-3));
    }

    #[test]
    fn std_non_negative_finite() {
        accepts("data.std", F(0.0));
        rejects("data.std", F(-0.1));
        rejects("data.std", F(f64::NAN));
        rejects("data.std", F(f64::INFINITY));
    }

    #[test]
    fn latent_dim_between_1_and_1024() {
        rejects("model.latent_dim", I(0));
        accepts("model.latent_dim", I(1024));
        rejects("model.latent_dim", I(1025));
    }

    #[test]
    fn width_between_1_and_4096() {
        rejects("model.width", I(0));
        accepts("model.width", I(4096));
        rejects("model.width", I(4097));
    }

    #[test]
    fn depth_at_most_16() {
        accepts("model.depth", I(0));
        accepts("model.depth", I(16));
        rejects("model.depth", I(17));
    }

    #[test]
    fn codebook_size_at_least_2() {
        rejects("quantizer.codebook_size", I(0));
        rejects("quantizer.codebook_size", I(1));
        accepts("quantizer.codebook_size", I(2));
    }

    #[test]
    fn codebook_size_at_most_data_points() {
        let mut cfg = RunConfig::default();
        cfg.data.modes = 3;
        cfg.data.points_per_mode = 5;
        cfg.quantizer.codebook_size = 15;
        assert_eq!(validate(&cfg), Ok(()));
        cfg.quantizer.codebook_size = 16;
        let err = validate(&cfg).unwrap_err();
        assert_eq!(err.key, "quantizer.codebook_size");
        assert!(err.allowed.contains("(15,"), "{}", err.allowed);
    }

    #[test]
    fn beta_non_negative_finite() {
        accepts("quantizer.beta", F(0.0));
        rejects("quantizer.beta", F(-0.25));
        rejects("quantizer.beta", F(f64::INFINITY));
    }

    #[test]
    fn ema_decay_in_0_to_1_exclusive() {
        accepts("quantizer.ema_decay", F(0.0));
        accepts("quantizer.ema_decay", F(0.999));
        rejects("quantizer.ema_decay", F(1.0));
        rejects("quantizer.ema_decay", F(-0.1));
    }

    #[test]
    fn init_std_positive_finite() {
        rejects("quantizer.init_std", F(0.0));
        rejects("quantizer.init_std", F(f64::NAN));
        accepts("quantizer.init_std", F(0.01));
    }

    #[test]
    fn code_dim_at_most_latent_dim() {
        accepts("quantizer.code_dim", I(0));
        accepts("quantizer.code_dim", I(2));
        rejects("quantizer.code_dim", I(3));
        let mut cfg = RunConfig::default();
        cfg.model.latent_dim = 8;
        cfg.quantizer.code_dim = 8;
        assert_eq!(validate(&cfg), Ok(()));
        cfg.quantizer.code_dim = 9;
        let err = validate(&cfg).unwrap_err();
        assert!(
            err.allowed.contains("model.latent_dim (8)"),
            "{}",
            err.allowed
        );
    }

    #[test]
    fn reparameterized_codes_need_loss_updates_and_no_restart() {
        use crate::sim::config::{Parameterization, Restart, Update};
        for p in [Parameterization::Simvq, Parameterization::Affine] {
            let mut cfg = RunConfig::default();
            cfg.quantizer.parameterization = p;
            assert_eq!(validate(&cfg), Ok(()));
            cfg.quantizer.update = Update::Ema;
            let err = validate(&cfg).unwrap_err();
            assert_eq!(err.key, "quantizer.parameterization");
            assert!(
                err.allowed.contains("quantizer.update = \"ema\""),
                "{}",
                err.allowed
            );
            cfg.quantizer.update = Update::Loss;
            cfg.quantizer.restart = Restart::Lru;
            assert_eq!(
                validate(&cfg).unwrap_err().key,
                "quantizer.parameterization"
            );
        }
    }

    #[test]
    fn lr_positive_finite() {
        rejects("train.lr", F(0.0));
        rejects("train.lr", F(-1e-3));
        rejects("train.lr", F(f64::INFINITY));
        accepts("train.lr", F(1.0));
    }

    #[test]
    fn batch_size_at_least_1() {
        rejects("train.batch_size", I(0));
        accepts("train.batch_size", I(1));
    }

    #[test]
    fn epochs_at_least_1() {
        rejects("train.epochs", I(0));
        accepts("train.epochs", I(1));
    }

    #[test]
    fn continuous_epochs_non_negative() {
        accepts("schedule.continuous_epochs", I(0));
        let rule = rule_of("schedule.continuous_epochs").unwrap();
        assert!(matches!(
            check_value(&rule, &I(-1)),
            Err(ValueError::Range { .. })
        ));
    }

    #[test]
    fn raw_integers_become_floats_for_float_keys() {
        let rule = rule_of("train.lr").unwrap();
        assert_eq!(check_value(&rule, &I(1)), Ok(F(1.0)));
    }

    #[test]
    fn raw_floats_are_not_integers() {
        let rule = rule_of("model.width").unwrap();
        assert_eq!(
            check_value(&rule, &F(2.5)),
            Err(ValueError::Type {
                expected: "an integer",
                found: "float 2.5".into()
            })
        );
    }

    #[test]
    fn raw_words_must_be_listed() {
        let rule = rule_of("schedule.kind").unwrap();
        let err = check_value(&rule, &toml::Value::String("late".into())).unwrap_err();
        assert_eq!(
            err,
            ValueError::Range {
                value: "\"late\"".into(),
                allowed: "one of \"early\", \"deferred\", \"continuous\"".into()
            }
        );
    }

    #[test]
    fn section_keys_are_in_struct_order() {
        assert_eq!(
            section_keys("model"),
            ["latent_dim", "width", "depth", "activation", "kind"]
        );
    }
}

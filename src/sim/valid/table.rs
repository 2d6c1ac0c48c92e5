//! The key table: every configuration key in a fixed order, with its value, its rule, its
//! label and its doc. The typed keys are listed here; each family of remedies adds its
//! choosing key and its remedies' own keys where the family sits (`crate::sim::vq::FAMILIES`).

use crate::sim::config::key::word;
use crate::sim::config::key::{Cap, EXCL, INCL, MAX_FLOAT, MAX_TOTAL_POINTS};
use crate::sim::config::{
    DataConfig, Family, Field, FieldValue, Key, ModelConfig, Params, QuantizerConfig, Rule,
    RunConfig, ScheduleConfig, TrainConfig,
};
use crate::sim::vq;

/// The sections of a configuration, in `RunConfig` order.
pub const SECTIONS: [&str; 5] = ["data", "model", "quantizer", "train", "schedule"];

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

/// How a key is named and documented: the last two columns of every `fields` entry.
type Doc = (&'static str, &'static str);

fn int(key: &'static str, value: usize, min: u64, max: u64, cap: Cap, doc: Doc) -> Field {
    Field {
        key,
        label: doc.0,
        doc: doc.1.into(),
        // usize → u64 never loses bits on the platforms Rust supports.
        value: FieldValue::Int(value as u64),
        rule: Rule::Int { min, max, cap },
    }
}

fn float(key: &'static str, value: f64, lo: (f64, bool), hi: (f64, bool), doc: Doc) -> Field {
    Field {
        key,
        label: doc.0,
        doc: doc.1.into(),
        value: FieldValue::Float(value),
        rule: Rule::float(lo, hi),
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
        doc: doc.1.into(),
        value: FieldValue::Word(word(value)),
        rule: Rule::Choice(words),
    }
}

fn text(key: &'static str, value: &str, allowed: &'static str, doc: Doc) -> Field {
    Field {
        key,
        label: doc.0,
        doc: doc.1.into(),
        value: FieldValue::Word(value.to_string()),
        rule: Rule::Text(allowed),
    }
}

fn boolean(key: &'static str, value: bool, doc: Doc) -> Field {
    Field {
        key,
        label: doc.0,
        doc: doc.1.into(),
        value: FieldValue::Bool(value),
        rule: Rule::Bool,
    }
}

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
        lr_scale,
        beta,
        ema_decay,
        init,
        init_std,
        restart,
        estimator,
        distance,
        code_dim,
        parameterization,
        kind: quantizer_kind,
        sync_nu,
        params,
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
    let mut out = vec![
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
            "quantizer.lr_scale",
            *lr_scale,
            (0.0, EXCL),
            (MAX_FLOAT, INCL),
            (
                "codebook lr ×",
                "learning rate of the codebook's own Adam (its codes, or a parameterization's parameters) as a multiple of train.lr (Łańcucki et al. 2020 use 10); 1 = train.lr",
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
    ];
    family(&mut out, vq::RESTART, Some(restart), params);
    family(&mut out, vq::ESTIMATOR, Some(estimator), params);
    family(&mut out, vq::REGULARISER, None, params);
    out.extend([
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
    ]);
    family(
        &mut out,
        vq::PARAMETERIZATION,
        Some(parameterization),
        params,
    );
    family(&mut out, vq::KIND, Some(quantizer_kind), params);
    out.extend([
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
    ]);
    out
}

/// Appends `family`'s choosing key (with the chosen `word`) and its remedies' keys with their
/// values in `params`.
fn family(out: &mut Vec<Field>, family: &Family, word: Option<&str>, params: &Params) {
    if let (Some(key), Some(word)) = (family.key, word) {
        out.push(family.field(key, word));
    }
    for remedy in family.remedies {
        out.extend(remedy.keys.iter().map(|k| k.field(params.value(k))));
    }
}

/// Every key a remedy of the registry declares.
pub fn remedy_keys() -> impl Iterator<Item = &'static Key> {
    vq::FAMILIES
        .iter()
        .flat_map(|f| f.remedies)
        .flat_map(|r| r.keys)
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

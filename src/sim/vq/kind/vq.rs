//! `kind = "vq"`: a learned codebook searched for the nearest code (van den Oord et al. 2017);
//! everything else in the quantizer serves it. With `residual_levels` = L > 1 it is a residual
//! quantizer (`crate::sim::vq::residual`): L such codebooks, each quantizing what the previous
//! ones left.

use super::{Bottleneck, Shape};
use crate::sim::config::{Check, Key, QuantizerConfig, RangeError, Remedy};

/// Most residual levels: SoundStream's and EnCodec's 6 kbps setting (8 codebooks of 1024 codes);
/// each level costs a nearest-code search per step.
pub const MAX_LEVELS: usize = 8;

pub(in crate::sim::vq) const LEVELS: Key = Key::int(
    "quantizer.residual_levels",
    1,
    (1, MAX_LEVELS as u64),
    "levels",
    "residual VQ: L codebooks of codebook_size codes, level l quantizing the residual that levels 1..l−1 left, the decoder seeing the sum of the L codes straight-through; each level with its own codebook loss, commitment, update and init (on the residuals of the encoder outputs the levels before it leave) (Zeghidour et al. 2021, SoundStream, Algorithm 1; lucidrains' ResidualVQ, shared_codebook = False, no quantize dropout; vqsim passes the decoder's gradient once where lucidrains passes it at every level); 1 = one codebook",
);

pub(super) const REMEDY: Remedy = Remedy {
    word: "vq",
    doc: "a learned codebook searched for the nearest code",
    cite: "",
    keys: &[LEVELS],
    rules: &[levels_are_plain_vq],
};

/// The residual levels L of `q` (1: a single codebook).
pub fn levels(q: &QuantizerConfig) -> usize {
    q.params.int(&LEVELS)
}

/// The quantizer keys a residual quantizer uses; every other `quantizer.*` key keeps its
/// default under it.
const RESIDUAL_KEYS: [&str; 9] = [
    "quantizer.kind",
    "quantizer.residual_levels",
    "quantizer.codebook_size",
    "quantizer.update",
    "quantizer.lr_scale",
    "quantizer.beta",
    "quantizer.ema_decay",
    "quantizer.init",
    "quantizer.init_std",
];

/// With more than one level each level is a plain codebook: the estimator's gradient passes
/// straight through the sum of the levels once (an estimator per level is not one reference's
/// rule: lucidrains applies the rotation trick per level and so passes L times the decoder's
/// gradient), lucidrains projects outside the levels rather than per codebook (no `code_dim`
/// or cosine lookup), and restarts, parameterizations, regularisers and the synchronised
/// update are not implemented per level.
fn levels_are_plain_vq(c: &Check) -> Result<(), RangeError> {
    let l = levels(&c.cfg.quantizer);
    if l == 1 {
        return Ok(());
    }
    super::only_keys(
        c,
        &RESIDUAL_KEYS,
        &format!("when quantizer.residual_levels = {l} (the levels of a residual quantizer are plain VQ codebooks: straight-through, no restart, parameterization, projection, cosine distance, regulariser or synchronised update; set quantizer.residual_levels = 1 to use it)"),
    )
}

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Vq;

impl Bottleneck for Vq {
    fn build(_: &Shape) -> Vq {
        Vq
    }
}

//! How the codes E (S, c) are made from what is learned (`quantizer.parameterization`). The
//! rest of the quantizer sees only E and ∂L/∂E; a parameterization turns that gradient into a
//! step of its own parameters and writes the new E.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::gradient::ByGradient;
use super::Ctx;
use crate::sim::config::key::word;
use crate::sim::config::{family, Check, RangeError, Update};

family! {
    /// `quantizer.parameterization` with its parameters.
    pub(super) enum Param: Parameterize(Some("quantizer.parameterization"), "param.", "how the codes are made")
    build(&Ctx<'_>) {
        Direct(direct::Direct),
        Simvq(simvq::SimVq),
        Affine(affine::Affine),
        Running(running::Running),
    }
    fn start(self: &Self, codes: ArrayViewMut2<f32>);
    fn update(
        self: &mut Self,
        g: &mut ByGradient,
        codes: ArrayViewMut2<f32>,
        u: ArrayView2<f32>,
    );
    fn all_finite(self: &Self) -> bool;
}

/// A parameterization of the codes.
pub(super) trait Parameterize {
    /// Parameters that start at `ctx.codes`, the initial codebook: E is unchanged at step 0
    /// (unless `draws_its_codes`: then `start` writes the codes it drew).
    fn build(ctx: &Ctx) -> Self;

    /// Writes the codes the parameters make at step 0 into `codes`; a parameterization that
    /// starts from the initial codebook leaves it as it is.
    fn start(&self, _codes: ArrayViewMut2<f32>) {}

    /// One step along the codebook gradient `g.grad` = ∂L/∂E, then E rewritten. `u`, (n, c),
    /// holds the batch's inputs in the lookup space (for running statistics).
    fn update(&mut self, g: &mut ByGradient, codes: ArrayViewMut2<f32>, u: ArrayView2<f32>);

    fn all_finite(&self) -> bool {
        true
    }
}

/// Whether the parameterization `word` draws its own codes (SimVQ), so that no initial codebook
/// is fitted for it.
pub(super) fn draws_its_codes(word: &str) -> bool {
    word == simvq::REMEDY.word
}

/// The rule of SimVQ and affine codes, a map of learned parameters: only the codebook loss's
/// gradient can move them (EMA and restarts write the codes themselves, which the map would
/// undo).
fn learned_by_loss_only(c: &Check) -> Result<(), RangeError> {
    let q = &c.cfg.quantizer;
    if q.update == Update::Loss && q.restart == "none" {
        return Ok(());
    }
    Err(RangeError {
        key: "quantizer.parameterization".into(),
        value: toml::Value::String(q.parameterization.clone()).to_string(),
        allowed: format!(
            "\"direct\" with quantizer.update = {} and quantizer.restart = {} (simvq and affine codes learn only by the codebook loss: update = \"loss\", restart = \"none\")",
            toml::Value::String(word(&q.update)),
            toml::Value::String(q.restart.clone()),
        ),
    })
}

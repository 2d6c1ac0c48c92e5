//! What kind of quantizer the bottleneck is (`quantizer.kind`): a learned codebook searched
//! for the nearest code, or a kind that quantizes by itself (a fixed grid), leaving the
//! codebook, its state and its losses idle.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use crate::sim::config::{family, Check, QuantizerConfig, RangeError};

pub use vq::{levels, MAX_LEVELS};

/// What a kind's constructor sees.
pub(super) struct Shape<'a> {
    pub q: &'a QuantizerConfig,
    /// The latent dimension m.
    pub m: usize,
}

family! {
    /// `quantizer.kind` with its state.
    pub(super) enum Kind: Bottleneck(Some("quantizer.kind"), "quantizer", "the bottleneck")
    build(&Shape<'_>) {
        Vq(vq::Vq),
        Fsq(fsq::Fsq),
        Lfq(lfq::Lfq),
    }
    fn fixed(self: &Self) -> bool;
    fn grid(self: &Self, m: usize) -> Option<Array2<f32>>;
    fn embed(self: &Self, z: Array2<f32>) -> Array2<f32>;
    fn quantize(
        self: &Self,
        z: ArrayView2<f32>,
        assign: &mut [usize],
        q: ArrayViewMut2<f32>,
    ) -> bool;
    fn loss(self: &mut Self, z: ArrayView2<f32>) -> f32;
    fn backward(
        self: &Self,
        z: ArrayView2<f32>,
        g_q: ArrayView2<f32>,
        g_z: ArrayViewMut2<f32>,
    ) -> bool;
}

/// A kind of bottleneck. The defaults are the learned codebook's: the quantizer's own search,
/// losses and updates do the work.
pub(super) trait Bottleneck {
    fn build(shape: &Shape) -> Self;

    /// Whether it quantizes by itself, leaving the codebook, its state and its losses idle.
    fn fixed(&self) -> bool {
        false
    }

    /// The fixed codes, (S, m), of a kind that has no learned codebook.
    fn grid(&self, _m: usize) -> Option<Array2<f32>> {
        None
    }

    /// The encoder outputs as the metrics see them: in the space where the codes live, so
    /// that each one's nearest code is its code.
    fn embed(&self, z: Array2<f32>) -> Array2<f32> {
        z
    }

    /// Each row's code index into `assign` and what the decoder receives into `q`; false
    /// leaves the assignment to the codebook's nearest-code search.
    fn quantize(&self, _z: ArrayView2<f32>, _assign: &mut [usize], _q: ArrayViewMut2<f32>) -> bool {
        false
    }

    /// The loss of a kind that quantizes by itself on the batch `z`, keeping what `backward`
    /// needs (the codebook's losses are idle then).
    fn loss(&mut self, _z: ArrayView2<f32>) -> f32 {
        0.0
    }

    /// ∂L/∂z into `g_z` from the decoder's ∂L/∂q; false leaves it to the codebook's terms.
    fn backward(
        &self,
        _z: ArrayView2<f32>,
        _g_q: ArrayView2<f32>,
        _g_z: ArrayViewMut2<f32>,
    ) -> bool {
        false
    }
}

/// Every `quantizer.*` key but `keys` keeps its default `under` a choice (the message's "when
/// …" clause, with why).
fn only_keys(c: &Check, keys: &[&str], under: &str) -> Result<(), RangeError> {
    match c.off_default("quantizer.", keys) {
        None => Ok(()),
        Some((field, default)) => Err(RangeError {
            key: field.key.into(),
            value: field.value.to_toml().to_string(),
            allowed: format!("only its default {} {under}", default.value.to_toml()),
        }),
    }
}

/// The rule of a kind with no learned codebook, called `word`: every `quantizer.*` key but
/// `keys` keeps its default.
fn only_kind_keys(c: &Check, word: &str, keys: &[&str]) -> Result<(), RangeError> {
    let under = format!(
        "when quantizer.kind = \"{word}\" ({} has no learned codebook, codebook loss or estimator)",
        word.to_uppercase()
    );
    only_keys(c, keys, &under)
}

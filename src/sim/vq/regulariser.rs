//! Regularisers: extra loss terms on the batch and the codes, each on when its weight (its
//! first key) is above 0. They are computed in the lookup space, in registry order.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::Ctx;
use crate::sim::config::family;

family! {
    /// A regulariser with its scratch.
    pub(super) enum Regulariser: Regularise(None, "regulariser", "regularisers")
    build(&Ctx<'_>) {
        Orthogonal(orthogonal::Orthogonal),
        Entropy(entropy::Entropy),
    }
    fn loss(self: &mut Self, u: ArrayView2<f32>, codes: ArrayView2<f32>) -> f32;
    fn backward(
        self: &mut Self,
        u: ArrayView2<f32>,
        codes: ArrayView2<f32>,
        g_u: ArrayViewMut2<f32>,
        g_codes: Option<ArrayViewMut2<f32>>,
    );
}

impl Regulariser {
    /// The regularisers whose weight in `ctx` is above 0, in registry order.
    pub(super) fn chosen(ctx: &Ctx) -> Vec<Regulariser> {
        let family = &Regulariser::FAMILY;
        family
            .remedies
            .iter()
            .zip(Regulariser::BUILD)
            .filter(|(r, _)| r.keys.first().is_some_and(|w| ctx.q.params.float(w) > 0.0))
            .map(|(_, build)| build(ctx))
            .collect()
    }
}

/// A regulariser of the batch `u` (n, c) and the codes (S, c) in the lookup space.
pub(super) trait Regularise {
    /// The regulariser for the codebook of `ctx`, its scratch allocated once (or grown to the
    /// largest batch).
    fn build(ctx: &Ctx) -> Self;

    /// The loss; keeps what `backward` needs.
    fn loss(&mut self, u: ArrayView2<f32>, codes: ArrayView2<f32>) -> f32;

    /// Adds the loss's gradient to `g_u` and, when the codes learn by gradient, to `g_codes`.
    fn backward(
        &mut self,
        u: ArrayView2<f32>,
        codes: ArrayView2<f32>,
        g_u: ArrayViewMut2<f32>,
        g_codes: Option<ArrayViewMut2<f32>>,
    );
}

//! How the decoder's gradient ∂L/∂q crosses the non-differentiable assignment to reach the
//! encoder output z (`quantizer.estimator`), and with IBQ the codes too.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::Ctx;
use crate::sim::config::family;

family! {
    /// `quantizer.estimator` with its scratch.
    pub(super) enum Estimator: Estimate(Some("quantizer.estimator"), "estimator", "gradient through the quantizer")
    build(&Ctx<'_>) {
        Ste(ste::Ste),
        Rotation(rotation::Rotation),
        Ibq(ibq::Ibq),
        Gumbel(gumbel::Gumbel),
    }
    fn sample(
        self: &mut Self,
        z: ArrayView2<f32>,
        codes: ArrayView2<f32>,
        assign: &mut [usize],
    ) -> bool;
    fn backward(
        self: &mut Self,
        z: ArrayView2<f32>,
        q: ArrayView2<f32>,
        assign: &[usize],
        g_q: ArrayView2<f32>,
        g_z: ArrayViewMut2<f32>,
        codebook: (ArrayView2<f32>, Option<ArrayViewMut2<f32>>),
    );
    fn weights(self: &Self, beta: f32) -> Weights;
}

/// The weights of mean‖sg(û) − ê‖² (codebook), mean‖û − sg(ê)‖² (commitment) and IBQ's double
/// quantization term mean‖q − û‖² through the soft one-hot (whose gradient the estimator
/// carries itself) in the loss. All three share the value mean‖û − ê‖².
#[derive(Debug, Clone, Copy)]
pub(super) struct Weights {
    pub(super) codebook: f32,
    pub(super) commitment: f32,
    pub(super) double: f32,
}

/// A gradient estimator.
pub(super) trait Estimate {
    /// The estimator for the codebook of `ctx`, its scratch allocated once.
    fn build(ctx: &Ctx) -> Self;

    /// In training, after the nearest-code search: an estimator that samples its codes
    /// replaces `assign` and returns true.
    fn sample(
        &mut self,
        _z: ArrayView2<f32>,
        _codes: ArrayView2<f32>,
        _assign: &mut [usize],
    ) -> bool {
        false
    }

    /// Writes the reconstruction's gradient with respect to z into `g_z`, from `g_q`; an
    /// estimator that also moves the codes adds their gradient to `codebook`'s second half
    /// (None when the codes do not learn by gradient).
    fn backward(
        &mut self,
        z: ArrayView2<f32>,
        q: ArrayView2<f32>,
        assign: &[usize],
        g_q: ArrayView2<f32>,
        g_z: ArrayViewMut2<f32>,
        codebook: (ArrayView2<f32>, Option<ArrayViewMut2<f32>>),
    );

    /// The weights of the VQ loss's terms for commitment weight `beta`: VQ-VAE's codebook 1
    /// and commitment β, unless the estimator's reference weighs them otherwise.
    fn weights(&self, beta: f32) -> Weights {
        Weights {
            codebook: 1.0,
            commitment: beta,
            double: 0.0,
        }
    }
}

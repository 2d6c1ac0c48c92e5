//! How the decoder's gradient ∂L/∂q crosses the non-differentiable assignment to reach the
//! encoder output z (`quantizer.estimator`), and with IBQ the codes too.

mod ibq;
mod rotation;

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::sim::config::Estimator as Choice;

/// The weights of mean‖sg(û) − ê‖² (codebook), mean‖û − sg(ê)‖² (commitment) and IBQ's double
/// quantization term mean‖q − û‖² through the soft one-hot (whose gradient the estimator
/// carries itself) in the loss. All three share the value mean‖û − ê‖².
#[derive(Debug, Clone, Copy)]
pub(super) struct Weights {
    pub(super) codebook: f32,
    pub(super) commitment: f32,
    pub(super) double: f32,
}

#[derive(Debug, Clone)]
pub(super) enum Estimator {
    /// Straight-through (Bengio et al. 2013; van den Oord et al. 2017): z + sg(q − z), so
    /// ∂L/∂z = ∂L/∂q.
    Ste,
    Rotation,
    Ibq(ibq::Ibq),
}

impl Estimator {
    /// The estimator for a codebook of `s` codes of dimension `m`.
    pub(super) fn new(choice: Choice, (s, m): (usize, usize)) -> Estimator {
        match choice {
            Choice::Ste => Estimator::Ste,
            Choice::Rotation => Estimator::Rotation,
            Choice::Ibq => Estimator::Ibq(ibq::Ibq::new(s, m)),
        }
    }

    /// The weights of the VQ loss's terms for commitment weight `beta`: VQ-VAE's codebook 1 and
    /// commitment β, or IBQ's codebook β, commitment 1 and its double quantization term 1.
    pub(super) fn weights(&self, beta: f32) -> Weights {
        match self {
            Estimator::Ste | Estimator::Rotation => Weights {
                codebook: 1.0,
                commitment: beta,
                double: 0.0,
            },
            Estimator::Ibq(_) => Weights {
                codebook: beta,
                commitment: 1.0,
                double: 1.0,
            },
        }
    }

    /// Writes the reconstruction's gradient with respect to z into `g_z`, from `g_q`; an
    /// estimator that also moves the codes adds their gradient to `codebook`'s second half
    /// (None when the codes do not learn by gradient).
    pub(super) fn backward(
        &mut self,
        z: ArrayView2<f32>,
        q: ArrayView2<f32>,
        assign: &[usize],
        g_q: ArrayView2<f32>,
        mut g_z: ArrayViewMut2<f32>,
        codebook: (ArrayView2<f32>, Option<ArrayViewMut2<f32>>),
    ) {
        match self {
            Estimator::Ste => g_z.assign(&g_q),
            Estimator::Rotation => rotation::backward(z, q, g_q, g_z),
            Estimator::Ibq(ibq) => ibq.backward(z, assign, g_q, g_z, codebook),
        }
    }
}

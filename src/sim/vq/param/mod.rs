//! How the codes E (S, c) are made from what is learned (`quantizer.parameterization`). The
//! rest of the quantizer sees only E and ∂L/∂E; a parameterization turns that gradient into a
//! step of its own parameters and writes the new E.

mod affine;
mod running;
mod simvq;

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use rand_chacha::ChaCha8Rng;

use super::gradient::ByGradient;
use crate::sim::config::Parameterization as Choice;

/// vqtorch's `affine_lr` in its README and examples (its `VectorQuant` default 0 turns it off).
const AFFINE_LR: f32 = 10.0;

#[derive(Debug, Clone)]
pub(super) enum Param {
    /// The codes are the parameters.
    Direct,
    // Boxed: the direct (default) parameterization stays one word.
    Simvq(Box<simvq::SimVq>),
    Affine(Box<affine::Affine>),
    Running(Box<running::Running>),
}

impl Param {
    /// Parameters that start at `codes`, the initial codebook, learning at `lr`: E is unchanged
    /// at step 0. SimVQ draws its own initialisation from `rng` and replaces `codes` with it.
    pub(super) fn new(
        choice: Choice,
        codes: &mut Array2<f32>,
        lr: f32,
        rng: &mut ChaCha8Rng,
    ) -> Param {
        match choice {
            Choice::Direct => Param::Direct,
            Choice::Simvq => {
                let (s, c) = codes.dim();
                let (p, start) = simvq::SimVq::new(s, c, lr, rng);
                *codes = start;
                Param::Simvq(Box::new(p))
            }
            Choice::Affine => {
                Param::Affine(Box::new(affine::Affine::new(codes.view(), lr, AFFINE_LR)))
            }
            Choice::AffineRunning => {
                Param::Running(Box::new(running::Running::new(codes.view(), lr)))
            }
        }
    }

    /// Whether the codes come from the parameterization's own initialisation, not from
    /// `quantizer.init`.
    pub(super) fn draws_its_codes(choice: Choice) -> bool {
        matches!(choice, Choice::Simvq)
    }

    /// One step along the codebook gradient `g.grad` = ∂L/∂E, then E rewritten. `u`, (n, c),
    /// holds the batch's inputs in the lookup space (for running statistics).
    pub(super) fn step(
        &mut self,
        g: &mut ByGradient,
        mut codes: ArrayViewMut2<f32>,
        u: ArrayView2<f32>,
    ) {
        match self {
            Param::Direct => g.step(codes),
            Param::Simvq(p) => p.step(g.grad.view(), codes.view_mut()),
            Param::Affine(p) => p.step(g.grad.view(), codes.view_mut()),
            Param::Running(p) => p.step(g.grad.view(), codes.view_mut(), u),
        }
    }

    pub(super) fn all_finite(&self) -> bool {
        match self {
            Param::Direct => true,
            Param::Simvq(p) => p.all_finite(),
            Param::Affine(p) => p.all_finite(),
            Param::Running(p) => p.all_finite(),
        }
    }
}

//! How the codes E (S, c) are made from what is learned (`quantizer.parameterization`). The
//! rest of the quantizer sees only E and ∂L/∂E; a parameterization turns that gradient into a
//! step of its own parameters and writes the new E.

mod affine;
mod simvq;

use ndarray::{ArrayView2, ArrayViewMut2};

use super::gradient::ByGradient;
use crate::sim::config::Parameterization as Choice;

#[derive(Debug, Clone)]
pub(super) enum Param {
    /// The codes are the parameters.
    Direct,
    // Boxed: the direct (default) parameterization stays one word.
    Simvq(Box<simvq::SimVq>),
    Affine(Box<affine::Affine>),
}

impl Param {
    /// Parameters that start at `codes`, the initial codebook: E is unchanged at step 0.
    pub(super) fn new(choice: Choice, codes: ArrayView2<f32>, lr: f32) -> Param {
        match choice {
            Choice::Direct => Param::Direct,
            Choice::Simvq => Param::Simvq(Box::new(simvq::SimVq::new(codes, lr))),
            Choice::Affine => Param::Affine(Box::new(affine::Affine::new(codes, lr))),
        }
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
            Param::Affine(p) => p.step(g.grad.view(), codes.view_mut(), u),
        }
    }

    pub(super) fn all_finite(&self) -> bool {
        match self {
            Param::Direct => true,
            Param::Simvq(p) => p.all_finite(),
            Param::Affine(p) => p.all_finite(),
        }
    }
}

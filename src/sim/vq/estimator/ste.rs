//! Straight-through (Bengio et al. 2013; van den Oord et al. 2017): the decoder sees
//! z + sg(q − z), so ∂L/∂z = ∂L/∂q.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{Ctx, Estimate};
use crate::sim::config::Remedy;

pub(super) const REMEDY: Remedy = Remedy {
    word: "ste",
    doc: "straight-through",
    cite: "van den Oord et al. 2017",
    keys: &[],
    rules: &[],
};

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Ste;

impl Estimate for Ste {
    fn build(_: &Ctx) -> Ste {
        Ste
    }

    fn backward(
        &mut self,
        _z: ArrayView2<f32>,
        _q: ArrayView2<f32>,
        _assign: &[usize],
        g_q: ArrayView2<f32>,
        mut g_z: ArrayViewMut2<f32>,
        _codebook: (ArrayView2<f32>, Option<ArrayViewMut2<f32>>),
    ) {
        g_z.assign(&g_q);
    }
}

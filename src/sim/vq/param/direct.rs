//! `parameterization = "direct"`: the codes are the parameters, stepped by their own Adam.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{ByGradient, Ctx, Parameterize};
use crate::sim::config::Remedy;

pub(super) const REMEDY: Remedy = Remedy {
    word: "direct",
    doc: "the codes are learned",
    cite: "",
    keys: &[],
    rules: &[],
};

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Direct;

impl Parameterize for Direct {
    fn build(_: &Ctx) -> Direct {
        Direct
    }

    fn update(&mut self, g: &mut ByGradient, codes: ArrayViewMut2<f32>, _u: ArrayView2<f32>) {
        g.step(codes);
    }
}

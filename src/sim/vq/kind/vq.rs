//! `kind = "vq"`: a learned codebook searched for the nearest code (van den Oord et al. 2017);
//! everything else in the quantizer serves it.

use super::{Bottleneck, Shape};
use crate::sim::config::Remedy;

pub(super) const REMEDY: Remedy = Remedy {
    word: "vq",
    doc: "a learned codebook searched for the nearest code",
    cite: "",
    keys: &[],
    rules: &[],
};

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Vq;

impl Bottleneck for Vq {
    fn build(_: &Shape) -> Vq {
        Vq
    }
}

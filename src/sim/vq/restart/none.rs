//! `restart = "none"`: a code that stops being used stays where it is.

use super::{Ctx, RestartRule};
use crate::sim::config::Remedy;

pub(super) const REMEDY: Remedy = Remedy {
    word: "none",
    doc: "",
    cite: "",
    keys: &[],
    rules: &[],
};

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Off;

impl RestartRule for Off {
    fn build(_: &Ctx) -> Off {
        Off
    }
}

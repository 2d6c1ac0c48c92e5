//! `restart = "kmeans"` (Łańcucki et al. 2020, "Robust training of vector quantized bottleneck
//! models"): the encoder outputs of the most recent training steps are kept in a ring buffer,
//! and every `every` epochs the whole codebook is replaced by k-means (k-means++ seeding, then
//! Lloyd) on that buffer.

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{Ctx, RestartRule};
use crate::sim::config::{Key, Remedy};
use crate::sim::kmeans::kmeans;

const EVERY: Key = Key::int(
    "quantizer.kmeans_every",
    5,
    (1, 100_000),
    "k-means every",
    "restart = \"kmeans\": epochs between re-initialisations (on the last 4096 encoder outputs)",
);

pub(super) const REMEDY: Remedy = Remedy {
    word: "kmeans",
    doc: "k-means re-init of the codebook on recent encoder outputs every kmeans_every epochs",
    cite: "Łańcucki et al. 2020",
    keys: &[EVERY],
    rules: &[],
};

/// Encoder outputs kept for the re-initialisation: the last this many training rows.
const BUFFER: usize = 4096;

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Reinit {
    every: usize,
    /// Ring buffer of recent encoder outputs, (BUFFER, m).
    recent: Array2<f32>,
    /// Next row to overwrite.
    next: usize,
    /// Rows written so far, at most BUFFER.
    filled: usize,
}

impl Reinit {
    pub(super) fn new(m: usize, every: usize) -> Reinit {
        Reinit {
            every,
            recent: Array2::zeros((BUFFER, m)),
            next: 0,
            filled: 0,
        }
    }
}

impl RestartRule for Reinit {
    fn build(c: &Ctx) -> Reinit {
        Reinit::new(c.m, c.q.params.int(&EVERY))
    }

    fn after_step(
        &mut self,
        _codes: ArrayViewMut2<f32>,
        z: ArrayView2<f32>,
        _assign: &[usize],
        _rng: &mut ChaCha8Rng,
        _restarted: &mut Vec<usize>,
    ) {
        // Keeps the batch's encoder outputs, overwriting the oldest.
        for row in z.outer_iter() {
            self.recent.row_mut(self.next).assign(&row);
            self.next = (self.next + 1) % BUFFER;
            self.filled = (self.filled + 1).min(BUFFER);
        }
    }

    /// Re-initialises `codes` when `epoch` is a multiple of `every` and the buffer holds at
    /// least one row per code; returns whether it did.
    fn after_epoch(
        &mut self,
        epoch: usize,
        mut codes: ArrayViewMut2<f32>,
        rng: &mut ChaCha8Rng,
    ) -> bool {
        let s = codes.nrows();
        if !epoch.is_multiple_of(self.every) || self.filled < s {
            return false;
        }
        // k-means reads its RNG by clone: fork one so that each re-init draws afresh.
        let fork = ChaCha8Rng::from_rng(&mut *rng).expect("ChaCha never fails to seed");
        match kmeans(self.recent.slice(s![..self.filled, ..]), s, &fork) {
            Ok(centroids) => {
                codes.assign(&centroids);
                true
            }
            // Only degenerate buffers (fewer distinct rows than codes) fail; keep the codes.
            Err(_) => false,
        }
    }
}

//! `restart = "kmeans"` (Łańcucki et al. 2020, "Robust training of vector quantized bottleneck
//! models"): the encoder outputs of the most recent training steps are kept in a ring buffer,
//! and every `every` epochs the whole codebook is replaced by k-means (k-means++ seeding, then
//! Lloyd) on that buffer — in the first third of training only.
//!
//! The authors' code (DistSup, `VQBottleneck.reestimate` in `distsup/modules/bottlenecks.py`,
//! configurations in `egs/robustvq/yamls`) re-estimates on a reservoir sample of 20 480 recent
//! outputs and stops after `reestimate_max_epochs`: 5 of 85 epochs on WSJ, 50 of 150 on
//! ScribbleLens. The decoder then trains for the rest of the run with the codebook it will be
//! measured with. vqsim takes ScribbleLens's share, a third of the quantized epochs: a re-init
//! at the last epoch would leave the final metrics describing codes the decoder never saw.
//! DistSup also spaces its re-estimations geometrically (every 1.5× the previous iteration);
//! vqsim keeps a fixed period in epochs and a ring buffer of the last rows, not a reservoir.

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
    "restart = \"kmeans\": epochs between re-initialisations (on the last 4096 encoder outputs), in the first third of the quantized epochs only",
);

pub(super) const REMEDY: Remedy = Remedy {
    word: "kmeans",
    doc: "k-means re-init of the codebook on recent encoder outputs every kmeans_every epochs, in the first third of training only",
    cite: "Łańcucki et al. 2020; DistSup stops re-estimating after a third of the epochs or less",
    keys: &[EVERY],
    rules: &[],
};

/// Encoder outputs kept for the re-initialisation: the last this many training rows.
const BUFFER: usize = 4096;

/// Re-inits fire only up to this share of the quantized epochs (DistSup's ScribbleLens run).
const ACTIVE_SHARE: (usize, usize) = (1, 3);

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Reinit {
    every: usize,
    /// The last epoch at which a re-init may fire.
    last: usize,
    /// Ring buffer of recent encoder outputs, (BUFFER, m).
    recent: Array2<f32>,
    /// Next row to overwrite.
    next: usize,
    /// Rows written so far, at most BUFFER.
    filled: usize,
}

impl Reinit {
    /// Re-inits every `every` of the run's `epochs` quantized epochs, in the first third.
    pub(super) fn new(m: usize, every: usize, epochs: usize) -> Reinit {
        Reinit {
            every,
            last: epochs * ACTIVE_SHARE.0 / ACTIVE_SHARE.1,
            recent: Array2::zeros((BUFFER, m)),
            next: 0,
            filled: 0,
        }
    }
}

impl RestartRule for Reinit {
    fn build(c: &Ctx) -> Reinit {
        Reinit::new(c.m, c.q.params.int(&EVERY), c.epochs)
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

    /// Re-initialises `codes` when `epoch` is a multiple of `every` in the first third of
    /// training and the buffer holds at least one row per code; returns whether it did.
    fn after_epoch(
        &mut self,
        epoch: usize,
        mut codes: ArrayViewMut2<f32>,
        rng: &mut ChaCha8Rng,
    ) -> bool {
        let s = codes.nrows();
        if !epoch.is_multiple_of(self.every) || epoch > self.last || self.filled < s {
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

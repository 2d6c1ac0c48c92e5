//! `restart = "threshold"` (Dhariwal et al. 2020, Jukebox; Zeghidour et al. 2021, SoundStream;
//! `threshold_ema_dead_code` of lucidrains/vector-quantize-pytorch): each code's usage is an
//! exponential moving average of the points it receives per step; a code whose usage falls
//! below the threshold moves to a random encoder output of the batch and its usage is reset to
//! the threshold, so it has one step to win points before it is moved again.

use ndarray::{ArrayView2, ArrayViewMut2};
use rand_chacha::ChaCha8Rng;

use super::{Ctx, RestartRule};
use crate::sim::config::key::{EXCL, INCL, MAX_FLOAT};
use crate::sim::config::{Key, Remedy};

const THRESHOLD: Key = Key::float(
    "quantizer.restart_threshold",
    1.0,
    ((0.0, EXCL), (MAX_FLOAT, INCL)),
    "restart threshold",
    "restart = \"threshold\": usage EMA (points per step) below which a code restarts (Jukebox: 1)",
);
const DECAY: Key = Key::float(
    "quantizer.restart_decay",
    0.99,
    ((0.0, INCL), (1.0, EXCL)),
    "usage decay",
    "restart = \"threshold\": decay of the usage EMA (Jukebox: 0.99)",
);

pub(super) const REMEDY: Remedy = Remedy {
    word: "threshold",
    doc: "codes whose usage EMA falls below restart_threshold move to random encoder outputs of the batch",
    cite: "Dhariwal et al. 2020, Jukebox; Zeghidour et al. 2021, SoundStream",
    keys: &[THRESHOLD, DECAY],
    rules: &[],
};

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Threshold {
    threshold: f32,
    decay: f32,
    /// EMA of points per step, (S); starts at the threshold.
    usage: Vec<f32>,
    /// Scratch: this batch's points per code, (S).
    counts: Vec<f32>,
    /// Scratch for the random choice of rows.
    perm: Vec<usize>,
}

impl Threshold {
    pub(super) fn new(s: usize, threshold: f32, decay: f32, batch: usize) -> Threshold {
        Threshold {
            threshold,
            decay,
            usage: vec![threshold; s],
            counts: vec![0.0; s],
            perm: Vec::with_capacity(batch),
        }
    }
}

impl RestartRule for Threshold {
    fn build(c: &Ctx) -> Threshold {
        let p = &c.q.params;
        Threshold::new(c.s, p.float(&THRESHOLD) as f32, p.float(&DECAY) as f32, c.batch)
    }

    fn after_step(
        &mut self,
        codes: ArrayViewMut2<f32>,
        z: ArrayView2<f32>,
        assign: &[usize],
        rng: &mut ChaCha8Rng,
        restarted: &mut Vec<usize>,
    ) {
        self.counts.fill(0.0);
        for &k in assign {
            self.counts[k] += 1.0;
        }
        let g = self.decay;
        for (k, (u, &c)) in self.usage.iter_mut().zip(&self.counts).enumerate() {
            *u = g * *u + (1.0 - g) * c;
            if *u < self.threshold {
                restarted.push(k);
                *u = self.threshold;
            }
        }
        super::move_to_random_rows(codes, z, restarted, 0.0, rng, &mut self.perm);
    }
}

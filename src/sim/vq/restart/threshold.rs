//! `restart = "threshold"` (Dhariwal et al. 2020, Jukebox; Zeghidour et al. 2021, SoundStream;
//! `threshold_ema_dead_code` of lucidrains/vector-quantize-pytorch): each code's usage is an
//! exponential moving average of the points it receives per step; a code whose usage falls
//! below the threshold moves to a random encoder output of the batch and its usage is reset to
//! the threshold, so it has one step to win points before it is moved again.

use ndarray::{ArrayView2, ArrayViewMut2};
use rand_chacha::ChaCha8Rng;

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

    pub(super) fn after_step(
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

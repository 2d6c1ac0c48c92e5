//! `restart = "threshold"` (Dhariwal et al. 2020, Jukebox, `BottleneckBlock.update_k` in
//! `jukebox/vqvae/bottleneck.py`; Zeghidour et al. 2021, SoundStream): each code's usage is an
//! exponential moving average, and a code whose usage falls below the threshold moves to an
//! encoder output of the batch.
//!
//! Jukebox counts points per step against a threshold of 1 (L73–77). Its batches hold tens of
//! thousands of tokens for 2 048 codes, so 1 point is a small fraction of a code's expected
//! share. With vqsim's batch of 256, S = 1 024 codes expect 0.25 points per step, below that
//! threshold: every code would be flagged. So usage is counted in units of the expected share:
//! u_k ← g·u_k + (1 − g)·c_k·S/b for a batch of b rows (c_k: the code's points), and the
//! threshold is a share of it. Every count starts at the threshold, as Jukebox's `init_k` starts
//! every count at 1, its threshold (lucidrains' `cluster_size` likewise starts at 1): a
//! code with no point in the first full batch restarts at once. The count is normalised by b, so
//! a short last batch of an epoch keeps the average unbiased; but no code is reseeded from it
//! (restarts happen on full batches only), so a 16-row remainder cannot reseed hundreds of
//! codes.
//!
//! Candidates are Jukebox's `_tile` (L22–29): the batch's rows in random order, repeated when
//! there are fewer rows than codes, and then every candidate gets Gaussian noise of standard
//! deviation 0.01/√m. Jukebox's noise is absolute (its latents are near unit scale); here it is
//! scaled by the batch's spread, Jukebox's own `prenorm` statistic (L94:
//! ‖z − mean z‖/√(b·m)), so that it separates repeated rows at any latent scale.
//!
//! As in Jukebox, a restarted code keeps its count: it is redrawn at every full batch until a
//! batch gives it enough points to lift the count over the threshold, and each redraw counts as
//! a restart in the history. Results version 5 set a restarted code's count back to the
//! expected share and started every count there (Jukebox's `restore_k`, for resuming a trained
//! model): unused codes then waited ln(1/threshold)/(1 − g) = 139 steps before their first
//! restart, while the encoder moved away, and the rule reached perplexity 51 where
//! vector-quantize-pytorch reaches 57 (docs/remedies.md).

use ndarray::{ArrayView2, ArrayViewMut2};
use rand_chacha::ChaCha8Rng;

use super::{Ctx, Jitter, RestartRule};
use crate::sim::config::key::{EXCL, INCL, MAX_FLOAT};
use crate::sim::config::{Key, Remedy};

/// Jukebox's noise on tiled candidates, in units of the batch's spread, before the 1/√m.
const TILE_NOISE: f32 = 0.01;

const THRESHOLD: Key = Key::float(
    "quantizer.restart_threshold",
    0.25,
    ((0.0, EXCL), (MAX_FLOAT, INCL)),
    "restart threshold",
    "restart = \"threshold\": usage EMA, in units of the expected share batch_size/S points per step, below which a code restarts (0.25 = Jukebox's 1 point per step at S = 64 and batch 256; its own batches hold thousands of tokens)",
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
    doc: "codes whose usage EMA (in shares of batch/S) falls below restart_threshold move to random encoder outputs of a full batch, tiled with noise when codes outnumber rows",
    cite: "Dhariwal et al. 2020, Jukebox; Zeghidour et al. 2021, SoundStream",
    keys: &[THRESHOLD, DECAY],
    rules: &[],
};

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Threshold {
    /// In units of the expected share b/S.
    threshold: f32,
    decay: f32,
    /// Rows of a full batch: only full batches reseed codes.
    batch: usize,
    /// EMA of each code's points per step over its expected share, (S); starts at the
    /// threshold.
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
            batch,
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
        let (s, b) = (self.usage.len(), z.nrows());
        if b == 0 {
            return;
        }
        self.counts.fill(0.0);
        for &k in assign {
            self.counts[k] += 1.0;
        }
        let (g, share) = (self.decay, s as f32 / b as f32);
        let full = b >= self.batch;
        for (k, (u, &c)) in self.usage.iter_mut().zip(&self.counts).enumerate() {
            *u = g * *u + (1.0 - g) * c * share;
            if full && *u < self.threshold {
                restarted.push(k);
            }
        }
        if restarted.is_empty() {
            return;
        }
        // Jukebox tiles (with noise) when the batch has fewer rows than the codebook has codes.
        let jitter = if b < s {
            Jitter::Absolute(TILE_NOISE * prenorm(z) / (z.ncols() as f32).sqrt())
        } else {
            Jitter::None
        };
        super::move_to_random_rows(codes, z, restarted, jitter, rng, &mut self.perm);
    }
}

/// Jukebox's `prenorm`: ‖z − mean(z)‖/√(b·m), the mean taken over every entry.
fn prenorm(z: ArrayView2<f32>) -> f32 {
    let n = z.len() as f32;
    let mean = z.sum() / n;
    (z.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::SeedableRng;

    fn counts_after(
        t: &mut Threshold,
        codes: &mut Array2<f32>,
        z: &Array2<f32>,
        assign: &[usize],
    ) -> Vec<usize> {
        let mut restarted = Vec::new();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        RestartRule::after_step(t, codes.view_mut(), z.view(), assign, &mut rng, &mut restarted);
        restarted
    }

    #[test]
    fn usage_is_in_units_of_the_expected_share_and_starts_at_the_threshold() {
        // S = 8 codes, batches of 4 rows: the expected share is 0.5 points per step. Code 0
        // takes all 4 points (8 shares), the others none.
        let mut t = Threshold::new(8, 0.25, 0.5, 4);
        assert!(t.usage.iter().all(|&u| u == 0.25), "{:?}", t.usage);
        let mut codes = Array2::zeros((8, 2));
        let z = Array2::from_shape_fn((4, 2), |(i, j)| (i * 2 + j) as f32);
        let restarted = counts_after(&mut t, &mut codes, &z, &[0, 0, 0, 0]);
        assert_eq!(t.usage[0], 0.5 * 0.25 + 0.5 * 8.0);
        // The others fall from the threshold to 0.125: restarted on the first full batch.
        assert_eq!(restarted, (1..8).collect::<Vec<_>>());
        assert!(t.usage[1..].iter().all(|&u| u == 0.125), "{:?}", t.usage);
        // They keep their count, so a second batch without them redraws them all again; code 1
        // then takes one point (2 shares): 0.5·0.0625 + 0.5·2 lifts it over the threshold.
        let restarted = counts_after(&mut t, &mut codes, &z, &[0, 0, 0, 0]);
        assert_eq!(restarted, (1..8).collect::<Vec<_>>());
        let restarted = counts_after(&mut t, &mut codes, &z, &[0, 0, 0, 1]);
        assert_eq!(t.usage[1], 0.5 * 0.0625 + 0.5 * 2.0);
        assert_eq!(restarted, (2..8).collect::<Vec<_>>());
    }

    /// S = 1 024 codes, batches of 256: every code gets exactly one point every 4 steps, its
    /// expected share. Counted in points per step (0.25) against a fixed threshold every code
    /// looks dead; in shares, once the counts have settled, none is.
    #[test]
    fn usage_at_the_expected_share_is_never_flagged() {
        let mut t = Threshold::new(1024, 0.5, 0.9, 256);
        t.usage.fill(1.0);
        let mut codes = Array2::zeros((1024, 2));
        let z = Array2::zeros((256, 2));
        for step in 0..100 {
            let assign: Vec<usize> = (0..256).map(|i| (step % 4) * 256 + i).collect();
            assert!(counts_after(&mut t, &mut codes, &z, &assign).is_empty(), "step {step}");
        }
    }

    #[test]
    fn a_short_batch_counts_but_reseeds_nothing() {
        // Usage far below the threshold; a 1-row batch (full batches have 4 rows) moves the
        // averages, by 1 row's share S/1 = 8 for the code it hits, and restarts nobody.
        let mut t = Threshold::new(8, 0.25, 0.5, 4);
        t.usage.fill(0.0);
        let mut codes = Array2::zeros((8, 2));
        let z = Array2::from_elem((1, 2), 3.0f32);
        let restarted = counts_after(&mut t, &mut codes, &z, &[2]);
        assert!(restarted.is_empty());
        assert_eq!(t.usage[2], 4.0);
        assert!(codes.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn tiled_candidates_are_distinct_and_near_the_rows() {
        // 6 dead codes, a full batch of 2 rows: the rows are repeated 3 times, each copy with
        // noise of sd 0.01·prenorm/√m, so no two codes coincide and each sits by a row.
        let mut t = Threshold::new(6, 0.5, 0.0, 2);
        let mut codes = Array2::zeros((6, 2));
        let z = ndarray::array![[10.0f32, 0.0], [-10.0, 0.0]];
        let restarted = counts_after(&mut t, &mut codes, &z, &[0, 0]);
        assert_eq!(restarted, vec![1, 2, 3, 4, 5]);
        let sd = 0.01 * prenorm(z.view()) / 2f32.sqrt();
        for k in 1..6 {
            let near = z
                .outer_iter()
                .any(|r| (&r - &codes.row(k)).iter().all(|d| d.abs() < 6.0 * sd));
            assert!(near, "code {k} = {}", codes.row(k));
            for l in 1..k {
                assert_ne!(codes.row(k), codes.row(l), "codes {k} and {l}");
            }
        }
        // Some noise is there: no code is exactly a row.
        assert!((1..6).all(|k| z.outer_iter().all(|r| r != codes.row(k))));
    }
}

//! Dead-code restarts: hooks run after each training step and after each epoch that bring
//! codes which stopped being used back to where the encoder outputs are.

mod kmeans;
mod lru;
mod threshold;

use ndarray::{ArrayView2, ArrayViewMut2};
use ndarray_rand::rand_distr::StandardNormal;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::sim::config::{QuantizerConfig, Restart as Choice};

/// `quantizer.restart` with its state.
#[derive(Debug, Clone)]
pub(super) enum Restart {
    None,
    Threshold(threshold::Threshold),
    Lru(lru::Lru),
    Kmeans(kmeans::Reinit),
}

impl Restart {
    /// The rule for a codebook of `s` codes of dimension `m`, fed batches of at most `batch`
    /// rows (its scratch is sized for them, so that a step never allocates), over `epochs`
    /// quantized epochs.
    pub(super) fn new(
        cfg: &QuantizerConfig,
        s: usize,
        m: usize,
        batch: usize,
        epochs: usize,
    ) -> Restart {
        match cfg.restart {
            Choice::None => Restart::None,
            Choice::Threshold => Restart::Threshold(threshold::Threshold::new(
                s,
                cfg.restart_threshold as f32,
                cfg.restart_decay as f32,
                batch,
            )),
            Choice::Lru => Restart::Lru(lru::Lru::new(
                s,
                cfg.lru_timeout,
                cfg.lru_jitter as f32,
                batch,
            )),
            Choice::Kmeans => Restart::Kmeans(kmeans::Reinit::new(m, cfg.kmeans_every, epochs)),
        }
    }

    /// After a step on the batch `z` with assignments `assign`: moves the codes this rule
    /// declares dead and lists them in `restarted` (cleared first).
    pub(super) fn after_step(
        &mut self,
        codes: ArrayViewMut2<f32>,
        z: ArrayView2<f32>,
        assign: &[usize],
        rng: &mut ChaCha8Rng,
        restarted: &mut Vec<usize>,
    ) {
        restarted.clear();
        match self {
            Restart::None => {}
            Restart::Threshold(t) => t.after_step(codes, z, assign, rng, restarted),
            Restart::Lru(l) => l.after_step(codes, z, assign, rng, restarted),
            Restart::Kmeans(k) => k.remember(z),
        }
    }

    /// After quantized epoch `epoch` (1-based): true when the whole codebook was re-initialised.
    pub(super) fn after_epoch(
        &mut self,
        epoch: usize,
        codes: ArrayViewMut2<f32>,
        rng: &mut ChaCha8Rng,
    ) -> bool {
        match self {
            Restart::Kmeans(k) => k.after_epoch(epoch, codes, rng),
            Restart::None | Restart::Threshold(_) | Restart::Lru(_) => false,
        }
    }
}

/// The Gaussian noise added to a restarted code.
#[derive(Debug, Clone, Copy)]
enum Jitter {
    None,
    /// Standard deviation ρ·‖row‖ (vqtorch's ReplaceLRU).
    Relative(f32),
    /// This standard deviation (Jukebox's tiling).
    Absolute(f32),
}

/// Moves each code of `dead` to a different random row of `z` (rows repeat only when there are
/// more dead codes than rows), plus Gaussian `jitter`. `perm` is scratch for a partial
/// Fisher–Yates shuffle of the row indices.
fn move_to_random_rows(
    mut codes: ArrayViewMut2<f32>,
    z: ArrayView2<f32>,
    dead: &[usize],
    jitter: Jitter,
    rng: &mut ChaCha8Rng,
    perm: &mut Vec<usize>,
) {
    let n = z.nrows();
    if n == 0 {
        return;
    }
    for (i, &k) in dead.iter().enumerate() {
        // A fresh permutation for every n dead codes: distinct rows within each round.
        let j = i % n;
        if j == 0 {
            perm.clear();
            perm.extend(0..n);
        }
        let pick = rng.gen_range(j..n);
        perm.swap(j, pick);
        let row = z.row(perm[j]);
        let sd = match jitter {
            Jitter::None => 0.0,
            Jitter::Relative(rho) => rho * row.iter().map(|v| v * v).sum::<f32>().sqrt(),
            Jitter::Absolute(sd) => sd,
        };
        for (c, &v) in codes.row_mut(k).iter_mut().zip(row) {
            *c = if sd > 0.0 {
                v + sd * rng.sample::<f32, _>(StandardNormal)
            } else {
                v
            };
        }
    }
}

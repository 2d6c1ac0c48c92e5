//! Dead-code restarts: hooks run after each training step and after each epoch that bring
//! codes which stopped being used back to where the encoder outputs are.

use ndarray::{ArrayView2, ArrayViewMut2};
use ndarray_rand::rand_distr::StandardNormal;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::Ctx;
use crate::sim::config::family;

family! {
    /// `quantizer.restart` with its state.
    pub(super) enum Restart: RestartRule(Some("quantizer.restart"), "restart", "dead-code restart")
    build(&Ctx<'_>) {
        None(none::Off),
        Threshold(threshold::Threshold),
        Lru(lru::Lru),
        Kmeans(kmeans::Reinit),
        Cvq(cvq::Cvq),
    }
    fn after_step(
        self: &mut Self,
        codes: ArrayViewMut2<f32>,
        z: ArrayView2<f32>,
        assign: &[usize],
        rng: &mut ChaCha8Rng,
        restarted: &mut Vec<usize>,
    );
    fn after_epoch(
        self: &mut Self,
        epoch: usize,
        codes: ArrayViewMut2<f32>,
        rng: &mut ChaCha8Rng,
    ) -> bool;
}

/// A restart rule: hooks run after each training step and after each quantized epoch.
pub(super) trait RestartRule {
    /// The rule for the codebook of `ctx`, its scratch sized for the largest batch so that a
    /// step never allocates.
    fn build(ctx: &Ctx) -> Self;

    /// After a step on the batch `z` with assignments `assign`: moves the codes this rule
    /// declares dead and appends them to `restarted`.
    fn after_step(
        &mut self,
        _codes: ArrayViewMut2<f32>,
        _z: ArrayView2<f32>,
        _assign: &[usize],
        _rng: &mut ChaCha8Rng,
        _restarted: &mut Vec<usize>,
    ) {
    }

    /// After quantized epoch `epoch` (1-based): true when the whole codebook was
    /// re-initialised.
    fn after_epoch(
        &mut self,
        _epoch: usize,
        _codes: ArrayViewMut2<f32>,
        _rng: &mut ChaCha8Rng,
    ) -> bool {
        false
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

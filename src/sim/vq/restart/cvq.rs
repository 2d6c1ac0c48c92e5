//! `restart = "cvq"` (Zheng & Vedaldi 2023, "Online clustered codebook"; `VectorQuantiser` of
//! lyndonzheng/CVQ-VAE, `quantise.py`): no code is ever reset outright; every step, each code is
//! pulled toward an anchor taken from the batch's encoder outputs, by a weight that is ≈ 1 for
//! a code nobody uses and ≈ 0 for a code in use:
//!
//!   N̄_k ← γ N̄_k + (1 − γ)·(share of the batch assigned to k),   N̄ starting at 0,
//!   α_k = exp(−N̄_k·S·10/(1 − γ) − 10⁻³),
//!   e_k ← (1 − α_k)·e_k + α_k·a_k,
//!
//! with γ = 0.99 (the reference's fixed `decay`) and a_k the batch row closest to e_k (the
//! reference's `anchor = "closest"`, its training script's default; its other choices draw the
//! anchor at random). A code counts as restarted when α_k > ½, i.e. when it moved more than half
//! way to its anchor.

use ndarray::{ArrayView2, ArrayViewMut2};
use rand_chacha::ChaCha8Rng;

use super::{Ctx, RestartRule};
use crate::sim::config::{Check, RangeError, Remedy, Update};

pub(super) const REMEDY: Remedy = Remedy {
    word: "cvq",
    doc: "online clustered codebook: after every step each code moves toward its closest encoder output of the batch by α = exp(−10·S·N̄/(1 − γ) − 10⁻³), N̄ its running usage share (γ = 0.99), so unused codes (α ≈ 1) jump and used ones (α ≈ 0) stay; a code counts as restarted when α > ½",
    cite: "Zheng & Vedaldi 2023, CVQ-VAE quantise.py with anchor = \"closest\"; vqsim pulls after the codebook's optimizer step rather than before it, and measures closeness in the lookup space where the reference's default uses cosine",
    keys: &[],
    rules: &[gradient_codebook],
};

/// An EMA codebook recomputes each code from its statistics, undoing the pull.
fn gradient_codebook(c: &Check) -> Result<(), RangeError> {
    if c.cfg.quantizer.update != Update::Ema {
        return Ok(());
    }
    Err(RangeError {
        key: "quantizer.restart".into(),
        value: "\"cvq\"".into(),
        allowed: "another rule when quantizer.update = \"ema\" (CVQ pulls codes that learn by gradient, as in its reference; an EMA codebook would undo the pull)".into(),
    })
}

/// γ of the running average of usage (`self.decay = 0.99` in the reference).
const DECAY: f32 = 0.99;
/// The usage scale inside α (the reference's `* 10`).
const SHARPNESS: f32 = 10.0;
/// The floor of −ln α (the reference's `- 1e-3`): even an unused code keeps 0.1% of itself.
const FLOOR: f32 = 1e-3;

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Cvq {
    /// N̄: running average of each code's share of the batch, (S).
    usage: Vec<f32>,
    /// Scratch: this batch's points per code, (S).
    counts: Vec<f32>,
}

impl RestartRule for Cvq {
    fn build(c: &Ctx) -> Cvq {
        Cvq::new(c.s)
    }

    fn after_step(
        &mut self,
        codes: ArrayViewMut2<f32>,
        z: ArrayView2<f32>,
        assign: &[usize],
        _rng: &mut ChaCha8Rng,
        restarted: &mut Vec<usize>,
    ) {
        self.pull(codes, z, assign, restarted);
    }
}

impl Cvq {
    fn new(s: usize) -> Cvq {
        Cvq {
            usage: vec![0.0; s],
            counts: vec![0.0; s],
        }
    }

    /// The pull weight α of a code whose running usage is `usage`, in a codebook of `s` codes.
    fn weight(usage: f32, s: usize) -> f32 {
        (-(usage * s as f32 * SHARPNESS) / (1.0 - DECAY) - FLOOR).exp()
    }

    /// Updates the usage with the batch `z` assigned by `assign` and pulls every code toward
    /// its anchor; lists the codes pulled more than half way in `restarted`.
    fn pull(
        &mut self,
        mut codes: ArrayViewMut2<f32>,
        z: ArrayView2<f32>,
        assign: &[usize],
        restarted: &mut Vec<usize>,
    ) {
        let n = z.nrows();
        if n == 0 {
            return;
        }
        self.counts.fill(0.0);
        for &k in assign {
            self.counts[k] += 1.0;
        }
        let s = codes.nrows();
        for (k, (u, &c)) in self.usage.iter_mut().zip(&self.counts).enumerate() {
            *u = DECAY * *u + (1.0 - DECAY) * (c / n as f32);
            let alpha = Cvq::weight(*u, s);
            let mut code = codes.row_mut(k);
            // The anchor: the batch row nearest to the code (first of ties).
            let (mut best, mut at) = (f32::INFINITY, 0);
            for (i, zi) in z.outer_iter().enumerate() {
                let d: f32 = zi.iter().zip(&code).map(|(a, b)| (a - b) * (a - b)).sum();
                if d < best {
                    (best, at) = (d, i);
                }
            }
            for (e, &a) in code.iter_mut().zip(z.row(at)) {
                *e = *e * (1.0 - alpha) + a * alpha;
            }
            if alpha > 0.5 {
                restarted.push(k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn unused_codes_jump_to_their_closest_row_and_used_codes_barely_move() {
        // Two codes, a batch of 4 rows all assigned to code 0.
        let mut codes = array![[0.0_f32, 0.0], [10.0, 10.0]];
        let z = array![[1.0_f32, 0.0], [0.0, 1.0], [3.0, 3.0], [-1.0, 0.0]];
        let mut cvq = Cvq::new(2);
        let mut restarted = Vec::new();
        cvq.pull(codes.view_mut(), z.view(), &[0, 0, 0, 0], &mut restarted);
        // N̄_0 = 0.01 · 1 → α_0 = exp(−0.01·2·10/0.01 − 0.001) = exp(−20.001).
        let close = |a: f32, b: f64| (a as f64 - b).abs() <= 1e-5 * b.abs() + 1e-12;
        // Code 0's closest row is the first of the three at distance 1: row 0.
        assert!(close(codes[[0, 0]], (-20.001_f64).exp()), "{}", codes[[0, 0]]);
        assert_eq!(codes[[0, 1]], 0.0);
        // N̄_1 = 0 → α_1 = exp(−0.001); its closest row is (3, 3).
        let a1 = (-0.001_f64).exp();
        assert!(close(codes[[1, 0]], 10.0 * (1.0 - a1) + 3.0 * a1));
        assert_eq!(codes[[1, 0]], codes[[1, 1]]);
        assert_eq!(restarted, vec![1]);
        assert!((cvq.usage[0] - 0.01).abs() < 1e-7 && cvq.usage[1] == 0.0);
    }

    #[test]
    fn usage_is_a_running_average_of_the_batch_share() {
        let mut codes = array![[0.0_f32], [1.0], [2.0]];
        let z = array![[0.0_f32], [1.0], [1.0], [2.0]];
        let mut cvq = Cvq::new(3);
        let mut restarted = Vec::new();
        let assign = [0, 1, 1, 2];
        let mut expected = [0.0_f32; 3];
        for _ in 0..3 {
            restarted.clear();
            cvq.pull(codes.view_mut(), z.view(), &assign, &mut restarted);
            for (e, share) in expected.iter_mut().zip([0.25, 0.5, 0.25]) {
                *e = 0.99 * *e + (1.0 - 0.99) * share;
            }
        }
        assert_eq!(cvq.usage, expected);
        // Every code sits on a row of its own, so none moved and none restarted.
        assert_eq!(codes, array![[0.0], [1.0], [2.0]]);
        assert!(restarted.is_empty());
        // α falls from ≈ 1 to ≈ 0 as the usage reaches one share of 1/S.
        assert!(Cvq::weight(0.0, 64) > 0.99);
        assert!(Cvq::weight(1.0 / 64.0, 64) < 1e-30);
    }
}

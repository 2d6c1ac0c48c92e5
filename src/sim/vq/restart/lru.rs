//! `restart = "lru"` (Huh et al. 2023, "Straightening out the straight-through estimator";
//! vqtorch's ReplaceLRU): every code has a countdown of `timeout` steps, reset whenever the code
//! is used; a code whose countdown reaches 0 moves to a random encoder output of the batch plus
//! jitter ρ·‖z‖·N(0, I), and its countdown starts again.

use ndarray::{ArrayView2, ArrayViewMut2};
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Lru {
    timeout: usize,
    jitter: f32,
    /// Steps left before each code is replaced, (S).
    left: Vec<usize>,
    /// Scratch for the random choice of rows.
    perm: Vec<usize>,
}

impl Lru {
    pub(super) fn new(s: usize, timeout: usize, jitter: f32, batch: usize) -> Lru {
        Lru {
            timeout,
            jitter,
            left: vec![timeout; s],
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
        self.left.iter_mut().for_each(|l| *l = l.saturating_sub(1));
        for &k in assign {
            self.left[k] = self.timeout;
        }
        for (k, l) in self.left.iter_mut().enumerate() {
            if *l == 0 {
                restarted.push(k);
                *l = self.timeout;
            }
        }
        let jitter = super::Jitter::Relative(self.jitter);
        super::move_to_random_rows(codes, z, restarted, jitter, rng, &mut self.perm);
    }
}

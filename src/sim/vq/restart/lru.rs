//! `restart = "lru"` (Huh et al. 2023, "Straightening out the straight-through estimator";
//! vqtorch's ReplaceLRU, `vqtorch/nn/utils/replace.py` L53–100): every code has a countdown of
//! `timeout` steps, reset whenever the code is used; a code whose countdown reaches 0 moves to a
//! random encoder output of the batch (the shuffled batch, repeated when short) plus jitter
//! ρ·‖z‖·N(0, I), and its countdown starts again. ρ = 0.01 is what `VectorQuant(replace_freq=…)`
//! passes (`vq.py` L70); 1e-4 is only the default of the lower-level `lru_replacement` (L106).
//! The timeout 100 is that function's default (`VectorQuant` has none; its README uses 20).

use ndarray::{ArrayView2, ArrayViewMut2};
use rand_chacha::ChaCha8Rng;

use super::{Ctx, RestartRule};
use crate::sim::config::key::{INCL, MAX_FLOAT};
use crate::sim::config::{Key, Remedy};

const TIMEOUT: Key = Key::int(
    "quantizer.lru_timeout",
    100,
    (1, 1_000_000_000),
    "LRU timeout",
    "restart = \"lru\": steps without use before a code is replaced (vqtorch: 100)",
);
const JITTER: Key = Key::float(
    "quantizer.lru_jitter",
    0.01,
    ((0.0, INCL), (MAX_FLOAT, INCL)),
    "LRU jitter",
    "restart = \"lru\": Gaussian jitter of a replacement, relative to its norm (vqtorch's VectorQuant: 0.01; its lower-level lru_replacement: 1e-4)",
);

pub(super) const REMEDY: Remedy = Remedy {
    word: "lru",
    doc: "codes unused for lru_timeout steps move to random batch outputs plus jitter",
    cite: "Huh et al. 2023, vqtorch",
    keys: &[TIMEOUT, JITTER],
    rules: &[],
};

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
}

impl RestartRule for Lru {
    fn build(c: &Ctx) -> Lru {
        let p = &c.q.params;
        Lru::new(c.s, p.int(&TIMEOUT), p.float(&JITTER) as f32, c.batch)
    }

    fn after_step(
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

//! Seeded random streams. A run's randomness comes only from its seed, split into one
//! independent ChaCha stream per purpose, so adding a draw in one place (say, a new init
//! scheme) never shifts the numbers drawn elsewhere, and runs with the same seed share their
//! data across arms (paired comparisons of early vs deferred).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a stream is used for; the discriminant is the ChaCha stream number.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    Data = 1,
    Weights = 2,
    Shuffle = 3,
    Codebook = 4,
    Subsample = 5,
    Holdout = 6,
    /// The metrics' own draws (fixed seeds, the same in every run): coverage's subsets.
    Coverage = 7,
    /// The tokens of the generated set (fixed seed, the same in every run).
    Generate = 8,
    /// Dead-code restarts and codebook re-inits.
    Restart = 9,
    /// The quantizer's learned projections (`quantizer.code_dim`).
    Projection = 10,
    /// The codes an estimator samples in training (`estimator = "gumbel"`).
    Sampling = 11,
    /// The codebooks of residual levels 2..L, initialised in level order
    /// (`quantizer.residual_levels`).
    Levels = 12,
}

pub fn stream(seed: u64, purpose: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(purpose as u64);
    rng
}

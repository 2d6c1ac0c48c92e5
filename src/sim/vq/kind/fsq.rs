//! Finite scalar quantization (`quantizer.kind = "fsq"`; Mentzer et al. 2023, "Finite scalar
//! quantization: VQ-VAE made simple"; `bound` of lucidrains' `FSQ`). Each latent dimension is
//! bounded, b = tanh(z + s)·h − o with h = (L − 1)(1 + 10⁻³)/2, o = ½ for even L (else 0) and
//! s = atanh(o/h), then rounded; the decoder sees q = round(b)/⌊L/2⌋, straight-through the
//! rounding, so ∂q/∂z = h(1 − tanh²(z + s))/⌊L/2⌋. No codebook loss, no commitment. The S = L^m
//! points of the grid are the codebook the metrics see, indexed Σ_d idx_d L^d with
//! idx_d = round(b_d) + ⌊L/2⌋ in 0..L.

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Zip};

use super::{Bottleneck, Shape};
use crate::sim::config::{Check, RangeError, Remedy};

pub(super) const REMEDY: Remedy = Remedy {
    word: "fsq",
    doc: "finite scalar quantization, each latent dim bounded by tanh and rounded to L levels with S = L^m, straight-through, no codebook loss; the metrics see its grid of S codes; every other quantizer key must keep its default",
    cite: "Mentzer et al. 2023; lucidrains' bound",
    keys: &[],
    rules: &[codebook_is_a_grid, only_its_keys],
};

/// Fewest levels per latent dimension: lucidrains' FSQ refuses L = 2 with this bound (its shift
/// atanh(0.999) leaves z = 0 on the flat end of tanh, with a gradient of about 10⁻³).
pub const MIN_LEVELS: u64 = 3;

/// The levels per latent dimension L, the nearest integer to `codes`^(1/m); the grid has
/// `codes` points when L^m = `codes`, which validation requires.
fn root(codes: usize, m: usize) -> u64 {
    (codes as f64).powf(1.0 / m as f64).round() as u64
}

/// The levels per latent dimension: the integer L ≥ `MIN_LEVELS` with L^m = `codes`, if any.
pub fn levels(codes: usize, m: usize) -> Option<usize> {
    let guess = root(codes, m);
    let m = u32::try_from(m).ok()?;
    (guess >= MIN_LEVELS && guess.checked_pow(m) == Some(codes as u64)).then_some(guess as usize)
}

fn codebook_is_a_grid(c: &Check) -> Result<(), RangeError> {
    let (s, m) = (c.cfg.quantizer.codebook_size, c.cfg.model.latent_dim);
    match levels(s, m) {
        Some(_) => Ok(()),
        None => Err(RangeError {
            key: "quantizer.codebook_size".into(),
            value: s.to_string(),
            allowed: format!(
                "L^m for an integer L ≥ {MIN_LEVELS} when quantizer.kind = \"fsq\" (FSQ rounds each of the model.latent_dim = m = {m} dims to L levels)"
            ),
        }),
    }
}

/// The quantizer keys FSQ uses; every other `quantizer.*` key must keep its default under it.
const FSQ_KEYS: [&str; 2] = ["quantizer.kind", "quantizer.codebook_size"];

fn only_its_keys(c: &Check) -> Result<(), RangeError> {
    match c.off_default("quantizer.", &FSQ_KEYS) {
        None => Ok(()),
        Some((field, default)) => Err(RangeError {
            key: field.key.into(),
            value: field.value.to_toml().to_string(),
            allowed: format!(
                "only its default {} when quantizer.kind = \"fsq\" (FSQ has no learned codebook, codebook loss or estimator)",
                default.value.to_toml()
            ),
        }),
    }
}

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Fsq {
    levels: usize,
    /// h, o, s and ⌊L/2⌋ of the bound above.
    half_l: f32,
    offset: f32,
    shift: f32,
    half_width: f32,
}

impl Bottleneck for Fsq {
    fn build(shape: &Shape) -> Fsq {
        Fsq::new(root(shape.q.codebook_size, shape.m) as usize)
    }

    fn fixed(&self) -> bool {
        true
    }

    fn grid(&self, m: usize) -> Option<Array2<f32>> {
        Some(self.grid(m))
    }

    fn embed(&self, z: Array2<f32>) -> Array2<f32> {
        self.embed(z)
    }

    fn quantize(&self, z: ArrayView2<f32>, assign: &mut [usize], q: ArrayViewMut2<f32>) -> bool {
        self.quantize(z, assign, q);
        true
    }

    fn backward(&self, z: ArrayView2<f32>, g_q: ArrayView2<f32>, g_z: ArrayViewMut2<f32>) -> bool {
        self.backward(z, g_q, g_z);
        true
    }
}

impl Fsq {
    /// FSQ with `levels` levels per dimension (≥ `MIN_LEVELS`).
    pub(super) fn new(levels: usize) -> Fsq {
        let half_l = (levels - 1) as f32 * (1.0 + 1e-3) / 2.0;
        let offset = if levels.is_multiple_of(2) { 0.5 } else { 0.0 };
        Fsq {
            levels,
            half_l,
            offset,
            shift: (offset / half_l).atanh(),
            half_width: (levels / 2) as f32,
        }
    }

    /// The grid of L^m codes, (S, m), row Σ_d idx_d L^d.
    pub(super) fn grid(&self, m: usize) -> Array2<f32> {
        let s = (0..m).fold(1, |n, _| n * self.levels);
        Array2::from_shape_fn((s, m), |(k, d)| {
            let idx = k / self.levels.pow(d as u32) % self.levels;
            (idx as f32 - self.half_width) / self.half_width
        })
    }

    /// The bounded value b of one coordinate.
    fn bound(&self, z: f32) -> f32 {
        (z + self.shift).tanh() * self.half_l - self.offset
    }

    /// Each row's grid index into `assign` and its grid point into `q`. The index is clamped
    /// to 0..L, which matters only for L > 1000, where 10⁻³ of h exceeds half a level.
    pub(super) fn quantize(
        &self,
        z: ArrayView2<f32>,
        assign: &mut [usize],
        mut q: ArrayViewMut2<f32>,
    ) {
        let top = (self.levels - 1) as f32;
        for ((zi, mut qi), a) in z.outer_iter().zip(q.outer_iter_mut()).zip(assign) {
            *a = 0;
            let mut place = 1;
            for (&zd, qd) in zi.iter().zip(qi.iter_mut()) {
                // torch.round rounds halves to even.
                let idx = (self.bound(zd).round_ties_even() + self.half_width).clamp(0.0, top);
                *qd = (idx - self.half_width) / self.half_width;
                *a += idx as usize * place;
                place *= self.levels;
            }
        }
    }

    /// ∂L/∂z = ∂L/∂q · h(1 − tanh²(z + s))/⌊L/2⌋: straight-through the rounding.
    pub(super) fn backward(
        &self,
        z: ArrayView2<f32>,
        g_q: ArrayView2<f32>,
        g_z: ArrayViewMut2<f32>,
    ) {
        let scale = self.half_l / self.half_width;
        Zip::from(g_z).and(z).and(g_q).for_each(|gz, &a, &g| {
            let t = (a + self.shift).tanh();
            *gz = g * scale * (1.0 - t * t);
        });
    }

    /// The encoder outputs in the grid's units before rounding, b/⌊L/2⌋: where the metrics
    /// and snapshots look for the embeddings, so that the nearest grid point of each is its
    /// code.
    pub(super) fn embed(&self, mut z: Array2<f32>) -> Array2<f32> {
        z.map_inplace(|a| *a = self.bound(*a) / self.half_width);
        z
    }
}

#[cfg(test)]
mod tests {
    use super::levels;

    #[test]
    fn levels_are_the_integer_root_of_at_least_3() {
        assert_eq!(levels(64, 2), Some(8));
        assert_eq!(levels(1024, 2), Some(32));
        assert_eq!(levels(125, 3), Some(5));
        assert_eq!(levels(48, 2), None);
        // Two levels per dim are refused, and fewer than two cannot be.
        assert_eq!(levels(4, 2), None);
        assert_eq!(levels(64, 16), None);
    }
}

//! Finite scalar quantization (`quantizer.kind = "fsq"`; Mentzer et al. 2023, "Finite scalar
//! quantization: VQ-VAE made simple"; `bound` of lucidrains' `FSQ`). Latent dimension d is
//! bounded, b = tanh(z + s)·h − o with h = (L_d − 1)(1 + 10⁻³)/2, o = ½ for even L_d (else 0)
//! and s = atanh(o/h), then rounded; the decoder sees q = round(b)/⌊L_d/2⌋, straight-through the
//! rounding, so ∂q/∂z = h(1 − tanh²(z + s))/⌊L_d/2⌋. No codebook loss, no commitment. The
//! S = Π_d L_d points of the grid are the codebook the metrics see, indexed Σ_d idx_d·B_d with
//! idx_d = round(b_d) + ⌊L_d/2⌋ in 0..L_d and B_d = Π_{e<d} L_e (the reference's `_basis`: the
//! first dimension varies fastest). The levels are `quantizer.fsq_levels`, one per dimension
//! (the paper's [8, 5, 5, 5] for 2^10 codes), or the same L = S^(1/m) for every dimension.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use super::{Bottleneck, Shape};
use crate::sim::config::{Check, Key, RangeError, Remedy};

const LEVELS: Key = Key::ints(
    "quantizer.fsq_levels",
    MIN_LEVELS,
    "FSQ levels",
    "kind = \"fsq\": levels per latent dim, e.g. [8, 5, 5, 5] for 2^10 codes (Mentzer et al. 2023, Table 1); their count is model.latent_dim and their product quantizer.codebook_size; [] = the same L = S^(1/m) in every dim",
);

pub(super) const REMEDY: Remedy = Remedy {
    word: "fsq",
    doc: "finite scalar quantization, each latent dim bounded by tanh and rounded to L levels with S = L^m, straight-through, no codebook loss; the metrics see its grid of S codes; every other quantizer key must keep its default",
    cite: "Mentzer et al. 2023; lucidrains' bound",
    keys: &[LEVELS],
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

/// The levels of `c`'s FSQ, [] when `fsq_levels` is not set.
fn given(c: &Check) -> Vec<usize> {
    c.cfg.quantizer.params.ints(&LEVELS)
}

fn codebook_is_a_grid(c: &Check) -> Result<(), RangeError> {
    let (s, m) = (c.cfg.quantizer.codebook_size, c.cfg.model.latent_dim);
    let levels = given(c);
    let err = |key: &str, value: String, allowed: String| {
        Err(RangeError {
            key: key.into(),
            value,
            allowed,
        })
    };
    if levels.is_empty() {
        return match self::levels(s, m) {
            Some(_) => Ok(()),
            None => err(
                "quantizer.codebook_size",
                s.to_string(),
                format!(
                    "L^m for an integer L ≥ {MIN_LEVELS} when quantizer.kind = \"fsq\" and quantizer.fsq_levels = [] (FSQ rounds each of the model.latent_dim = m = {m} dims to L levels)"
                ),
            ),
        };
    }
    let shown = format!("{levels:?}");
    if levels.len() != m {
        return err(
            "quantizer.fsq_levels",
            shown,
            format!("one level per latent dim: {m} of them, as model.latent_dim = {m}"),
        );
    }
    let product = levels.iter().try_fold(1_usize, |p, &l| p.checked_mul(l));
    if product != Some(s) {
        return err(
            "quantizer.fsq_levels",
            shown,
            format!("levels whose product is quantizer.codebook_size = {s}"),
        );
    }
    Ok(())
}

/// The quantizer keys FSQ uses; every other `quantizer.*` key must keep its default under it.
const FSQ_KEYS: [&str; 3] = [
    "quantizer.kind",
    "quantizer.codebook_size",
    "quantizer.fsq_levels",
];

fn only_its_keys(c: &Check) -> Result<(), RangeError> {
    super::only_kind_keys(c, "fsq", &FSQ_KEYS)
}

/// One latent dimension's bound: L, h, o, s and ⌊L/2⌋ of the formulas above.
#[derive(Debug, Clone)]
struct Dim {
    levels: usize,
    half_l: f32,
    offset: f32,
    shift: f32,
    half_width: f32,
    /// ∂q/∂tanh: h/⌊L/2⌋.
    scale: f32,
}

impl Dim {
    fn new(levels: usize) -> Dim {
        let half_l = (levels - 1) as f32 * (1.0 + 1e-3) / 2.0;
        let offset = if levels.is_multiple_of(2) { 0.5 } else { 0.0 };
        Dim {
            levels,
            half_l,
            offset,
            shift: (offset / half_l).atanh(),
            half_width: (levels / 2) as f32,
            scale: half_l / (levels / 2) as f32,
        }
    }

    /// The bounded value b of one coordinate.
    fn bound(&self, z: f32) -> f32 {
        (z + self.shift).tanh() * self.half_l - self.offset
    }
}

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Fsq {
    dims: Vec<Dim>,
}

impl Bottleneck for Fsq {
    fn build(shape: &Shape) -> Fsq {
        let given = shape.q.params.ints(&LEVELS);
        if given.is_empty() {
            let l = root(shape.q.codebook_size, shape.m) as usize;
            Fsq::new(&vec![l; shape.m])
        } else {
            Fsq::new(&given)
        }
    }

    fn fixed(&self) -> bool {
        true
    }

    fn grid(&self, _m: usize) -> Option<Array2<f32>> {
        Some(self.grid())
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
    /// FSQ with `levels[d]` levels in latent dimension d (each ≥ `MIN_LEVELS`).
    pub(super) fn new(levels: &[usize]) -> Fsq {
        Fsq {
            dims: levels.iter().map(|&l| Dim::new(l)).collect(),
        }
    }

    /// The grid of Π_d L_d codes, (S, m), row Σ_d idx_d·B_d.
    pub(super) fn grid(&self) -> Array2<f32> {
        let s = self.dims.iter().map(|d| d.levels).product();
        let mut grid = Array2::zeros((s, self.dims.len()));
        for (k, mut row) in grid.outer_iter_mut().enumerate() {
            let mut rest = k;
            for (x, dim) in row.iter_mut().zip(&self.dims) {
                let idx = rest % dim.levels;
                rest /= dim.levels;
                *x = (idx as f32 - dim.half_width) / dim.half_width;
            }
        }
        grid
    }

    /// Each row's grid index into `assign` and its grid point into `q`. The index is clamped
    /// to 0..L, which matters only for L > 1000, where 10⁻³ of h exceeds half a level.
    pub(super) fn quantize(
        &self,
        z: ArrayView2<f32>,
        assign: &mut [usize],
        mut q: ArrayViewMut2<f32>,
    ) {
        for ((zi, mut qi), a) in z.outer_iter().zip(q.outer_iter_mut()).zip(assign) {
            *a = 0;
            let mut place = 1;
            for ((&zd, qd), dim) in zi.iter().zip(qi.iter_mut()).zip(&self.dims) {
                let top = (dim.levels - 1) as f32;
                // torch.round rounds halves to even.
                let idx = (dim.bound(zd).round_ties_even() + dim.half_width).clamp(0.0, top);
                *qd = (idx - dim.half_width) / dim.half_width;
                *a += idx as usize * place;
                place *= dim.levels;
            }
        }
    }

    /// ∂L/∂z = ∂L/∂q · h(1 − tanh²(z + s))/⌊L/2⌋ per dimension: straight-through the rounding.
    pub(super) fn backward(
        &self,
        z: ArrayView2<f32>,
        g_q: ArrayView2<f32>,
        mut g_z: ArrayViewMut2<f32>,
    ) {
        for ((mut gz, zi), gq) in g_z.outer_iter_mut().zip(z.outer_iter()).zip(g_q.outer_iter()) {
            for (((gz, &a), &g), dim) in gz.iter_mut().zip(&zi).zip(&gq).zip(&self.dims) {
                let t = (a + dim.shift).tanh();
                *gz = g * dim.scale * (1.0 - t * t);
            }
        }
    }

    /// The encoder outputs in the grid's units before rounding, b/⌊L/2⌋: where the metrics
    /// and snapshots look for the embeddings, so that the nearest grid point of each is its
    /// code.
    pub(super) fn embed(&self, mut z: Array2<f32>) -> Array2<f32> {
        for mut row in z.outer_iter_mut() {
            for (a, dim) in row.iter_mut().zip(&self.dims) {
                *a = dim.bound(*a) / dim.half_width;
            }
        }
        z
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

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

    #[test]
    fn mixed_levels_index_the_first_dimension_fastest() {
        // Levels [3, 4]: dim 0 in {−1, 0, 1} (⌊3/2⌋ = 1), dim 1 in {−1, −½, 0, ½} (⌊4/2⌋ = 2).
        let f = Fsq::new(&[3, 4]);
        let grid = f.grid();
        assert_eq!(grid.dim(), (12, 2));
        assert_eq!(grid.row(0), array![-1.0, -1.0]);
        assert_eq!(grid.row(1), array![0.0, -1.0]);
        assert_eq!(grid.row(3), array![-1.0, -0.5]);
        assert_eq!(grid.row(11), array![1.0, 0.5]);
        // Large inputs saturate at each dimension's ends; 0 sits on idx 1 (L = 3) and, with the
        // even-L offset, on idx 2 (L = 4).
        let z = array![[50.0, 50.0], [-50.0, -50.0], [0.0, 0.0]];
        let mut assign = [0; 3];
        let mut q = Array2::zeros((3, 2));
        f.quantize(z.view(), &mut assign, q.view_mut());
        assert_eq!(assign, [11, 0, 1 + 2 * 3]);
        for (qi, &k) in q.outer_iter().zip(&assign) {
            assert_eq!(qi, grid.row(k));
        }
    }

    #[test]
    fn equal_levels_match_the_single_level_grid() {
        // The built-in defaults' L = S^(1/m) is the per-dimension rule with every L equal.
        let f = Fsq::new(&[8, 8]);
        let grid = f.grid();
        for (k, row) in grid.outer_iter().enumerate() {
            assert_eq!(row[0], ((k % 8) as f32 - 4.0) / 4.0);
            assert_eq!(row[1], ((k / 8) as f32 - 4.0) / 4.0);
        }
    }

    #[test]
    fn mixed_levels_backward_matches_finite_differences_of_the_bound() {
        let f = Fsq::new(&[8, 5, 3]);
        let z = array![[0.3, -0.7, 1.2], [-1.5, 0.1, -0.2]];
        let g_q = array![[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]];
        let mut g_z = Array2::zeros((2, 3));
        f.backward(z.view(), g_q.view(), g_z.view_mut());
        // The straight-through q is b/⌊L/2⌋ as far as the gradient is concerned.
        let h = 1e-3_f64;
        for i in 0..2 {
            for d in 0..3 {
                let at = |dz: f64| {
                    let mut zz = z.clone();
                    zz[[i, d]] += dz as f32;
                    f.embed(zz)[[i, d]] as f64
                };
                let numeric = g_q[[i, d]] as f64 * (at(h) - at(-h)) / (2.0 * h);
                let analytic = g_z[[i, d]] as f64;
                assert!(
                    (numeric - analytic).abs() < 1e-2 * numeric.abs().max(1e-2),
                    "z[{i},{d}]: {analytic} vs {numeric}"
                );
            }
        }
    }
}

//! Lookup-free quantization (`quantizer.kind = "lfq"`; Yu et al. 2024, MAGVIT-v2, "Language
//! model beats diffusion"; lucidrains' `LFQ`, `lookup_free_quantization.py`). Each latent
//! dimension is quantized to its sign, q_d = +1 if z_d > 0 else −1, straight-through, so the
//! implicit codebook is the 2^m corners of the cube, code k having +1 in dimension d when bit
//! m−1−d of k is set (the reference's `mask`: the first dimension is the most significant bit).
//! Its loss is the reference's entropy penalty on soft assignments to all 2^m codes,
//! p_ij = softmax_j(2 z_i·c_j/τ) (−distance·inv_temperature with distance = −2 z·c):
//!
//!   L = w·(mean_i H(p_i) − γ·H(mean_i p_i)) + β_c·mean‖z − sg(q)‖²,
//!
//! with H(p) = −Σ p ln max(p, 10⁻⁵) (the reference's clamped log), and the reference's defaults
//! w = 0.1 (`entropy_loss_weight`), γ = 1 (`diversity_gamma`), τ = 1/100 (`inv_temperature`),
//! β_c = 0 (`commitment_loss_weight`), each a key. No codebook is learned. vqsim leaves out the
//! reference's options that change the method (projections, several codebooks, a codebook
//! scale, spherical codes, a fraction of the batch for the per-sample entropy).

use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use super::{Bottleneck, Shape};
use crate::sim::config::key::{EXCL, INCL, MAX_FLOAT};
use crate::sim::config::{Check, Key, RangeError, Remedy};

const ENTROPY: Key = Key::float(
    "quantizer.lfq_entropy_weight",
    0.1,
    ((0.0, INCL), (MAX_FLOAT, INCL)),
    "LFQ entropy weight",
    "kind = \"lfq\": weight w of its entropy penalty (lucidrains' entropy_loss_weight: 0.1)",
);
const DIVERSITY: Key = Key::float(
    "quantizer.lfq_diversity",
    1.0,
    ((0.0, INCL), (MAX_FLOAT, INCL)),
    "LFQ diversity",
    "kind = \"lfq\": weight γ of the batch entropy inside the penalty (lucidrains' diversity_gamma: 1)",
);
const TEMPERATURE: Key = Key::float(
    "quantizer.lfq_temperature",
    0.01,
    ((0.0, EXCL), (MAX_FLOAT, INCL)),
    "LFQ τ",
    "kind = \"lfq\": temperature τ of the soft assignments softmax(2z·c/τ) (lucidrains' 1/inv_temperature: 0.01)",
);
const COMMITMENT: Key = Key::float(
    "quantizer.lfq_commitment",
    0.0,
    ((0.0, INCL), (MAX_FLOAT, INCL)),
    "LFQ commitment",
    "kind = \"lfq\": weight of its commitment loss mean‖z − sg(q)‖² (lucidrains' commitment_loss_weight: 0)",
);

pub(super) const REMEDY: Remedy = Remedy {
    word: "lfq",
    doc: "lookup-free quantization, each latent dim quantized to its sign (2^m codes), straight-through, with an entropy penalty w·(mean per-sample entropy − γ·batch entropy) of softmax(2z·c/τ) over the codes; no learned codebook; every other quantizer key must keep its default",
    cite: "Yu et al. 2024, MAGVIT-v2; lucidrains' LFQ and its defaults, without projections or several codebooks",
    keys: &[ENTROPY, DIVERSITY, TEMPERATURE, COMMITMENT],
    rules: &[codebook_is_the_cube, only_its_keys],
};

fn codebook_is_the_cube(c: &Check) -> Result<(), RangeError> {
    let (s, m) = (c.cfg.quantizer.codebook_size, c.cfg.model.latent_dim);
    let corners = u32::try_from(m).ok().and_then(|m| 1_usize.checked_shl(m));
    if corners == Some(s) {
        return Ok(());
    }
    Err(RangeError {
        key: "quantizer.codebook_size".into(),
        value: s.to_string(),
        allowed: format!(
            "2^m when quantizer.kind = \"lfq\" (LFQ's codes are the signs of the model.latent_dim = m = {m} dims)"
        ),
    })
}

/// The quantizer keys LFQ uses; every other `quantizer.*` key must keep its default under it.
const LFQ_KEYS: [&str; 6] = [
    "quantizer.kind",
    "quantizer.codebook_size",
    "quantizer.lfq_entropy_weight",
    "quantizer.lfq_diversity",
    "quantizer.lfq_temperature",
    "quantizer.lfq_commitment",
];

fn only_its_keys(c: &Check) -> Result<(), RangeError> {
    super::only_kind_keys(c, "lfq", &LFQ_KEYS)
}

/// The clamp of the entropy's log (the reference's `log(t, eps = 1e-5)`).
const EPS: f32 = 1e-5;

/// The weights of the loss.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LfqWeights {
    /// w: weight of the entropy penalty.
    entropy: f32,
    /// γ: weight of the batch entropy against the per-sample entropy.
    diversity: f32,
    /// τ: temperature of the soft assignments.
    temperature: f32,
    /// β_c: weight of the commitment loss.
    commitment: f32,
}

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Lfq {
    weights: LfqWeights,
    /// The 2^m codes, (S, m).
    codes: Array2<f32>,
    /// Soft assignments of the last forward, (n, S) row-major; grows to the largest batch.
    p: Vec<f32>,
    /// ∂H/∂p̄_j of the batch entropy, (S).
    b: Vec<f32>,
}

impl Bottleneck for Lfq {
    fn build(shape: &Shape) -> Lfq {
        let p = &shape.q.params;
        let weights = LfqWeights {
            entropy: p.float(&ENTROPY) as f32,
            diversity: p.float(&DIVERSITY) as f32,
            temperature: p.float(&TEMPERATURE) as f32,
            commitment: p.float(&COMMITMENT) as f32,
        };
        Lfq::new(shape.m, weights)
    }

    fn fixed(&self) -> bool {
        true
    }

    fn grid(&self, _m: usize) -> Option<Array2<f32>> {
        Some(self.codes.clone())
    }

    fn quantize(&self, z: ArrayView2<f32>, assign: &mut [usize], q: ArrayViewMut2<f32>) -> bool {
        self.quantize(z, assign, q);
        true
    }

    fn loss(&mut self, z: ArrayView2<f32>) -> f32 {
        self.loss(z)
    }

    fn backward(&self, z: ArrayView2<f32>, g_q: ArrayView2<f32>, g_z: ArrayViewMut2<f32>) -> bool {
        self.backward(z, g_q, g_z);
        true
    }
}

/// The sign LFQ quantizes a coordinate to (0 → −1, as `torch.where(x > 0, 1, −1)`).
fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else {
        -1.0
    }
}

/// ∂(−p ln max(p, ε))/∂p: the clamp stops the gradient of the log below ε, as torch's does.
fn entropy_slope(p: f32) -> f32 {
    if p > EPS {
        -(p.ln() + 1.0)
    } else {
        -EPS.ln()
    }
}

/// −Σ p ln max(p, ε).
fn entropy(p: &[f32]) -> f32 {
    -p.iter().map(|&x| x * x.max(EPS).ln()).sum::<f32>()
}

impl Lfq {
    /// LFQ over `m` latent dimensions (2^m codes).
    fn new(m: usize, weights: LfqWeights) -> Lfq {
        let s = 1 << m;
        Lfq {
            weights,
            codes: Array2::from_shape_fn((s, m), |(k, d)| {
                if k >> (m - 1 - d) & 1 == 1 {
                    1.0
                } else {
                    -1.0
                }
            }),
            p: Vec::new(),
            b: vec![0.0; s],
        }
    }

    /// Each row's code index into `assign` and its signs into `q`.
    fn quantize(
        &self,
        z: ArrayView2<f32>,
        assign: &mut [usize],
        mut q: ArrayViewMut2<f32>,
    ) {
        for ((zi, mut qi), a) in z.outer_iter().zip(q.outer_iter_mut()).zip(assign) {
            *a = 0;
            for (&zd, qd) in zi.iter().zip(qi.iter_mut()) {
                *qd = sign(zd);
                *a = 2 * *a + usize::from(zd > 0.0);
            }
        }
    }

    /// The loss of the batch `z`; keeps the soft assignments for `backward`.
    fn loss(&mut self, z: ArrayView2<f32>) -> f32 {
        let (n, s) = (z.nrows(), self.codes.nrows());
        let scale = 2.0 / self.weights.temperature;
        self.p.resize(n * s, 0.0);
        // p̄ accumulates in `b`, which then becomes ∂H/∂p̄.
        self.b.fill(0.0);
        let mut per_sample = 0.0;
        for (zi, p) in z.outer_iter().zip(self.p.chunks_exact_mut(s)) {
            for (pj, cj) in p.iter_mut().zip(self.codes.outer_iter()) {
                *pj = scale * zi.dot(&cj);
            }
            let max = p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0;
            for pj in p.iter_mut() {
                *pj = (*pj - max).exp();
                sum += *pj;
            }
            for (pj, m) in p.iter_mut().zip(self.b.iter_mut()) {
                *pj /= sum;
                *m += *pj / n as f32;
            }
            per_sample += entropy(p) / n as f32;
        }
        let batch = entropy(&self.b);
        self.b.iter_mut().for_each(|m| *m = entropy_slope(*m));
        let commit = if self.weights.commitment > 0.0 {
            let sq: f32 = z.iter().map(|&a| (a - sign(a)) * (a - sign(a))).sum();
            self.weights.commitment * sq / z.len() as f32
        } else {
            0.0
        };
        self.weights.entropy * (per_sample - self.weights.diversity * batch) + commit
    }

    /// ∂L/∂z into `g_z`: the decoder's `g_q` straight through the sign, plus the entropy's and
    /// the commitment's gradients. With c_ij = (w/n)(∂H/∂p_ij − γ ∂H/∂p̄_j),
    /// ∂L/∂l_ik = p_ik(c_ik − Σ_j p_ij c_ij) and ∂l_ik/∂z_i = (2/τ)·c_k.
    fn backward(
        &self,
        z: ArrayView2<f32>,
        g_q: ArrayView2<f32>,
        mut g_z: ArrayViewMut2<f32>,
    ) {
        let (n, s) = (z.nrows(), self.codes.nrows());
        let w = self.weights.entropy / n as f32;
        let scale = 2.0 / self.weights.temperature;
        let commit = 2.0 * self.weights.commitment / z.len() as f32;
        for (i, p) in self.p.chunks_exact(s).take(n).enumerate() {
            let c = |j: usize| w * (entropy_slope(p[j]) - self.weights.diversity * self.b[j]);
            let mean_c: f32 = (0..s).map(|j| p[j] * c(j)).sum();
            let mut gi = g_z.row_mut(i);
            gi.assign(&g_q.row(i));
            for (k, ck) in self.codes.outer_iter().enumerate() {
                let g_logit = scale * p[k] * (c(k) - mean_c);
                if g_logit != 0.0 {
                    gi.scaled_add(g_logit, &ck);
                }
            }
            if commit > 0.0 {
                for (g, &a) in gi.iter_mut().zip(z.row(i)) {
                    *g += commit * (a - sign(a));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// The keys' defaults: the reference's.
    fn reference() -> LfqWeights {
        let shape = Shape {
            q: &Default::default(),
            m: 1,
        };
        Lfq::build(&shape).weights
    }

    #[test]
    fn the_defaults_are_the_references() {
        let w = reference();
        assert_eq!((w.entropy, w.diversity, w.temperature, w.commitment), (0.1, 1.0, 0.01, 0.0));
    }

    #[test]
    fn codes_are_signs_with_the_first_dimension_most_significant() {
        let lfq = Lfq::new(3, reference());
        let z = array![[0.5, -0.1, 2.0], [-1.0, 0.0, -3.0], [1.0, 1.0, 1.0]];
        let mut assign = [0; 3];
        let mut q = Array2::zeros((3, 3));
        lfq.quantize(z.view(), &mut assign, q.view_mut());
        // 0 is not > 0: −1, as `torch.where(x > 0, 1, −1)`.
        assert_eq!(assign, [0b101, 0b000, 0b111]);
        assert_eq!(q, array![[1.0, -1.0, 1.0], [-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]);
        for (qi, &k) in q.outer_iter().zip(&assign) {
            assert_eq!(qi, lfq.codes.row(k));
        }
    }

    #[test]
    fn a_batch_spread_evenly_over_confident_codes_has_the_lowest_loss() {
        // Four points, one per corner, far from the boundaries: per-sample entropy 0, batch
        // entropy ln 4, so L = −0.1·ln 4.
        let mut lfq = Lfq::new(2, reference());
        let z = array![[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]];
        let loss = lfq.loss(z.view());
        assert!((loss + 0.1 * 4f32.ln()).abs() < 1e-5, "{loss}");
    }

    #[test]
    fn backward_matches_finite_differences() {
        // A temperature at which the soft assignments are far from one-hot, a commitment
        // weight, and points near the boundaries: every term contributes.
        let weights = LfqWeights {
            entropy: 0.7,
            diversity: 0.8,
            temperature: 2.0,
            commitment: 0.3,
        };
        let mut lfq = Lfq::new(3, weights);
        let z = array![
            [0.3, -0.2, 0.05],
            [-0.4, 0.6, -0.1],
            [0.2, 0.1, -0.7],
            [-0.05, -0.3, 0.4]
        ];
        let g_q = array![
            [0.5, -1.0, 0.2],
            [0.1, 0.3, -0.4],
            [-0.6, 0.2, 0.9],
            [0.3, 0.7, -0.2]
        ];
        lfq.loss(z.view());
        let mut g_z = Array2::zeros((4, 3));
        lfq.backward(z.view(), g_q.view(), g_z.view_mut());
        // The straight-through part Σ g_q ⊙ z plus the loss.
        let total = |zz: &Array2<f32>| {
            let mut l = lfq.clone();
            let st: f64 = zz.iter().zip(&g_q).map(|(a, b)| (a * b) as f64).sum();
            // The commitment's target q = sign(z) stays put for small steps off the boundary.
            st + l.loss(zz.view()) as f64
        };
        let h = 1e-3;
        for i in 0..4 {
            for d in 0..3 {
                let at = |dz: f32| {
                    let mut zz = z.clone();
                    zz[[i, d]] += dz;
                    total(&zz)
                };
                let numeric = (at(h) - at(-h)) / (2.0 * h as f64);
                let analytic = g_z[[i, d]] as f64;
                assert!(
                    (numeric - analytic).abs() < 1e-2 * numeric.abs().max(0.1),
                    "z[{i},{d}]: {analytic} vs {numeric}"
                );
                // The entropy's share is not negligible next to the straight-through part.
                assert!((analytic - g_q[[i, d]] as f64).abs() > 1e-3);
            }
        }
    }

    #[test]
    fn the_clamped_log_stops_the_gradient_below_its_floor() {
        assert_eq!(entropy_slope(1e-7), -(1e-5_f32).ln());
        assert_eq!(entropy(&[1e-7, 1.0]), -(1e-7 * (1e-5_f32).ln()));
    }
}

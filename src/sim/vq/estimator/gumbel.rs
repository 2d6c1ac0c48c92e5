//! Straight-through Gumbel-softmax (`quantizer.estimator = "gumbel"`; Jang et al. 2017,
//! "Categorical reparameterization with Gumbel-softmax", §2.2; the relaxation of the DALL-E
//! dVAE, Ramesh et al. 2021). In training the code is sampled rather than the nearest one:
//! with logits l_j = −‖z − e_j‖ (lucidrains' `-cdist`, its distance clamped at 10⁻⁸ before the
//! root) and Gumbel noise g_j = −ln(−ln u_j), u_j ~ U(0, 1),
//!
//!   y = softmax((l + g)/τ),   k = argmax_j y_j,   q = Σ_j (onehot_j − sg(y_j) + y_j) e_j,
//!
//! so the decoder sees the sampled code e_k and its gradient g flows through the soft sample:
//! a_j = g·e_j, ∂L/∂l_j = y_j(a_j − Σ_i y_i a_i)/τ, ∂l_j/∂z = −(z − e_j)/‖z − e_j‖ = −∂l_j/∂e_j,
//! and the sampled code also receives g itself. No straight-through term reaches z: z acts
//! only through the logits. τ follows DALL-E's cosine annealing from `start` to `end` over
//! `steps` training steps, then stays at `end`. Outside training (the metrics) the code is
//! argmax l, the nearest code.
//!
//! Where vqsim differs: DALL-E's logits come from the encoder itself (no codebook distances) and
//! its loss adds a KL term to a uniform prior; here the logits are lucidrains' distances and the
//! loss keeps vqsim's codebook and commitment terms, toward the sampled code. lucidrains adds
//! the noise to l/τ (so τ sets how random the sample is) and takes the soft part without noise;
//! its `VectorQuantize` then overwrites the output with the plain straight-through estimator,
//! so the soft gradient never reaches z. vqsim follows Jang et al. and DALL-E: noise before τ,
//! the gradient through the noisy soft sample.

use ndarray::{ArrayView2, ArrayViewMut2};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{Ctx, Estimate};
use crate::sim::nearest::PointsByDim;
use crate::sim::vq::rows::{by_len, dot, fixed, fixed_mut, in_registers, sq_dists};
use crate::sim::config::key::{EXCL, INCL, MAX_FLOAT};
use crate::sim::config::{Check, Distance, Key, RangeError, Remedy};
use crate::sim::rng::{stream, Stream};

const START: Key = Key::float(
    "quantizer.gumbel_temperature",
    1.0,
    ((0.0, EXCL), (MAX_FLOAT, INCL)),
    "Gumbel τ",
    "estimator = \"gumbel\": temperature τ of the relaxation at the first quantized step (DALL-E: 1)",
);
const END: Key = Key::float(
    "quantizer.gumbel_temperature_end",
    0.0625,
    ((0.0, EXCL), (MAX_FLOAT, INCL)),
    "Gumbel final τ",
    "estimator = \"gumbel\": temperature τ after the annealing (DALL-E: 1/16)",
);
const STEPS: Key = Key::int(
    "quantizer.gumbel_anneal_steps",
    1000,
    (0, 1_000_000_000),
    "Gumbel annealing steps",
    "estimator = \"gumbel\": training steps over which τ falls from gumbel_temperature to gumbel_temperature_end along a cosine (DALL-E: 150 000 of its updates; a default run here has 1 200); 0 = gumbel_temperature_end throughout",
);

pub(super) const REMEDY: Remedy = Remedy {
    word: "gumbel",
    doc: "straight-through Gumbel-softmax: in training the code is sampled, argmax of (−‖z − e‖ + Gumbel noise)/τ, the decoder sees it, and its gradient flows through the soft sample softmax((−‖z − e‖ + noise)/τ) to z and every code; τ annealed along a cosine; the metrics take the nearest code",
    cite: "Jang et al. 2017; Ramesh et al. 2021, DALL-E (τ 1 → 1/16, cosine); logits as lucidrains' gumbel_sample; vqsim keeps its codebook and commitment losses where DALL-E has a KL term",
    keys: &[START, END, STEPS],
    rules: &[latent_lookup],
};

/// The samples are drawn among the codes as the latent space sees them.
fn latent_lookup(c: &Check) -> Result<(), RangeError> {
    let q = &c.cfg.quantizer;
    let (key, value, default) = if q.distance != Distance::L2 {
        ("quantizer.distance", "\"cosine\"".to_string(), "\"l2\"")
    } else if q.code_dim != 0 {
        ("quantizer.code_dim", q.code_dim.to_string(), "0")
    } else {
        return Ok(());
    };
    Err(RangeError {
        key: key.into(),
        value,
        allowed: format!(
            "only {default} when quantizer.estimator = \"gumbel\" (it samples among the codes in the latent space)"
        ),
    })
}

/// The clamp of the squared distance before its root (lucidrains' `cdist(eps = 1e-8)`).
const EPS: f32 = 1e-8;

/// τ's cosine annealing: `start` at step 0, `end` from step `steps` on.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Anneal {
    start: f32,
    end: f32,
    steps: usize,
}

impl Anneal {
    /// τ at training step `t` (0-based).
    fn temperature(&self, t: usize) -> f32 {
        if t >= self.steps {
            return self.end;
        }
        let phase = std::f32::consts::PI * t as f32 / self.steps as f32;
        self.end + (self.start - self.end) * 0.5 * (1.0 + phase.cos())
    }
}

#[derive(Debug, Clone)]
pub(in crate::sim::vq) struct Gumbel {
    anneal: Anneal,
    /// Training steps taken: the annealing's clock.
    step: usize,
    /// The noise's own stream.
    rng: ChaCha8Rng,
    /// The soft samples y of the last training forward, (n, S) row-major; grows to the largest
    /// batch.
    y: Vec<f32>,
    /// One row's a_j = g·e_j, (S).
    a: Vec<f32>,
    /// The batch's squared distances to the codes, (n, S) row-major.
    d2: Vec<f32>,
    /// The codes by dimension, for the distances.
    by_dim: PointsByDim,
    /// One row's ∂L/∂z, (m).
    out: Vec<f32>,
}

/// ‖z − e‖ from its square, with the reference's clamp.
fn distance(sq: f32) -> f32 {
    sq.max(EPS).sqrt()
}

/// One row's part of the soft sample's gradient: −γ_j(z − e_j)/d_j into `out` (∂L/∂z, from 0)
/// and +γ_j(z − e_j)/d_j into code j's gradient, γ_j = y_j(a_j − ā)/τ, skipping the pairs
/// inside the clamp.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // one row's slices and its two scalars
fn pull<const M: usize>(
    zi: &[f32],
    codes: &[f32],
    d2: &[f32],
    y: &[f32],
    a: &[f32],
    (mean_a, tau): (f32, f32),
    out: &mut [f32],
    mut grad: Option<&mut [f32]>,
) {
    let zs = fixed::<M>(zi);
    let m = zs.len();
    out.fill(0.0);
    in_registers::<M>(out, |out| {
        let pairs = y.iter().zip(a).zip(codes.chunks_exact(m)).zip(d2);
        for (j, (((yj, aj), ej), &sq)) in pairs.enumerate() {
            if sq <= EPS {
                continue; // the clamp: no gradient through the distance
            }
            // ∂L/∂l_j · ∂l_j/∂z = −γ_j (z − e_j)/d_j.
            let c = yj * (aj - mean_a) / (tau * sq.sqrt());
            let ej = fixed::<M>(ej);
            for ((o, &a), &b) in out.iter_mut().zip(zs).zip(ej) {
                *o -= c * (a - b);
            }
            if let Some(grad) = grad.as_deref_mut() {
                for ((g, &a), &b) in fixed_mut::<M>(&mut grad[j * m..]).iter_mut().zip(zs).zip(ej) {
                    *g += c * (a - b);
                }
            }
        }
    });
}

impl Estimate for Gumbel {
    fn build(c: &Ctx) -> Gumbel {
        let p = &c.q.params;
        let anneal = Anneal {
            start: p.float(&START) as f32,
            end: p.float(&END) as f32,
            steps: p.int(&STEPS),
        };
        Gumbel::new(anneal, c.s, stream(c.seed, Stream::Sampling))
    }

    fn sample(
        &mut self,
        z: ArrayView2<f32>,
        codes: ArrayView2<f32>,
        assign: &mut [usize],
    ) -> bool {
        self.draw(z, codes, assign);
        true
    }

    /// The gradient of the batch `sample` drew last; then the temperature moves on a step.
    fn backward(
        &mut self,
        z: ArrayView2<f32>,
        _q: ArrayView2<f32>,
        assign: &[usize],
        g_q: ArrayView2<f32>,
        g_z: ArrayViewMut2<f32>,
        codebook: (ArrayView2<f32>, Option<ArrayViewMut2<f32>>),
    ) {
        self.soft_backward(z, assign, g_q, g_z, codebook);
        self.step += 1;
    }
}

impl Gumbel {
    fn new(anneal: Anneal, s: usize, rng: ChaCha8Rng) -> Gumbel {
        Gumbel {
            anneal,
            step: 0,
            rng,
            y: Vec::new(),
            a: vec![0.0; s],
            d2: Vec::new(),
            by_dim: PointsByDim::default(),
            out: Vec::new(),
        }
    }

    fn temperature(&self) -> f32 {
        self.anneal.temperature(self.step)
    }

    /// Samples each row's code of `codes` (S, c) into `assign` and keeps the soft samples.
    fn draw(
        &mut self,
        z: ArrayView2<f32>,
        codes: ArrayView2<f32>,
        assign: &mut [usize],
    ) {
        let (n, s) = (z.nrows(), codes.nrows());
        let tau = self.temperature();
        self.y.resize(n * s, 0.0);
        sq_dists(z, codes, &mut self.by_dim, &mut self.d2);
        let rows = self.y.chunks_exact_mut(s).zip(self.d2.chunks_exact(s));
        for ((y, d2), k) in rows.zip(assign) {
            let mut max = f32::NEG_INFINITY;
            for (j, (yj, &sq)) in y.iter_mut().zip(d2).enumerate() {
                // u in (0, 1]: ln never sees 0 (the reference clamps at 10⁻²⁰ instead).
                let u = 1.0 - self.rng.gen::<f32>();
                let g = -(-u.ln()).max(1e-20).ln();
                *yj = (g - distance(sq)) / tau;
                if *yj > max {
                    (max, *k) = (*yj, j);
                }
            }
            let mut sum = 0.0;
            for yj in y.iter_mut() {
                *yj = (*yj - max).exp();
                sum += *yj;
            }
            y.iter_mut().for_each(|yj| *yj /= sum);
        }
    }

    /// Writes ∂L/∂z into `g_z` and adds ∂L/∂codes to `grad` (when the codes learn by gradient),
    /// for the batch `draw` drew last.
    fn soft_backward(
        &mut self,
        z: ArrayView2<f32>,
        assign: &[usize],
        g_q: ArrayView2<f32>,
        mut g_z: ArrayViewMut2<f32>,
        (codes, grad): (ArrayView2<f32>, Option<ArrayViewMut2<f32>>),
    ) {
        let (s, m) = (codes.nrows(), codes.ncols());
        let tau = self.temperature();
        let e = codes.as_slice().expect("the codebook is contiguous");
        let mut grad = grad.map(|g| g.into_slice().expect("the gradient is contiguous"));
        // The distances again: the gradient is the backward's batch and codes.
        sq_dists(z, codes, &mut self.by_dim, &mut self.d2);
        self.out.resize(m, 0.0);
        let rows = assign.iter().zip(self.y.chunks_exact(s)).zip(self.d2.chunks_exact(s));
        for (i, ((&k, y), d2)) in rows.enumerate() {
            let (zi, gi) = (z.row(i), g_q.row(i));
            let gs = gi.as_slice().expect("rows are contiguous");
            for (aj, ej) in self.a.iter_mut().zip(e.chunks_exact(m)) {
                *aj = dot(gs, ej);
            }
            let mean_a: f32 = y.iter().zip(&self.a).map(|(y, a)| y * a).sum();
            let zs = zi.as_slice().expect("rows are contiguous");
            let (a, out) = (&self.a[..], &mut self.out[..]);
            let g = grad.as_deref_mut();
            by_len!(m, pull(zs, e, d2, y, a, (mean_a, tau), out, g));
            g_z.row_mut(i).iter_mut().zip(&self.out).for_each(|(o, &v)| *o = v);
            if let Some(grad) = grad.as_deref_mut() {
                for (g, &x) in grad[k * m..(k + 1) * m].iter_mut().zip(gs) {
                    *g += x;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::nearest::sq_dist;
    use crate::sim::vq::rows::tests::{bits, mixed};
    use ndarray::{array, Array2, ArrayView1};
    use rand::SeedableRng;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(7)
    }

    #[test]
    fn the_temperature_follows_a_cosine_from_start_to_end() {
        let a = Anneal {
            start: 1.0,
            end: 1.0 / 16.0,
            steps: 100,
        };
        assert_eq!(a.temperature(0), 1.0);
        assert!((a.temperature(50) - (1.0 + 1.0 / 16.0) / 2.0).abs() < 1e-6);
        assert!((a.temperature(25) - (0.0625 + 0.9375 * 0.5 * (1.0 + 0.5_f32.sqrt()))).abs() < 1e-6);
        assert_eq!(a.temperature(100), 0.0625);
        assert_eq!(a.temperature(10_000), 0.0625);
        let none = Anneal { steps: 0, ..a };
        assert_eq!(none.temperature(0), 0.0625);
    }

    #[test]
    fn samples_follow_the_softmax_of_the_negative_distances() {
        // Two codes at distances 1 and 2 from every point: P(code 0) = e^-1/(e^-1 + e^-2),
        // whatever τ (the noise is added before dividing by τ).
        let codes = array![[1.0_f32, 0.0], [0.0, 2.0]];
        let n = 20_000;
        let z = Array2::<f32>::zeros((n, 2));
        let mut assign = vec![0; n];
        let expected = 1.0 / (1.0 + (-1.0_f64).exp());
        for tau in [1.0, 0.1] {
            let mut g = Gumbel::new(Anneal { start: tau, end: tau, steps: 0 }, 2, rng());
            g.draw(z.view(), codes.view(), &mut assign);
            let share = assign.iter().filter(|&&k| k == 0).count() as f64 / n as f64;
            // 4 standard errors of a binomial share.
            let se = (expected * (1.0 - expected) / n as f64).sqrt();
            assert!((share - expected).abs() < 4.0 * se, "τ = {tau}: {share} vs {expected}");
        }
    }

    #[test]
    fn backward_matches_finite_differences_of_the_soft_sample() {
        let codes = array![[0.5_f32, -0.2], [-0.7, 0.4], [0.1, 0.9], [1.2, 0.3]];
        let z = array![[0.2_f32, 0.1], [-0.3, 0.5], [0.8, -0.4]];
        let g_q = array![[1.0_f32, -0.5], [0.3, 0.8], [-0.6, 0.2]];
        let tau = 0.7;
        let mut g = Gumbel::new(Anneal { start: tau, end: tau, steps: 0 }, 4, rng());
        let mut assign = vec![0; 3];
        g.draw(z.view(), codes.view(), &mut assign);
        // Recover the noise each row drew from its soft sample: l_j + g_j = τ ln y_j + const.
        let y0 = g.y.clone();
        let mut g_z = Array2::zeros((3, 2));
        let mut grad = Array2::zeros((4, 2));
        g.soft_backward(
            z.view(),
            &assign,
            g_q.view(),
            g_z.view_mut(),
            (codes.view(), Some(grad.view_mut())),
        );
        // L(z, E) = Σ_i g_q,i · Σ_j (onehot_ij − sg(y⁰_ij) + y_ij(z, E)) e_j with the noise fixed;
        // y_ij(z, E) = softmax_j((l_ij(z, E) + n_ij)/τ), n_ij = τ ln y⁰_ij − l⁰_ij.
        let noise = Array2::from_shape_fn((3, 4), |(i, j)| {
            let l0 = -distance(sq_dist(z.row(i).as_slice().unwrap(), codes.row(j).as_slice().unwrap()));
            tau * y0[i * 4 + j].ln() - l0
        });
        let loss = |z: &Array2<f32>, e: &Array2<f32>| -> f64 {
            let mut total = 0.0;
            for i in 0..3 {
                let l: Vec<f64> = (0..4)
                    .map(|j| {
                        let d = distance(sq_dist(z.row(i).as_slice().unwrap(), e.row(j).as_slice().unwrap()));
                        ((-d + noise[[i, j]]) / tau) as f64
                    })
                    .collect();
                let max = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = l.iter().map(|v| (v - max).exp()).sum();
                for j in 0..4 {
                    let y = (l[j] - max).exp() / sum;
                    let w = if j == assign[i] { 1.0 } else { 0.0 } - y0[i * 4 + j] as f64 + y;
                    let ge: f64 = (0..2).map(|d| (g_q[[i, d]] * e[[j, d]]) as f64).sum();
                    total += w * ge;
                }
            }
            total
        };
        let h = 1e-3;
        let close = |what: String, analytic: f32, numeric: f64| {
            assert!(
                (numeric - analytic as f64).abs() < 1e-2 * numeric.abs().max(0.05),
                "{what}: {analytic} vs {numeric}"
            );
        };
        for i in 0..3 {
            for d in 0..2 {
                let at = |dz: f32| {
                    let mut zz = z.clone();
                    zz[[i, d]] += dz;
                    loss(&zz, &codes)
                };
                close(format!("z[{i},{d}]"), g_z[[i, d]], (at(h) - at(-h)) / (2.0 * h as f64));
            }
        }
        for j in 0..4 {
            for d in 0..2 {
                let at = |de: f32| {
                    let mut e = codes.clone();
                    e[[j, d]] += de;
                    loss(&z, &e)
                };
                close(format!("E[{j},{d}]"), grad[[j, d]], (at(h) - at(-h)) / (2.0 * h as f64));
            }
        }
    }

    /// The draw and the backward pair by pair on ndarray's rows with iterator sums: the loops
    /// the kernels replaced, which the finite-difference check (at m = 2) holds to the gradient.
    fn by_rows(
        (tau, mut rng): (f32, ChaCha8Rng),
        z: &Array2<f32>,
        g_q: &Array2<f32>,
        codes: &Array2<f32>,
        grad: &mut Array2<f32>,
    ) -> (Vec<usize>, Array2<f32>) {
        let (n, s) = (z.nrows(), codes.nrows());
        let mut assign = vec![0; n];
        let mut y = Array2::<f32>::zeros((n, s));
        let sq = |zi: ArrayView1<f32>, ej: ArrayView1<f32>| -> f32 {
            zi.iter().zip(ej).map(|(a, b)| (a - b) * (a - b)).sum()
        };
        for (i, zi) in z.outer_iter().enumerate() {
            let mut max = f32::NEG_INFINITY;
            for (j, ej) in codes.outer_iter().enumerate() {
                let u = 1.0 - rng.gen::<f32>();
                let g = -(-u.ln()).max(1e-20).ln();
                y[[i, j]] = (g - sq(zi, ej).max(EPS).sqrt()) / tau;
                if y[[i, j]] > max {
                    (max, assign[i]) = (y[[i, j]], j);
                }
            }
            let mut row = y.row_mut(i);
            let mut sum = 0.0;
            for yj in row.iter_mut() {
                *yj = (*yj - max).exp();
                sum += *yj;
            }
            row.iter_mut().for_each(|yj| *yj /= sum);
        }
        let mut g_z = Array2::zeros(z.raw_dim());
        for (i, zi) in z.outer_iter().enumerate() {
            let gi = g_q.row(i);
            let a: Vec<f32> = codes.outer_iter().map(|ej| gi.dot(&ej)).collect();
            let mean_a: f32 = y.row(i).iter().zip(&a).map(|(y, a)| y * a).sum();
            for (j, ej) in codes.outer_iter().enumerate() {
                let d2 = sq(zi, ej);
                if d2 <= EPS {
                    continue;
                }
                let c = y[[i, j]] * (a[j] - mean_a) / (tau * d2.sqrt());
                for d in 0..zi.len() {
                    g_z[[i, d]] -= c * (zi[d] - ej[d]);
                    grad[[j, d]] += c * (zi[d] - ej[d]);
                }
            }
            grad.row_mut(assign[i]).scaled_add(1.0, &gi);
        }
        (assign, g_z)
    }

    #[test]
    fn draw_and_backward_are_the_pairwise_rows_bit_for_bit() {
        let mut data = ChaCha8Rng::seed_from_u64(8);
        let tau = 0.6;
        for m in [1, 2, 3, 4, 6] {
            let mut g = Gumbel::new(Anneal { start: tau, end: tau, steps: 0 }, 25, rng());
            let mut oracle_rng = rng();
            for n in [9, 16, 5] {
                let z = mixed(&mut data, n, m);
                let mut codes = mixed(&mut data, 25, m);
                // A code on a point: the clamp's pair, which takes no gradient.
                let row = z.row(0).to_owned();
                codes.row_mut(3).assign(&row);
                let g_q = mixed(&mut data, n, m);
                let mut want_grad = Array2::from_elem((25, m), 0.5f32);
                let state = (tau, oracle_rng.clone());
                let (want_assign, want) = by_rows(state, &z, &g_q, &codes, &mut want_grad);
                // The oracle's stream moves on as the estimator's does.
                for _ in 0..n * 25 {
                    oracle_rng.gen::<f32>();
                }
                let mut assign = vec![0; n];
                g.draw(z.view(), codes.view(), &mut assign);
                let mut g_z = Array2::zeros((n, m));
                let mut grad = Array2::from_elem((25, m), 0.5f32);
                let codebook = (codes.view(), Some(grad.view_mut()));
                g.soft_backward(z.view(), &assign, g_q.view(), g_z.view_mut(), codebook);
                assert_eq!(assign, want_assign, "n {n}, m {m}");
                assert_eq!(bits(&g_z), bits(&want), "n {n}, m {m}");
                assert_eq!(bits(&grad), bits(&want_grad), "n {n}, m {m}");
            }
        }
    }

    #[test]
    fn each_backward_moves_the_temperature_on_a_step() {
        let anneal = Anneal {
            start: 1.0,
            end: 0.5,
            steps: 2,
        };
        let mut g = Gumbel::new(anneal, 1, rng());
        let (z, codes) = (array![[0.0_f32]], array![[1.0_f32]]);
        let mut assign = [0];
        assert_eq!(g.temperature(), 1.0);
        for _ in 0..2 {
            g.sample(z.view(), codes.view(), &mut assign);
            let g_z = &mut Array2::zeros((1, 1));
            g.backward(z.view(), z.view(), &assign, z.view(), g_z.view_mut(), (codes.view(), None));
        }
        assert_eq!(g.temperature(), 0.5);
    }
}

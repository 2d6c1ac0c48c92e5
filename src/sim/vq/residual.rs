//! Residual vector quantization (`quantizer.residual_levels` = L > 1; Zeghidour et al. 2021,
//! SoundStream, Algorithm 1; lucidrains' `ResidualVQ`). Level 1 quantizes r₁ = z, level l the
//! residual r_l = r_{l−1} − e_{l−1} that the levels before it left, and the decoder sees
//! q = Σ_l e_l. Each level has its own codebook of S codes (lucidrains' default
//! `shared_codebook = False`), its own codebook loss ‖sg(r_l) − e_l‖² and commitment
//! β‖r_l − sg(e_l)‖² (means over batch × dims; the levels' losses are summed, as lucidrains'
//! per-level losses are by its users) and its own update, Adam or EMA, on its own residuals.
//! No quantizer dropout (lucidrains' default `quantize_dropout = False`).
//!
//! Gradients: each residual is taken with the codes stopped, r_{l+1} = r_l − sg(e_l)
//! (lucidrains' `residual - quantized.detach()`), so ∂r_l/∂z = I and every level's commitment
//! reaches the encoder; the decoder's gradient passes straight through the sum once:
//!   ∂L/∂z = ∂L/∂q + Σ_l 2β(r_l − e_l)/(n·m).
//! The references differ here. In lucidrains each level applies its estimator to its own
//! residual, whose gradient is the identity in z, so the encoder receives L times the decoder's
//! gradient; EnCodec and DAC subtract the straight-through output instead, which passes the
//! decoder's gradient once but drops the commitment gradient of levels 2..L. vqsim keeps both
//! halves that the references agree on with the quantizer as a whole: straight-through once
//! (as one codebook would) and every level's commitment.
//!
//! Init: level l's codebook starts as one codebook does (`quantizer.init`), on the residuals
//! that the already initialised levels before it leave of the encoder outputs (for k-means: the
//! residuals of the untrained encoder in an early run). lucidrains' `kmeans_init` does the same,
//! lazily on the first batch each level sees; vqsim uses the whole training set as it does for
//! one codebook. Levels 2..L draw from the run's `Levels` stream in level order, so level 1 is
//! the single codebook's bit for bit.

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Zip};

use super::init::init_codebook;
use super::{gather, max_batch, InitError, Quantizer, Scratch};
use crate::sim::checked::ValidRun;
use crate::sim::rng::{stream, Stream};

/// Levels 2..L of a residual quantizer, and what a training step keeps of them. Level 1 is the
/// quantizer that owns this.
#[derive(Debug, Clone)]
pub(super) struct Residual {
    /// Levels 2..L, each a one-level quantizer of the residual before it.
    pub(super) levels: Vec<Quantizer>,
    /// The batch's codes e_1..e_L, (batch, m) each, as `loss` rebuilt them from the
    /// assignments for `backward`.
    codes: Vec<Array2<f32>>,
    /// The batch's residuals r_2..r_L, (batch, m) each, kept by `loss` for `backward` and
    /// `after_step`.
    inputs: Vec<Array2<f32>>,
    /// What levels 2..L receive from the decoder, (batch, m): nothing, as its gradient passes
    /// straight through the sum once, at level 1.
    zero: Array2<f32>,
    /// ∂L/∂r_l of one level, (batch, m).
    g_r: Array2<f32>,
}

impl Residual {
    /// Levels 2..L of the run `cfg` with seed `seed`: each codebook initialised on the
    /// residuals of `z` (the encoder outputs the first level was initialised on) that `first`
    /// and the levels before it leave.
    pub(super) fn init(
        cfg: &ValidRun,
        first: &Quantizer,
        z: ArrayView2<f32>,
        seed: u64,
    ) -> Result<Residual, InitError> {
        let rng = &mut stream(seed, Stream::Levels);
        let mut r = z.to_owned(); // (n, m)
        let mut e = Array2::zeros(z.raw_dim()); // (n, m)
        let mut assign = vec![0; z.nrows()];
        let mut levels: Vec<Quantizer> = Vec::new();
        for _ in 1..super::levels(&cfg.quantizer) {
            let previous = levels.last().unwrap_or(first);
            previous.quantize_all_level(r.view(), &mut assign, e.view_mut());
            r -= &e;
            let codes = init_codebook(&cfg.quantizer, r.view(), rng)?;
            levels.push(Quantizer::new_level(cfg, codes, seed));
        }
        Ok(Residual::new(cfg, levels))
    }

    /// Levels 2..L as given, with the scratch of a step of `cfg`.
    pub(super) fn new(cfg: &ValidRun, levels: Vec<Quantizer>) -> Residual {
        let shape = (max_batch(cfg), cfg.model.latent_dim);
        let count = levels.len();
        Residual {
            levels,
            codes: vec![Array2::zeros(shape); count + 1],
            inputs: vec![Array2::zeros(shape); count],
            zero: Array2::zeros(shape),
            g_r: Array2::zeros(shape),
        }
    }

    /// Levels 2..L of `Quantizer::quantize`: `q` holds level 1's codes for the rows `z`; each
    /// level quantizes the residual left so far, its assignment going to its own `z.nrows()`
    /// entries of `assign` (in level order) and its codes added to `q`.
    pub(super) fn quantize(
        &self,
        z: ArrayView2<f32>,
        assign: &mut [usize],
        mut q: ArrayViewMut2<f32>,
        scratch: &mut Scratch,
    ) {
        let (n, m) = z.dim();
        // Taken out of the scratch (no allocation) so that the levels can search with the rest.
        let (mut r, mut e) = (
            std::mem::take(&mut scratch.residual),
            std::mem::take(&mut scratch.code),
        );
        r.resize(n * m, 0.0);
        e.resize(n * m, 0.0);
        {
            let mut r = ArrayViewMut2::from_shape((n, m), &mut r[..]).expect("sized above");
            let mut e = ArrayViewMut2::from_shape((n, m), &mut e[..]).expect("sized above");
            Zip::from(&mut r)
                .and(z)
                .and(&q)
                .for_each(|r, &z, &q| *r = z - q);
            for (level, a) in self.levels.iter().zip(assign.chunks_mut(n.max(1))) {
                level.quantize_level(r.view(), a, e.view_mut(), scratch);
                descend(r.view_mut(), q.view_mut(), e.view());
            }
        }
        (scratch.residual, scratch.code) = (r, e);
    }

    /// `quantize` of a whole data set, each level in `Quantizer::quantize_all`'s parallel tasks.
    pub(super) fn quantize_all(
        &self,
        z: ArrayView2<f32>,
        assign: &mut [usize],
        mut q: ArrayViewMut2<f32>,
    ) {
        let n = z.nrows();
        let mut r = &z - &q; // (n, m)
        let mut e = Array2::zeros(z.raw_dim()); // (n, m)
        for (level, a) in self.levels.iter().zip(assign.chunks_mut(n.max(1))) {
            level.quantize_all_level(r.view(), a, e.view_mut());
            descend(r.view_mut(), q.view_mut(), e.view());
        }
    }

    /// The VQ loss of a batch: each level's codebook loss and commitment on its own residual,
    /// summed. Rebuilds the codes and residuals that `quantize` made from the assignments
    /// (the same operations in the same order, so the same numbers) and keeps them.
    pub(super) fn loss(
        &mut self,
        first: &mut Quantizer,
        z: ArrayView2<f32>,
        assign: &[usize],
    ) -> f32 {
        let n = z.nrows();
        self.rebuild(first, z, assign);
        let e = |k: usize| self.codes[k].slice(s![..n, ..]);
        let mut total = first.loss_level(z, e(0), &assign[..n]);
        for (k, level) in self.levels.iter_mut().enumerate() {
            let r = self.inputs[k].slice(s![..n, ..]);
            let e = self.codes[k + 1].slice(s![..n, ..]);
            total += level.loss_level(r, e, &assign[(k + 1) * n..(k + 2) * n]);
        }
        total
    }

    /// e_1..e_L and r_2..r_L of the batch `z` with assignments `assign` (level-major).
    fn rebuild(&mut self, first: &Quantizer, z: ArrayView2<f32>, assign: &[usize]) {
        let n = z.nrows();
        gather(
            first.codebook(),
            &assign[..n],
            self.codes[0].slice_mut(s![..n, ..]),
        );
        for (k, level) in self.levels.iter().enumerate() {
            let (before, after) = self.inputs.split_at_mut(k);
            let mut r = after[0].slice_mut(s![..n, ..]);
            let e = self.codes[k].slice(s![..n, ..]);
            match before.last() {
                None => Zip::from(&mut r)
                    .and(z)
                    .and(e)
                    .for_each(|r, &z, &e| *r = z - e),
                Some(prev) => Zip::from(&mut r)
                    .and(prev.slice(s![..n, ..]))
                    .and(e)
                    .for_each(|r, &p, &e| *r = p - e),
            }
            let a = &assign[(k + 1) * n..(k + 2) * n];
            gather(
                level.codebook(),
                a,
                self.codes[k + 1].slice_mut(s![..n, ..]),
            );
        }
    }

    /// Backward of the levels after `loss` on the same batch: the decoder's ∂L/∂q `g_q` passes
    /// straight through to z once (level 1's estimator), and each level adds its commitment's
    /// gradient through its residual (∂r_l/∂z = I); each codebook gets its own loss's gradient.
    pub(super) fn backward(
        &mut self,
        first: &mut Quantizer,
        z: ArrayView2<f32>,
        assign: &[usize],
        g_q: ArrayView2<f32>,
        mut g_z: ArrayViewMut2<f32>,
    ) {
        let n = z.nrows();
        let e = self.codes[0].slice(s![..n, ..]);
        first.backward_level(z, e, &assign[..n], g_q, g_z.view_mut());
        let zero = self.zero.slice(s![..n, ..]);
        for (k, level) in self.levels.iter_mut().enumerate() {
            let mut g_r = self.g_r.slice_mut(s![..n, ..]);
            let r = self.inputs[k].slice(s![..n, ..]);
            let e = self.codes[k + 1].slice(s![..n, ..]);
            let a = &assign[(k + 1) * n..(k + 2) * n];
            level.backward_level(r, e, a, zero, g_r.view_mut());
            g_z += &g_r;
        }
    }

    /// Each level's update on its own residuals of the batch, after `loss`.
    pub(super) fn after_step(
        &mut self,
        first: &mut Quantizer,
        z: ArrayView2<f32>,
        assign: &[usize],
    ) {
        let n = z.nrows();
        first.after_step_level(z, &assign[..n]);
        for (k, level) in self.levels.iter_mut().enumerate() {
            let r = self.inputs[k].slice(s![..n, ..]);
            level.after_step_level(r, &assign[(k + 1) * n..(k + 2) * n]);
        }
    }
}

/// One level's step down: the residual loses the level's codes `e`, the decoder's input `q`
/// gains them.
fn descend(r: ArrayViewMut2<f32>, q: ArrayViewMut2<f32>, e: ArrayView2<f32>) {
    Zip::from(r).and(q).and(e).for_each(|r, q, &e| {
        *r -= e;
        *q += e;
    });
}

//! The autoencoder around the quantizer: x → encoder → z → [q(z)] → decoder → x̂, with one
//! training step (forward, hand-written backward, Adam) and whole-data-set evaluation.

use ndarray::{s, Array2, ArrayView2, Axis};
use rand::Rng;

use crate::sim::checked::ValidRun;
use crate::sim::config::ModelKind;
use crate::sim::metrics::{self, CoverageDraws, Metrics, Observation, QuantizedView, ResidualView};
use crate::sim::nn::{loss, Adam, Mlp};
use crate::sim::vq::{self, Quantizer};

pub struct Autoencoder {
    pub encoder: Mlp,
    pub decoder: Mlp,
    opt: Adam,
    // Scratch for one batch, allocated once for the largest batch.
    z: Array2<f32>,       // (batch, m) encoder output
    q: Array2<f32>,       // (batch, m) decoder input: q(z), or z when continuous
    g_recon: Array2<f32>, // (batch, d) ∂L/∂x̂
    g_q: Array2<f32>,     // (batch, m) ∂L/∂(decoder input)
    g_z: Array2<f32>,     // (batch, m) ∂L/∂z
    assign: Vec<usize>,   // (L · batch) nearest code of each residual level, level-major
    search: vq::Scratch,
}

/// The model's view of the whole data set: what the metrics and the snapshot need.
pub struct Evaluation {
    pub z: Array2<f32>,
    pub recon: Array2<f32>,
    /// Each point's code, (n); a residual quantizer's L codes per point, level-major (L·n).
    pub assign: Vec<usize>,
    pub metrics: Metrics,
}

impl Autoencoder {
    pub fn new(cfg: &ValidRun, rng: &mut impl Rng) -> Autoencoder {
        // A batch never holds more than the whole data set: size the scratch for what can occur.
        let points = cfg.points();
        let (d, m, b) = (
            cfg.data.dim,
            cfg.model.latent_dim,
            cfg.train.batch_size.min(points),
        );
        let mc = &cfg.model;
        let (encoder, decoder) = match mc.kind {
            ModelKind::Mlp => (
                Mlp::new(d, mc.width, mc.depth, m, mc.activation, b, rng),
                Mlp::new(m, mc.width, mc.depth, d, mc.activation, b, rng),
            ),
            // Validation made m = d.
            ModelKind::Identity => (Mlp::identity(d, b), Mlp::identity(m, b)),
        };
        Autoencoder {
            encoder,
            decoder,
            opt: Adam::new(cfg.train.lr as f32),
            z: Array2::zeros((b, m)),
            q: Array2::zeros((b, m)),
            g_recon: Array2::zeros((b, d)),
            g_q: Array2::zeros((b, m)),
            g_z: Array2::zeros((b, m)),
            assign: vec![0; b * vq::levels(&cfg.quantizer)],
            search: vq::Scratch::default(),
        }
    }

    /// One optimisation step on a batch `x` (n, d); quantized when `vq` is given: gradients,
    /// the networks' Adam step, then the quantizer's own update. Returns the total loss.
    /// Allocates nothing once warm.
    pub fn step(&mut self, x: ArrayView2<f32>, mut vq: Option<&mut Quantizer>) -> f32 {
        let loss = self.gradients(x, vq.as_deref_mut());
        self.opt
            .step(self.encoder.params_mut().chain(self.decoder.params_mut()));
        if let Some(vq) = vq {
            let n = x.nrows();
            let codes = n * vq.levels();
            vq.after_step(self.z.slice(s![..n, ..]), &self.assign[..codes]);
        }
        loss
    }

    /// Forward and backward of a batch without any update: leaves ∂L/∂θ in the networks'
    /// gradients and the quantizer's gradient in the quantizer. Returns the total loss.
    pub fn gradients(&mut self, x: ArrayView2<f32>, mut vq: Option<&mut Quantizer>) -> f32 {
        let n = x.nrows();
        let codes = n * vq.as_deref().map_or(1, Quantizer::levels);
        let (mut z, mut q) = (self.z.slice_mut(s![..n, ..]), self.q.slice_mut(s![..n, ..]));
        z.assign(&self.encoder.forward(x));
        let mut vq_loss = 0.0;
        match vq.as_deref_mut() {
            Some(vq) => {
                vq.quantize(
                    z.view(),
                    &mut self.assign[..codes],
                    q.view_mut(),
                    &mut self.search,
                );
                vq.sample(z.view(), &mut self.assign[..n], q.view_mut());
                vq_loss = vq.loss(z.view(), q.view(), &self.assign[..codes]);
            }
            None => q.assign(&z),
        }
        let recon = self.decoder.forward(q.view());
        let rec = loss::mse(recon, x);
        let mut g_recon = self.g_recon.slice_mut(s![..n, ..]);
        loss::mse_grad(recon, x, 1.0, g_recon.view_mut());

        self.encoder.zero_grad();
        self.decoder.zero_grad();
        let mut g_q = self.g_q.slice_mut(s![..n, ..]);
        self.decoder
            .backward(q.view(), g_recon.view(), Some(g_q.view_mut()));
        let mut g_z = self.g_z.slice_mut(s![..n, ..]);
        match vq {
            Some(vq) => vq.backward(
                z.view(),
                q.view(),
                &self.assign[..codes],
                g_q.view(),
                g_z.view_mut(),
            ),
            None => g_z.assign(&g_q),
        }
        self.encoder.backward(x, g_z.view(), None);
        rec + vq_loss
    }

    pub fn all_finite(&self) -> bool {
        self.encoder.all_finite() && self.decoder.all_finite()
    }

    /// The networks as they stand, for an evaluation (`Networks`).
    pub fn networks(&self) -> Networks {
        Networks {
            encoder: self.encoder.for_inference(),
            decoder: self.decoder.for_inference(),
        }
    }
}

/// The encoder and decoder without the optimiser and the training batch's room: what an
/// evaluation reads, copied at the end of an epoch (about the size of the weights) so that it
/// can be measured while training goes on.
pub struct Networks {
    pub encoder: Mlp,
    pub decoder: Mlp,
}

impl Networks {
    /// Encode, quantize (if `vq`), decode and measure the whole data set; the generation
    /// metrics too when `generation` (and `vq`). `coverage` holds coverage's draws from the
    /// evaluation before (`metrics::coverage_kept`).
    // The arguments are what one evaluation of a run looks at; a struct of them would be
    // built for this call only.
    #[allow(clippy::too_many_arguments)]
    pub fn evaluate(
        &self,
        x: ArrayView2<f32>,
        means: ArrayView2<f32>,
        vq: Option<&Quantizer>,
        subsample: &[usize],
        heldout: &[usize],
        generation: bool,
        coverage: &mut CoverageDraws,
    ) -> Evaluation {
        let z = self.encoder.infer(x);
        let n = x.nrows();
        let levels = vq.map_or(1, Quantizer::levels);
        let mut assign = vec![0; n * levels];
        let mut tuples = None;
        let (recon, decoded_codes) = match vq {
            Some(vq) => {
                let mut q = Array2::zeros(z.raw_dim());
                vq.quantize_all(z.view(), &mut assign, q.view_mut());
                // A residual quantizer's decoder inputs are the tuples of codes in use.
                let t = (levels > 1).then(|| Tuples::of(&assign, q.view()));
                let (inputs, token_of) = match &t {
                    Some(t) => (t.inputs.view(), &t.of[..]),
                    None => (vq.codebook(), &assign[..]),
                };
                // dec(q(z)) takes only S values: decode the codes once and gather, instead of
                // decoding every point. `infer` treats rows independently, so this is bit for bit
                // `decoder.infer(q)` (a test checks it).
                let decoded = self.decoder.infer(inputs); // (S or T, d)
                let d = decoded.ncols();
                let codes = decoded.as_slice().expect("standard layout");
                // Flat row copies: ndarray's `select` costs ~10× more per row at d = 2.
                let mut recon = Array2::zeros((n, d)); // (n, d)
                let rows = recon.as_slice_mut().expect("standard layout");
                for (row, &k) in rows.chunks_exact_mut(d.max(1)).zip(token_of) {
                    row.copy_from_slice(&codes[k * d..(k + 1) * d]);
                }
                tuples = t;
                (recon, Some(decoded))
            }
            None => (self.decoder.infer(z.view()), None),
        };
        let z = match vq {
            Some(vq) => vq.embedded(z),
            None => z,
        };
        let quantized = vq
            .zip(decoded_codes.as_ref())
            .map(|(vq, dc)| QuantizedView {
                codebook: vq.codebook(),
                assign: &assign[..n],
                nearest: vq.assigns_nearest_code(),
                decoded_codes: dc.view(),
                generation,
                residual: tuples.as_ref().map(|t| ResidualView {
                    assign: &assign,
                    levels,
                    tokens: t.inputs.view(),
                    token_of: &t.of,
                }),
            });
        // Views are invariant in their lifetime: shorten the borrowed ones to the local ones.
        let obs = Observation {
            x: x.reborrow(),
            means: means.reborrow(),
            z: z.view(),
            recon: recon.view(),
            quantized,
            subsample,
            heldout,
        };
        let metrics = metrics::measure_kept(&obs, coverage);
        Evaluation {
            z,
            recon,
            assign,
            metrics,
        }
    }
}

/// The distinct tuples of codes that a residual quantizer gives the rows, in tuple order.
struct Tuples {
    /// Each tuple's decoder input (the sum of its codes), (T, m).
    inputs: Array2<f32>,
    /// The tuple of each row, (n).
    of: Vec<usize>,
}

impl Tuples {
    /// The tuples of the codes `assign` (L·n, level-major) whose sums are the rows of `q`
    /// (n, m). A tuple's rows share their sum bit for bit (the same codes added in the same
    /// order), so its first row stands for all.
    fn of(assign: &[usize], q: ArrayView2<f32>) -> Tuples {
        let n = q.nrows();
        let tuple = |i: usize| assign.iter().skip(i).step_by(n.max(1));
        let mut rows: Vec<usize> = (0..n).collect();
        rows.sort_by(|&a, &b| tuple(a).cmp(tuple(b)));
        let mut of = vec![0; n];
        let mut first = Vec::new();
        for (k, &i) in rows.iter().enumerate() {
            if k == 0 || tuple(i).ne(tuple(rows[k - 1])) {
                first.push(i);
            }
            of[i] = first.len() - 1;
        }
        Tuples {
            inputs: q.select(Axis(0), &first),
            of,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::config::RunConfig;
    use crate::sim::data::Mixture;
    use crate::sim::rng::{stream, Stream};

    #[test]
    fn evaluation_gathers_exactly_the_decoded_points() {
        // 10 000 points: infer chunks of 256 and a ragged last one, against 64 decoded codes
        // (a scan) and 300 (a tree); the quantizers whose decoder input is not the stored code
        // too.
        let variants: [fn(&mut RunConfig); 6] = [
            |_| {},
            // Enough codes for the evaluation's tree, in the latent space and normalised.
            |c| c.quantizer.codebook_size = 300,
            |c| {
                c.quantizer.distance = crate::sim::config::Distance::Cosine;
                c.quantizer.codebook_size = 300;
            },
            |c| c.quantizer.kind = "fsq".into(),
            |c| {
                c.quantizer.distance = crate::sim::config::Distance::Cosine;
                c.quantizer.code_dim = 1;
            },
            // The decoder sees sums of 3 codes: the tuples in use are decoded and gathered.
            |c| c.quantizer.params.set("residual_levels", 3),
        ];
        let mut claimed = 0;
        for edit in variants {
            let mut cfg = RunConfig::default();
            edit(&mut cfg);
            let cfg = crate::sim::valid::validate(&cfg, None).unwrap();
            let data = Mixture::sample(&cfg.data, &mut stream(3, Stream::Data));
            let model = Autoencoder::new(&cfg, &mut stream(3, Stream::Weights));
            let z = model.encoder.infer(data.x.view());
            let vq = Quantizer::init(&cfg, z.view(), 3).unwrap();
            let mut draws = Default::default();
            let (x, means) = (data.x.view(), data.means.view());
            let eval = model
                .networks()
                .evaluate(x, means, Some(&vq), &[], &[], false, &mut draws);
            let mut q = Array2::zeros(z.raw_dim());
            let mut assign = vec![0; z.nrows() * vq.levels()];
            vq.quantize(z.view(), &mut assign, q.view_mut(), &mut Default::default());
            assert_eq!(eval.assign, assign);
            // Where the quantizer says so, each row's code is its nearest by `sq_dist` (the
            // lowest index among equals), and coverage takes its distances from them.
            let n = z.nrows();
            if vq.assigns_nearest_code() {
                let mut scan = vec![0; n];
                crate::sim::nearest::nearest(eval.z.view(), vq.codebook(), &mut scan);
                assert!(eval.assign[..n] == scan, "{:?}", cfg.quantizer);
                claimed += 1;
            }
            let coverage = crate::sim::metrics::coverage(eval.z.view(), vq.codebook(), None);
            assert_eq!(eval.metrics.coverage.to_bits(), coverage.to_bits());
            let measured = if vq.levels() > 1 { vq.levels() } else { 0 };
            assert_eq!(eval.metrics.levels.levels, measured);
            assert_eq!(
                eval.recon,
                model.decoder.infer(q.view()),
                "{:?}",
                cfg.quantizer
            );
        }
        assert_eq!(
            claimed, 3,
            "the plain codebooks (one at S = 300) and the residual's first level"
        );
    }
}

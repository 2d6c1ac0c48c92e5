//! Finite-difference checks of the whole autoencoder's backward pass with the VQ bottleneck:
//! reconstruction, codebook and commitment losses and the straight-through estimator, plus the
//! EMA codebook update rule (which has no gradient).
//!
//! With the straight-through estimator the decoder sees z + sg(q − z), so the encoder's
//! gradient is the gradient of the surrogate
//!   L_enc(θ) = mse(dec(z(θ) + c), x) + β·mean‖z(θ) − q‖²,  c = q − z frozen,
//! the decoder's that of mse(dec(q), x), and the codebook's that of mean‖sg(z) − e_k‖².
//! Central differences of exactly those functions are compared with the analytic gradients.

use ndarray::{Array2, ArrayView2};
use ndarray_rand::rand_distr::StandardNormal;
use ndarray_rand::RandomExt;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use vqsim::sim::checked::ValidRun;
use vqsim::sim::config::{Activation, Init, RunConfig, Update};
use vqsim::sim::model::Autoencoder;
use vqsim::sim::nn::{loss, Mlp};
use vqsim::sim::valid::validate;
use vqsim::sim::vq::Quantizer;

const EPS: f32 = 1e-3;

/// `cfg` validated: the form the model, the quantizer and training accept.
fn valid(cfg: &RunConfig) -> ValidRun {
    validate(cfg, None).unwrap()
}

fn config(act: Activation, update: Update) -> RunConfig {
    let mut cfg = RunConfig::default();
    cfg.data.dim = 3;
    cfg.model.latent_dim = 2;
    cfg.model.width = 8;
    cfg.model.depth = 2;
    cfg.model.activation = act;
    cfg.quantizer.codebook_size = 6;
    cfg.quantizer.beta = 0.25;
    cfg.quantizer.init = Init::Normal;
    cfg.quantizer.update = update;
    cfg.train.batch_size = 16;
    cfg
}

struct Setup {
    ae: Autoencoder,
    vq: Quantizer,
    x: Array2<f32>,
}

fn setup(act: Activation, update: Update, seed: u64) -> Setup {
    let cfg = config(act, update);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ae = Autoencoder::new(&valid(&cfg), &mut rng);
    let x: Array2<f32> = Array2::random_using((16, 3), StandardNormal, &mut rng);
    // Codes spread over the encoder's outputs so that several are selected.
    let z = ae.encoder.infer(x.view());
    let codes = Array2::from_shape_fn((6, 2), |(k, j)| z[[2 * k + 1, j]] + 0.05);
    let vq = Quantizer::new(&valid(&cfg), codes, ChaCha8Rng::seed_from_u64(0));
    Setup { ae, vq, x }
}

/// `setup` with its quantizer rebuilt on the same codes under `estimator`; also returns the
/// config and the codes.
fn setup_with(act: Activation, seed: u64, estimator: String) -> (RunConfig, Setup, Array2<f32>) {
    let mut cfg = config(act, Update::Loss);
    cfg.quantizer.estimator = estimator;
    let Setup { ae, vq, x } = setup(act, Update::Loss, seed);
    let codes = vq.codebook().to_owned();
    let vq = Quantizer::new(&valid(&cfg), codes.clone(), ChaCha8Rng::seed_from_u64(0));
    (cfg, Setup { ae, vq, x }, codes)
}

/// Nearest code of every row (of every residual level, level-major), and what the decoder sees.
fn quantize(vq: &Quantizer, z: ArrayView2<f32>) -> (Vec<usize>, Array2<f32>) {
    let mut assign = vec![0; z.nrows() * vq.levels()];
    let mut q = Array2::zeros(z.raw_dim());
    vq.quantize(z, &mut assign, q.view_mut(), &mut Default::default());
    (assign, q)
}

fn mean_sq(a: ArrayView2<f32>, b: ArrayView2<f32>) -> f64 {
    let s: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    s / a.len() as f64
}

/// Compare an analytic gradient with central differences of `f` over every parameter of
/// `net`, returning how many coordinates were compared.
fn check_net(
    name: &str,
    net: &mut Mlp,
    analytic: &[Vec<f32>],
    mut f: impl FnMut(&Mlp) -> f64,
) -> usize {
    let mut compared = 0;
    for (slot, grads) in analytic.iter().enumerate() {
        for (i, &a) in grads.iter().enumerate() {
            let mut at = |delta: f32, net: &mut Mlp| {
                net.params_mut().nth(slot).unwrap().0[i] += delta;
                let v = f(net);
                net.params_mut().nth(slot).unwrap().0[i] -= delta;
                v
            };
            let numeric = (at(EPS, net) - at(-EPS, net)) / (2.0 * EPS as f64);
            let tol = 2e-2 * numeric.abs().max(a.abs() as f64) + 2e-4;
            assert!(
                (numeric - a as f64).abs() <= tol,
                "{name}: slot {slot} index {i}: analytic {a} vs numeric {numeric}"
            );
            compared += 1;
        }
    }
    compared
}

/// mean‖z − codes[assign]‖²: the codebook loss with the assignments held fixed.
fn assigned_loss(z: ArrayView2<f32>, codes: ArrayView2<f32>, assign: &[usize]) -> f64 {
    let chosen = Array2::from_shape_fn(z.raw_dim(), |(i, j)| codes[[assign[i], j]]);
    mean_sq(z, chosen.view())
}

/// Compares `analytic` with central differences of `f` over every entry of `codes`.
fn check_codes(analytic: ArrayView2<f32>, codes: &Array2<f32>, f: impl Fn(ArrayView2<f32>) -> f64) {
    let mut codes = codes.clone();
    for k in 0..codes.nrows() {
        for j in 0..codes.ncols() {
            let mut at = |delta: f32| {
                codes[[k, j]] += delta;
                let v = f(codes.view());
                codes[[k, j]] -= delta;
                v
            };
            let numeric = (at(EPS) - at(-EPS)) / (2.0 * EPS as f64);
            let a = analytic[[k, j]] as f64;
            assert!(
                (numeric - a).abs() <= 2e-2 * numeric.abs().max(a.abs()) + 2e-4,
                "codebook [{k},{j}]: analytic {a} vs numeric {numeric}"
            );
        }
    }
}

fn grads_of(net: &mut Mlp) -> Vec<Vec<f32>> {
    net.params_mut().map(|(_, g)| g.to_vec()).collect()
}

#[test]
fn quantized_backward_matches_finite_differences() {
    for (seed, act) in [
        (1, Activation::Tanh),
        (2, Activation::Gelu),
        (3, Activation::Relu),
    ] {
        let Setup { mut ae, mut vq, x } = setup(act, Update::Loss, seed);
        let beta = config(act, Update::Loss).quantizer.beta;
        let z0 = ae.encoder.infer(x.view());
        let (assign, q) = quantize(&vq, z0.view());
        several_codes_in_use(&assign, "the check");
        ae.gradients(x.view(), Some(&mut vq));
        let (enc_grads, dec_grads) = (grads_of(&mut ae.encoder), grads_of(&mut ae.decoder));

        // Decoder: the reconstruction of the quantized codes.
        let mut dec = ae.decoder.clone();
        let n = check_net("decoder", &mut dec, &dec_grads, |d| {
            loss::mse(d.infer(q.view()).view(), x.view()) as f64
        });
        assert!(n > 50);

        // Encoder: straight-through reconstruction plus β-weighted commitment.
        let c = &q - &z0;
        let decoder = ae.decoder.clone();
        let mut enc = ae.encoder.clone();
        let n = check_net("encoder", &mut enc, &enc_grads, |e| {
            let z = e.infer(x.view());
            let recon = decoder.infer((&z + &c).view());
            loss::mse(recon.view(), x.view()) as f64 + beta * mean_sq(z.view(), q.view())
        });
        assert!(n > 50);

        // Codebook: mean‖sg(z) − e_k‖² with the assignments held fixed.
        let analytic = vq.codebook_grad().unwrap().to_owned();
        check_codes(analytic.view(), &vq.codebook().to_owned(), |c| {
            assigned_loss(z0.view(), c, &assign)
        });
        assert!(
            analytic.iter().any(|g| g.abs() > 1e-3),
            "codebook gradient is trivially zero"
        );
    }
}

#[test]
fn continuous_backward_matches_finite_differences() {
    let Setup { mut ae, x, .. } = setup(Activation::Tanh, Update::Loss, 4);
    ae.gradients(x.view(), None);
    let (enc_grads, dec_grads) = (grads_of(&mut ae.encoder), grads_of(&mut ae.decoder));
    let decoder = ae.decoder.clone();
    let mut enc = ae.encoder.clone();
    check_net("encoder", &mut enc, &enc_grads, |e| {
        let recon = decoder.infer(e.infer(x.view()).view());
        loss::mse(recon.view(), x.view()) as f64
    });
    let encoder = ae.encoder.clone();
    let mut dec = ae.decoder.clone();
    check_net("decoder", &mut dec, &dec_grads, |d| {
        loss::mse(d.infer(encoder.infer(x.view()).view()).view(), x.view()) as f64
    });
}

#[test]
fn straight_through_passes_decoder_gradient_unchanged() {
    // With β = 0 the encoder output's gradient is exactly the decoder input's gradient; with
    // β > 0 the difference is the commitment gradient 2β(z − q)/(n·m).
    for beta in [0.0, 0.5] {
        let Setup { ae, x, vq } = setup(Activation::Tanh, Update::Loss, 5);
        let mut cfg = config(Activation::Tanh, Update::Loss);
        cfg.quantizer.beta = beta;
        let mut vq = Quantizer::new(
            &valid(&cfg),
            vq.codebook().to_owned(),
            ChaCha8Rng::seed_from_u64(0),
        );
        let z = ae.encoder.infer(x.view());
        let (assign, q) = quantize(&vq, z.view());
        let g_q: Array2<f32> = Array2::random_using(
            z.raw_dim(),
            StandardNormal,
            &mut ChaCha8Rng::seed_from_u64(9),
        );
        let mut g_z = Array2::zeros(z.raw_dim());
        vq.backward(z.view(), q.view(), &assign, g_q.view(), g_z.view_mut());
        let expected = &g_q + &((&z - &q) * (2.0 * beta as f32 / z.len() as f32));
        for (a, b) in g_z.iter().zip(&expected) {
            assert!((a - b).abs() <= 1e-6, "β = {beta}: {a} vs {b}");
        }
        if beta == 0.0 {
            assert_eq!(g_z, g_q);
        }
    }
}

#[test]
fn ema_update_follows_the_vq_vae_rule() {
    // Two codes, decay 0.5, a batch assigning two points to code 0 and none to code 1.
    let mut cfg = config(Activation::Tanh, Update::Ema);
    cfg.quantizer.codebook_size = 2;
    cfg.quantizer.ema_decay = 0.5;
    let codes = Array2::from_shape_vec((2, 2), vec![0.0, 0.0, 10.0, 10.0]).unwrap();
    let mut vq = Quantizer::new(&valid(&cfg), codes, ChaCha8Rng::seed_from_u64(0));
    assert!(vq.codebook_grad().is_none());
    let z = Array2::from_shape_vec((2, 2), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    vq.after_step(z.view(), &[0, 0]);
    // N = (0.5·1 + 0.5·2, 0.5·1 + 0) = (1.5, 0.5); m_0 = 0.5·(0,0) + 0.5·(4,6) = (2,3);
    // m_1 = 0.5·(10,10) = (5,5). Laplace: Ñ_k = (N_k + ε)/(2 + 2ε)·2.
    let eps = 1e-5_f32;
    let smooth = |n: f32| (n + eps) / (2.0 + 2.0 * eps) * 2.0;
    let expected = [
        2.0 / smooth(1.5),
        3.0 / smooth(1.5),
        5.0 / smooth(0.5),
        5.0 / smooth(0.5),
    ];
    for (a, b) in vq.codebook().iter().zip(expected) {
        assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
    }
    // The EMA codebook adds no codebook loss: only the commitment term remains.
    let q = Array2::zeros((2, 2));
    let loss = vq.loss(z.view(), q.view(), &[0, 0]);
    assert!((loss - cfg.quantizer.beta as f32 * 7.5).abs() < 1e-5);
}

#[test]
fn ema_step_moves_codes_and_leaves_no_codebook_gradient() {
    let Setup { mut ae, mut vq, x } = setup(Activation::Tanh, Update::Ema, 6);
    let before = vq.codebook().to_owned();
    ae.gradients(x.view(), Some(&mut vq));
    assert_eq!(vq.codebook(), before, "gradients alone leave the codebook");
    ae.step(x.view(), Some(&mut vq));
    assert_ne!(vq.codebook(), before, "EMA must update the used codes");
    assert!(vq.codebook_grad().is_none());
}

/// λ, u, v, w of one row's frozen rotation.
type RowRotation = (f32, Vec<f32>, Vec<f32>, Vec<f32>);

/// The rotation trick's frozen map of one row: q̃ = λ(z − 2(z·w)w + 2(z·u)v) with u = z0/‖z0‖,
/// v = q/‖q‖, w = (u + v)/‖u + v‖, λ = ‖q‖/‖z0‖, all computed independently of the library.
fn rotation_of(z0: ArrayView2<f32>, q: ArrayView2<f32>) -> impl Fn(ArrayView2<f32>) -> Array2<f32> {
    let maps: Vec<RowRotation> = z0
        .outer_iter()
        .zip(q.outer_iter())
        .map(|(a, b)| {
            let (na, nb) = (a.dot(&a).sqrt(), b.dot(&b).sqrt());
            let u: Vec<f32> = a.iter().map(|x| x / na).collect();
            let v: Vec<f32> = b.iter().map(|x| x / nb).collect();
            let s: Vec<f32> = u.iter().zip(&v).map(|(x, y)| x + y).collect();
            let ns = s.iter().map(|x| x * x).sum::<f32>().sqrt();
            let w = s.iter().map(|x| x / ns).collect();
            (nb / na, u, v, w)
        })
        .collect();
    move |z: ArrayView2<f32>| {
        let mut out = z.to_owned();
        for (mut row, (lambda, u, v, w)) in out.outer_iter_mut().zip(&maps) {
            let zr = row.to_vec();
            let dot = |p: &[f32]| zr.iter().zip(p).map(|(a, b)| a * b).sum::<f32>();
            let (zw, zu) = (dot(w), dot(u));
            for (j, o) in row.iter_mut().enumerate() {
                *o = lambda * (zr[j] - 2.0 * zw * w[j] + 2.0 * zu * v[j]);
            }
        }
        out
    }
}

#[test]
fn rotation_trick_backward_matches_finite_differences() {
    for (seed, act) in [(7, Activation::Tanh), (8, Activation::Gelu)] {
        let (cfg, Setup { mut ae, mut vq, x }, codes) = setup_with(act, seed, "rotation".into());
        let beta = cfg.quantizer.beta;
        let z0 = ae.encoder.infer(x.view());
        let (_, q) = quantize(&vq, z0.view());
        let rotate = rotation_of(z0.view(), q.view());
        // The frozen map sends z0 to q: the decoder's input is unchanged.
        for (a, b) in rotate(z0.view()).iter().zip(&q) {
            assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
        }
        ae.gradients(x.view(), Some(&mut vq));
        let enc_grads = grads_of(&mut ae.encoder);
        let decoder = ae.decoder.clone();
        let mut enc = ae.encoder.clone();
        let n = check_net("encoder (rotation)", &mut enc, &enc_grads, |e| {
            let z = e.infer(x.view());
            let recon = decoder.infer(rotate(z.view()).view());
            loss::mse(recon.view(), x.view()) as f64 + beta * mean_sq(z.view(), q.view())
        });
        assert!(n > 50);
        // And it is not the straight-through gradient.
        let mut ste = Quantizer::new(
            &valid(&config(act, Update::Loss)),
            codes,
            ChaCha8Rng::seed_from_u64(0),
        );
        ae.gradients(x.view(), Some(&mut ste));
        assert_ne!(grads_of(&mut ae.encoder), enc_grads);
    }
}

/// Σ_ij cos²(e_i, e_j)/S² − 1/S in f64, written independently of the library.
fn orthogonal_loss(codes: ArrayView2<f32>) -> f64 {
    let s = codes.nrows() as f64;
    let mut total = 0.0;
    for a in codes.outer_iter() {
        for b in codes.outer_iter() {
            let d = |x: ndarray::ArrayView1<f32>, y: ndarray::ArrayView1<f32>| {
                x.iter()
                    .zip(y)
                    .map(|(p, q)| *p as f64 * *q as f64)
                    .sum::<f64>()
            };
            let cos = d(a, b) / (d(a, a) * d(b, b)).sqrt();
            total += cos * cos;
        }
    }
    total / (s * s) - 1.0 / s
}

#[test]
fn orthogonal_loss_is_zero_for_orthogonal_codes_and_half_for_parallel_ones() {
    let mut cfg = config(Activation::Tanh, Update::Loss);
    cfg.quantizer.params.set("orthogonal_weight", 2.0);
    cfg.quantizer.beta = 0.0;
    let z = Array2::from_shape_vec((1, 2), vec![0.0, 0.0]).unwrap();
    for (codes, want) in [
        (vec![3.0, 0.0, 0.0, -2.0], 0.0),
        (vec![1.0, 1.0, -2.0, -2.0], 1.0),
    ] {
        let codes = Array2::from_shape_vec((2, 2), codes).unwrap();
        let mut vq = Quantizer::new(&valid(&cfg), codes, ChaCha8Rng::seed_from_u64(0));
        // z = q: the codebook and commitment terms vanish; 2·(Σcos²/4 − 1/2) remains.
        let loss = vq.loss(z.view(), z.view(), &[0]);
        assert!((loss - want).abs() < 1e-6, "{loss} vs {want}");
    }
}

#[test]
fn orthogonal_gradient_matches_finite_differences() {
    let mut cfg = config(Activation::Tanh, Update::Loss);
    cfg.quantizer.params.set("orthogonal_weight", 0.7);
    let Setup { ae, vq, x } = setup(Activation::Tanh, Update::Loss, 11);
    let codes = vq.codebook().to_owned();
    let mut vq = Quantizer::new(&valid(&cfg), codes.clone(), ChaCha8Rng::seed_from_u64(0));
    let z0 = ae.encoder.infer(x.view());
    let (assign, q) = quantize(&vq, z0.view());
    let g_q = Array2::zeros(z0.raw_dim());
    let mut g_z = Array2::zeros(z0.raw_dim());
    vq.backward(z0.view(), q.view(), &assign, g_q.view(), g_z.view_mut());
    let analytic = vq.codebook_grad().unwrap().to_owned();
    check_codes(analytic.view(), &codes, |c| {
        assigned_loss(z0.view(), c, &assign) + 0.7 * orthogonal_loss(c)
    });
    // The regulariser moves codes no point is assigned to, which the codebook loss cannot.
    let unused = (0..codes.nrows()).find(|k| !assign.contains(k));
    if let Some(k) = unused {
        assert!(analytic.row(k).iter().any(|g| g.abs() > 1e-6));
    }
}

/// mean_i H(p_i) − H(mean_i p_i), p_ij = softmax_j(−‖z_i − e_j‖²/t), in f64, written
/// independently of the library.
fn entropy_loss(z: ArrayView2<f32>, codes: ArrayView2<f32>, t: f64) -> f64 {
    let (n, s) = (z.nrows(), codes.nrows());
    let mut mean = vec![0.0f64; s];
    let mut mean_h = 0.0;
    for zi in z.outer_iter() {
        let logits: Vec<f64> = codes
            .outer_iter()
            .map(|e| {
                let d2: f64 = zi
                    .iter()
                    .zip(e)
                    .map(|(a, b)| ((a - b) as f64).powi(2))
                    .sum();
                -d2 / t
            })
            .collect();
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = logits.iter().map(|l| (l - max).exp()).sum();
        for (j, l) in logits.iter().enumerate() {
            let p = (l - max).exp() / total;
            mean[j] += p / n as f64;
            if p > 0.0 {
                mean_h -= p * p.ln() / n as f64;
            }
        }
    }
    let batch_h: f64 = mean.iter().filter(|&&p| p > 0.0).map(|p| -p * p.ln()).sum();
    mean_h - batch_h
}

#[test]
fn entropy_regulariser_gradients_match_finite_differences() {
    let (w, tau) = (0.5, 0.7);
    let mut cfg = config(Activation::Tanh, Update::Loss);
    cfg.quantizer.params.set("entropy_weight", w);
    cfg.quantizer.params.set("entropy_temperature", tau);
    let Setup { mut ae, vq, x } = setup(Activation::Tanh, Update::Loss, 12);
    let codes = vq.codebook().to_owned();
    let mut vq = Quantizer::new(&valid(&cfg), codes.clone(), ChaCha8Rng::seed_from_u64(0));
    let beta = cfg.quantizer.beta;
    let z0 = ae.encoder.infer(x.view());
    let (assign, q) = quantize(&vq, z0.view());
    // τ in units of the batch's mean margin between nearest and second-nearest code.
    let t = tau * margin(z0.view(), codes.view());
    let loss = ae.gradients(x.view(), Some(&mut vq));
    let recon = ae.decoder.infer(q.view());
    let expected = loss::mse(recon.view(), x.view()) as f64
        + (1.0 + beta) * mean_sq(z0.view(), q.view())
        + w * entropy_loss(z0.view(), codes.view(), t);
    assert!(
        (loss as f64 - expected).abs() < 1e-4 * expected.abs().max(1.0),
        "{loss} vs {expected}"
    );
    let enc_grads = grads_of(&mut ae.encoder);
    let c = &q - &z0;
    let decoder = ae.decoder.clone();
    let mut enc = ae.encoder.clone();
    let frozen = codes.clone();
    check_net("encoder (entropy)", &mut enc, &enc_grads, |e| {
        let z = e.infer(x.view());
        let recon = decoder.infer((&z + &c).view());
        loss::mse(recon.view(), x.view()) as f64
            + beta * mean_sq(z.view(), q.view())
            + w * entropy_loss(z.view(), frozen.view(), t)
    });
    let analytic = vq.codebook_grad().unwrap().to_owned();
    check_codes(analytic.view(), &codes, |c| {
        assigned_loss(z0.view(), c, &assign) + w * entropy_loss(z0.view(), c, t)
    });
    // Every code gets a gradient, used or not.
    assert!(analytic
        .outer_iter()
        .all(|g| g.iter().any(|v| v.abs() > 1e-6)));
}

/// The mean margin between each row's nearest and second-nearest code (squared distances):
/// the scale of IBQ's and the entropy loss's temperatures (held fixed when differencing: a
/// constant for the gradient).
fn margin(z: ArrayView2<f32>, codes: ArrayView2<f32>) -> f64 {
    let mut total = 0.0;
    for zi in z.outer_iter() {
        let mut d2: Vec<f64> = codes
            .outer_iter()
            .map(|e| {
                zi.iter()
                    .zip(e)
                    .map(|(a, b)| ((a - b) as f64).powi(2))
                    .sum()
            })
            .collect();
        d2.sort_by(f64::total_cmp);
        total += d2[1] - d2[0];
    }
    total / z.nrows() as f64
}

/// Soft assignments softmax_j(−‖z_i − e_j‖²/t) of every row, in f64.
fn soft_one_hot(z: ArrayView2<f32>, codes: ArrayView2<f32>, t: f64) -> Array2<f64> {
    let mut p = Array2::zeros((z.nrows(), codes.nrows()));
    for (zi, mut row) in z.outer_iter().zip(p.outer_iter_mut()) {
        for (pj, e) in row.iter_mut().zip(codes.outer_iter()) {
            *pj = -zi
                .iter()
                .zip(e)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
                / t;
        }
        let max = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        row.mapv_inplace(|v| (v - max).exp());
        let total = row.sum();
        row /= total;
    }
    p
}

/// IBQ's decoder input Σ_j (onehot_ij − p0_ij + p_ij) e_j with p from `z` and `codes` at
/// temperature `t` and the frozen p0, hard assignments `assign`.
fn ibq_input(
    z: ArrayView2<f32>,
    codes: ArrayView2<f32>,
    assign: &[usize],
    p0: &Array2<f64>,
    t: f64,
) -> Array2<f32> {
    let p = soft_one_hot(z, codes, t);
    Array2::from_shape_fn(z.raw_dim(), |(i, d)| {
        let soft: f64 = (0..codes.nrows())
            .map(|j| (p[[i, j]] - p0[[i, j]]) * codes[[j, d]] as f64)
            .sum();
        (codes[[assign[i], d]] as f64 + soft) as f32
    })
}

/// IBQ as SEED-Voken trains it: the decoder sees the soft-one-hot input q; the loss adds the
/// double quantization term mean‖q − z‖² (through the soft one-hot), commitment
/// mean‖z − sg(e_k)‖² with weight 1 and the codebook term β·mean‖sg(z) − e_k‖².
#[test]
fn ibq_backward_matches_finite_differences() {
    for (seed, act) in [(13, Activation::Tanh), (14, Activation::Gelu)] {
        let (cfg, Setup { mut ae, mut vq, x }, codes) = setup_with(act, seed, "ibq".into());
        let beta = cfg.quantizer.beta;
        let z0 = ae.encoder.infer(x.view());
        let (assign, q) = quantize(&vq, z0.view());
        let t = margin(z0.view(), codes.view());
        let p0 = soft_one_hot(z0.view(), codes.view(), t);
        // The forward pass is the nearest code.
        assert_eq!(ibq_input(z0.view(), codes.view(), &assign, &p0, t), q);
        let loss = ae.gradients(x.view(), Some(&mut vq));
        let recon = ae.decoder.infer(q.view());
        let expected =
            loss::mse(recon.view(), x.view()) as f64 + (2.0 + beta) * mean_sq(z0.view(), q.view());
        assert!(
            (loss as f64 - expected).abs() < 1e-4 * expected,
            "{loss} vs {expected}"
        );
        let enc_grads = grads_of(&mut ae.encoder);
        let decoder = ae.decoder.clone();
        let mut enc = ae.encoder.clone();
        let n = check_net("encoder (ibq)", &mut enc, &enc_grads, |e| {
            let z = e.infer(x.view());
            let input = ibq_input(z.view(), codes.view(), &assign, &p0, t);
            loss::mse(decoder.infer(input.view()).view(), x.view()) as f64
                + mean_sq(input.view(), z.view())
                + mean_sq(z.view(), q.view())
        });
        assert!(n > 50);
        // Codebook: the decoder's loss and the double quantization term through the soft
        // one-hot, plus β times the codebook loss.
        let analytic = vq.codebook_grad().unwrap().to_owned();
        check_codes(analytic.view(), &codes, |c| {
            let input = ibq_input(z0.view(), c, &assign, &p0, t);
            loss::mse(decoder.infer(input.view()).view(), x.view()) as f64
                + mean_sq(input.view(), z0.view())
                + beta * assigned_loss(z0.view(), c, &assign)
        });
        // Every code gets a gradient, used or not.
        assert!(analytic
            .outer_iter()
            .all(|g| g.iter().any(|v| v.abs() > 1e-7)));
    }
}

#[test]
fn synchronised_update_passes_nu_of_the_decoder_gradient_to_the_code() {
    let nu = 0.4;
    let Setup { mut ae, vq, x } = setup(Activation::Tanh, Update::Loss, 15);
    let codes = vq.codebook().to_owned();
    let mut ste = Quantizer::new(
        &valid(&config(Activation::Tanh, Update::Loss)),
        codes.clone(),
        ChaCha8Rng::seed_from_u64(0),
    );
    ae.gradients(x.view(), Some(&mut ste));
    let ste_grads = grads_of(&mut ae.encoder);
    let mut cfg = config(Activation::Tanh, Update::Loss);
    cfg.quantizer.sync_nu = nu;
    let mut vq = Quantizer::new(&valid(&cfg), codes.clone(), ChaCha8Rng::seed_from_u64(0));
    let z0 = ae.encoder.infer(x.view());
    let (assign, q) = quantize(&vq, z0.view());
    ae.gradients(x.view(), Some(&mut vq));
    // The encoder's gradient is straight-through's.
    assert_eq!(grads_of(&mut ae.encoder), ste_grads);
    // The codes: the decoder sees q + ν(e_k − sg(e_k)), plus the codebook loss.
    let decoder = ae.decoder.clone();
    let analytic = vq.codebook_grad().unwrap().to_owned();
    check_codes(analytic.view(), &codes, |c| {
        let input = Array2::from_shape_fn(q.raw_dim(), |(i, d)| {
            let k = assign[i];
            q[[i, d]] + nu as f32 * (c[[k, d]] - codes[[k, d]])
        });
        loss::mse(decoder.infer(input.view()).view(), x.view()) as f64
            + assigned_loss(z0.view(), c, &assign)
    });
    assert_ne!(analytic, ste.codebook_grad().unwrap());
}

fn fsq_config(codes: usize) -> RunConfig {
    let mut cfg = config(Activation::Tanh, Update::Loss);
    // FSQ has no codebook to initialise: validation wants its codebook keys at their defaults.
    cfg.quantizer = Default::default();
    cfg.quantizer.kind = "fsq".into();
    cfg.quantizer.codebook_size = codes;
    cfg
}

#[test]
fn fsq_rounds_the_bounded_latent_onto_its_grid() {
    // L = 3 (odd, no offset): b = tanh(z)·1.001, q = round(b) ∈ {−1, 0, 1}.
    let cfg = fsq_config(9);
    let vq = Quantizer::init(&valid(&cfg), Array2::zeros((1, 2)).view(), 0).unwrap();
    let grid = vq.codebook().to_owned();
    assert_eq!(grid.dim(), (9, 2));
    // Index Σ idx_d 3^d with idx_d = level + 1: the first dimension varies fastest.
    assert_eq!(grid.row(0).to_vec(), [-1.0, -1.0]);
    assert_eq!(grid.row(1).to_vec(), [0.0, -1.0]);
    assert_eq!(grid.row(5).to_vec(), [1.0, 0.0]);
    // tanh(0.5) = 0.462 → 0; tanh(0.6) = 0.537 → 1; tanh(−3) → −1.
    let z = Array2::from_shape_vec((2, 2), vec![0.5, 0.6, -3.0, 0.0]).unwrap();
    let (assign, q) = quantize(&vq, z.view());
    assert_eq!(
        q,
        Array2::from_shape_vec((2, 2), vec![0.0, 1.0, -1.0, 0.0]).unwrap()
    );
    // Indices (1, 2) → 1 + 2·3 and (0, 1) → 0 + 1·3.
    assert_eq!(assign, [7, 3]);
    for (i, &k) in assign.iter().enumerate() {
        assert_eq!(grid.row(k), q.row(i));
    }
    // The metrics' embeddings are b in grid units, nearest to each point's own code.
    let b = vq.embedded(z.clone());
    assert!((b[[0, 0]] - 0.5f32.tanh() * 1.001).abs() < 1e-6);
    // L = 8 (even): h = 3.5035, o = ½, b = tanh(z + atanh(o/h))·h − o, q = round(b)/4; z = 0
    // sits at b = 0, the level of index 4.
    let vq = Quantizer::init(&valid(&fsq_config(64)), Array2::zeros((1, 2)).view(), 0).unwrap();
    let z = Array2::from_shape_vec((1, 2), vec![0.0, 100.0]).unwrap();
    let (assign, q) = quantize(&vq, z.view());
    assert_eq!(q.row(0).to_vec(), [0.0, 0.75]);
    // Indices (4, 7) → 4 + 7·8.
    assert_eq!(assign, [60]);
    assert_eq!(vq.codebook().nrows(), 64);
    assert_eq!(vq.codebook().row(assign[0]), q.row(0));
}

#[test]
fn fsq_has_no_codebook_loss_and_never_moves_its_grid() {
    let cfg = fsq_config(64);
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    let mut ae = Autoencoder::new(&valid(&cfg), &mut rng);
    let x: Array2<f32> = Array2::random_using((16, 3), StandardNormal, &mut rng);
    let mut vq = Quantizer::init(&valid(&cfg), ae.encoder.infer(x.view()).view(), 0).unwrap();
    let grid = vq.codebook().to_owned();
    let z = ae.encoder.infer(x.view());
    let (_, q) = quantize(&vq, z.view());
    let recon = loss::mse(ae.decoder.infer(q.view()).view(), x.view());
    let loss = ae.step(x.view(), Some(&mut vq));
    assert!((loss - recon).abs() < 1e-6, "{loss} vs {recon}");
    assert_eq!(vq.codebook(), grid);
    assert!(vq.codebook_grad().is_none());
    assert_eq!(vq.after_epoch(1), 0);
}

#[test]
fn fsq_backward_matches_finite_differences() {
    for (seed, codes) in [(17, 64), (18, 125)] {
        let mut cfg = fsq_config(codes);
        if codes == 125 {
            cfg.model.latent_dim = 3;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut ae = Autoencoder::new(&valid(&cfg), &mut rng);
        let x: Array2<f32> = Array2::random_using((16, 3), StandardNormal, &mut rng);
        let z0 = ae.encoder.infer(x.view());
        let mut vq = Quantizer::init(&valid(&cfg), z0.view(), 0).unwrap();
        let (_, q) = quantize(&vq, z0.view());
        // Straight-through the rounding: the decoder sees q + b(z)/⌊L/2⌋ − sg(b(z)/⌊L/2⌋).
        let b0 = vq.embedded(z0.clone());
        ae.gradients(x.view(), Some(&mut vq));
        let enc_grads = grads_of(&mut ae.encoder);
        let decoder = ae.decoder.clone();
        let mut enc = ae.encoder.clone();
        let n = check_net("encoder (fsq)", &mut enc, &enc_grads, |e| {
            let b = vq.embedded(e.infer(x.view()));
            let input = &q + &(&b - &b0);
            loss::mse(decoder.infer(input.view()).view(), x.view()) as f64
        });
        assert!(n > 50);
    }
}

#[test]
fn entropy_loss_stays_finite_when_a_code_is_out_of_float_reach() {
    // Sixteen points on code A = (0, 0); code B at distance 1.025, so the margin is 1.025² and
    // τ = 0.01 of it gives p_iB = e^−100 ≈ 4·10⁻⁴⁴ > 0, whose batch mean p_iB/16 rounds to 0
    // in f32. Every point is certain of A and the batch uses A alone: loss 0, gradients 0.
    // Version 2 took ln 0 here and gave infinite gradients (every zoo run of the entropy loss
    // diverged).
    let mut cfg = config(Activation::Tanh, Update::Loss);
    cfg.quantizer.codebook_size = 2;
    cfg.quantizer.beta = 0.0;
    cfg.quantizer.params.set("entropy_weight", 1.0);
    cfg.quantizer.params.set("entropy_temperature", 0.01);
    let codes = Array2::from_shape_vec((2, 2), vec![0.0, 0.0, 1.025, 0.0]).unwrap();
    let mut vq = Quantizer::new(&valid(&cfg), codes, ChaCha8Rng::seed_from_u64(0));
    let z = Array2::<f32>::zeros((16, 2));
    let (assign, q) = quantize(&vq, z.view());
    assert_eq!(assign, [0; 16]);
    let loss = vq.loss(z.view(), q.view(), &assign);
    assert!(loss.abs() < 1e-6, "{loss}");
    let mut g_z = Array2::zeros(z.raw_dim());
    vq.backward(
        z.view(),
        q.view(),
        &assign,
        Array2::zeros(z.raw_dim()).view(),
        g_z.view_mut(),
    );
    let grad = vq.codebook_grad().unwrap();
    assert!(
        g_z.iter().chain(grad.iter()).all(|g| g.abs() < 1e-6),
        "{g_z} {grad}"
    );
}

#[test]
fn residual_backward_matches_finite_differences() {
    // Three levels: level l quantizes r_l = z − Σ_{j<l} sg(e_j), and the decoder sees
    // q = Σ_l e_l straight-through once, so the encoder's surrogate is
    //   mse(dec(z + c), x) + β Σ_l mean‖r_l(z) − e_l‖²,  c = q − z and the e_l frozen,
    // and level l's codebook gets the gradient of mean‖sg(r_l) − e_l‖² alone.
    let levels = 3;
    let mut cfg = config(Activation::Tanh, Update::Loss);
    cfg.quantizer.params.set("residual_levels", levels as i64);
    let beta = cfg.quantizer.beta;
    let run = valid(&cfg);
    let Setup { x, .. } = setup(Activation::Tanh, Update::Loss, 6);
    // The same networks as `setup`'s, with room for every level's codes.
    let mut ae = Autoencoder::new(&run, &mut ChaCha8Rng::seed_from_u64(6));
    let z0 = ae.encoder.infer(x.view());
    // Each level's codes spread over the residuals the levels before it leave.
    let mut residual = z0.clone();
    let mut codebooks = Vec::new();
    let mut inputs = Vec::new();
    for l in 0..levels {
        // Offsets shrinking with the residuals, so that the codes stay apart from each other.
        let offset = 0.05 * 0.2f32.powi(l);
        let codes = Array2::from_shape_fn((6, 2), |(k, j)| residual[[2 * k + 1, j]] + offset);
        let one = Quantizer::new(
            &valid(&config(Activation::Tanh, Update::Loss)),
            codes.clone(),
            ChaCha8Rng::seed_from_u64(0),
        );
        let (assign, e) = quantize(&one, residual.view());
        several_codes_in_use(&assign, &format!("level {l}"));
        inputs.push((residual.clone(), assign, e.clone()));
        residual = &residual - &e;
        codebooks.push(codes);
    }
    let mut vq = Quantizer::from_levels(&run, codebooks.clone(), ChaCha8Rng::seed_from_u64(0));
    let (assign, q) = quantize(&vq, z0.view());
    // The residual quantizer finds the levels found one by one above, and sums their codes.
    for (l, (_, a, _)) in inputs.iter().enumerate() {
        assert_eq!(&assign[l * 16..(l + 1) * 16], &a[..], "level {l}");
    }
    let sum = inputs
        .iter()
        .fold(Array2::<f32>::zeros(z0.raw_dim()), |s, (_, _, e)| s + e);
    assert_eq!(q, sum);

    ae.gradients(x.view(), Some(&mut vq));
    let (enc_grads, dec_grads) = (grads_of(&mut ae.encoder), grads_of(&mut ae.decoder));
    let mut dec = ae.decoder.clone();
    check_net("decoder", &mut dec, &dec_grads, |d| {
        loss::mse(d.infer(q.view()).view(), x.view()) as f64
    });
    let c = &q - &z0;
    let decoder = ae.decoder.clone();
    let mut enc = ae.encoder.clone();
    let n = check_net("encoder", &mut enc, &enc_grads, |e| {
        let z = e.infer(x.view());
        let recon = decoder.infer((&z + &c).view());
        let mut loss = loss::mse(recon.view(), x.view()) as f64;
        let mut r = z.clone();
        for (_, _, e) in &inputs {
            loss += beta * mean_sq(r.view(), e.view());
            r = &r - e;
        }
        loss
    });
    assert!(n > 50);
    for (l, (r, a, _)) in inputs.iter().enumerate() {
        let analytic = vq.level(l).codebook_grad().unwrap().to_owned();
        check_codes(analytic.view(), &codebooks[l], |c| {
            assigned_loss(r.view(), c, a)
        });
        assert!(
            analytic.iter().any(|g| g.abs() > 1e-3),
            "level {l}: codebook gradient is trivially zero"
        );
    }
}

/// A gradient check through the codebook means little unless at least 3 codes are in use.
fn several_codes_in_use(assign: &[usize], what: &str) {
    let used = assign
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    assert!(used >= 3, "{what} needs several codes in use, has {used}");
}

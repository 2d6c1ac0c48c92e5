//! Remedies as their authors built them: known answers that tell each reference's rule from
//! the variant vqsim ran before (results version 4), through the quantizer's public hooks.

use ndarray::{array, Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use vqsim::sim::config::{Init, RunConfig};
use vqsim::sim::valid::validate;
use vqsim::sim::vq::Quantizer;

fn quantizer(cfg: &RunConfig, codes: Array2<f32>) -> Quantizer {
    let cfg = validate(cfg, None).expect("a valid configuration");
    Quantizer::new(&cfg, codes, ChaCha8Rng::seed_from_u64(0))
}

/// Nearest code of every row (of every residual level, level-major), and what the decoder sees.
fn quantize(vq: &Quantizer, z: ArrayView2<f32>) -> (Vec<usize>, Array2<f32>) {
    let mut assign = vec![0; z.nrows() * vq.levels()];
    let mut q = Array2::zeros(z.raw_dim());
    vq.quantize(z, &mut assign, q.view_mut(), &mut Default::default());
    (assign, q)
}

/// The gradient that reaches z and the codebook's gradient, for the decoder's gradient `g_q`.
fn backward(
    vq: &mut Quantizer,
    z: ArrayView2<f32>,
    g_q: ArrayView2<f32>,
) -> (Array2<f32>, Array2<f32>) {
    let (assign, q) = quantize(vq, z);
    vq.loss(z, q.view(), &assign);
    let mut g_z = Array2::zeros(z.raw_dim());
    vq.backward(z, q.view(), &assign, g_q, g_z.view_mut());
    (g_z, vq.codebook_grad().unwrap().to_owned())
}

/// Four clusters of 16 points (spread 0.3 around (±2, ±2)) and 8 codes: 4 near the clusters,
/// 4 off them.
fn points_and_codes() -> (Array2<f32>, Array2<f32>) {
    let centres = [[2.0f32, 2.0], [-2.0, 2.0], [-2.0, -2.0], [2.0, -2.0]];
    let z = Array2::from_shape_fn((64, 2), |(i, j)| {
        let jitter = [(i % 4) as f32 - 1.5, ((i / 4) % 4) as f32 - 1.5];
        centres[i / 16][j] + 0.2 * jitter[j]
    });
    let codes = array![
        [1.8f32, 2.1],
        [-2.1, 1.9],
        [-1.9, -2.2],
        [2.2, -1.8],
        [0.0, 0.5],
        [0.5, 0.0],
        [0.0, -0.5],
        [3.5, 0.0]
    ];
    (z, codes)
}

/// H(mean_i p_i) with p_ij = softmax_j(−‖z_i − e_j‖²/D), D the mean squared distance to the
/// nearest code: the batch entropy the loss raises, measured at the data's own scale.
fn batch_entropy(z: ArrayView2<f32>, codes: ArrayView2<f32>) -> f64 {
    let d2: Vec<Vec<f64>> = z
        .outer_iter()
        .map(|zi| {
            codes
                .outer_iter()
                .map(|e| {
                    zi.iter()
                        .zip(e)
                        .map(|(a, b)| ((a - b) as f64).powi(2))
                        .sum()
                })
                .collect()
        })
        .collect();
    let scale = d2
        .iter()
        .map(|r| r.iter().copied().fold(f64::INFINITY, f64::min))
        .sum::<f64>()
        / d2.len() as f64;
    let mut mean = vec![0.0; codes.nrows()];
    for r in &d2 {
        let l: Vec<f64> = r.iter().map(|d| -d / scale).collect();
        let max = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = l.iter().map(|v| (v - max).exp()).sum();
        for (m, v) in mean.iter_mut().zip(&l) {
            *m += (v - max).exp() / total / d2.len() as f64;
        }
    }
    mean.iter().filter(|&&p| p > 0.0).map(|p| -p * p.ln()).sum()
}

/// The entropy loss at its default temperature acts, and acts the same at any latent scale:
/// gradient steps on the codes along the entropy term alone (its codebook gradient with the
/// weight on, minus with it off) raise the batch entropy by the same amount whether the
/// latents span ±2 or ±200. Version 4's τ = 0.01 on raw distances made p one-hot here, and
/// the batch entropy did not move.
#[test]
fn entropy_loss_raises_the_batch_entropy_at_any_latent_scale() {
    let (z1, codes1) = points_and_codes();
    let mut rises = Vec::new();
    for scale in [1.0f32, 100.0] {
        let z = &z1 * scale;
        let mut codes = &codes1 * scale;
        let before = batch_entropy(z.view(), codes.view());
        for _ in 0..30 {
            let grad = |w: f64| {
                let mut cfg = RunConfig::default();
                cfg.quantizer.codebook_size = 8;
                cfg.quantizer.params.set("entropy_weight", w);
                let mut vq = quantizer(&cfg, codes.clone());
                backward(&mut vq, z.view(), Array2::zeros(z.raw_dim()).view()).1
            };
            let entropy_grad = grad(1.0) - grad(0.0);
            // The loss is scale-free, so its gradient scales as 1/scale: a step of
            // 0.5·scale² along it moves the codes the same share of the scale.
            codes.scaled_add(-0.5 * scale * scale, &entropy_grad);
        }
        let after = batch_entropy(z.view(), codes.view());
        rises.push(after - before);
    }
    // Measured: 8.1e-5 nats at both scales (version 4: exactly 0, the softmax was one-hot).
    assert!(rises[0] > 1e-5, "the batch entropy rises: {rises:?}");
    // Equal up to f32 rounding (measured 0.3% apart).
    assert!((rises[0] - rises[1]).abs() < 1e-2 * rises[0], "{rises:?}");
}

/// IBQ's soft one-hot carries the decoder's gradient to z at any latent scale: its share of
/// ∂L/∂z (the backward with the decoder's gradient minus without it) is the same for the same
/// decoder gradient whether the latents span ±2 or ±200, as a scale-free temperature makes it
/// (p depends on z/scale only; ∂L/∂z = (2/T)Σ_j γ_j e_j with γ and e ∝ scale, T ∝ scale²).
/// Version 4's temperature 1 on squared distances gave a one-hot softmax and no gradient.
#[test]
fn ibq_passes_the_decoder_gradient_to_the_encoder_at_any_latent_scale() {
    let (z1, codes1) = points_and_codes();
    let g_q = Array2::from_shape_fn(z1.raw_dim(), |(i, j)| ((i * 7 + j * 3) % 5) as f32 - 2.0);
    let mut cfg = RunConfig::default();
    cfg.quantizer.codebook_size = 8;
    cfg.quantizer.estimator = "ibq".into();
    let mut norms = Vec::new();
    for scale in [1.0f32, 100.0] {
        let z = &z1 * scale;
        let mut vq = quantizer(&cfg, &codes1 * scale);
        let with = backward(&mut vq, z.view(), g_q.view()).0;
        let without = backward(&mut vq, z.view(), Array2::zeros(z.raw_dim()).view()).0;
        let decoder_part = (&with - &without).iter().map(|v| v * v).sum::<f32>().sqrt();
        norms.push(decoder_part);
    }
    assert!(norms[0] > 1e-2, "{norms:?}");
    assert!((norms[0] - norms[1]).abs() < 1e-2 * norms[0], "{norms:?}");
}

/// SimVQ's codebook is the authors' frozen N(0, 1/c) basis times a learned Linear with bias:
/// it starts near the origin whatever `quantizer.init` fits, and is the same for a seed.
/// Version 4 used the k-means codebook as the basis (codes at the data, here near (100, 100)).
#[test]
fn simvq_starts_from_the_authors_random_basis_not_from_quantizer_init() {
    let mut cfg = RunConfig::default();
    cfg.quantizer.codebook_size = 16;
    cfg.quantizer.init = Init::Kmeans;
    cfg.quantizer.parameterization = "simvq".into();
    let cfg = validate(&cfg, None).unwrap();
    let z = Array2::from_shape_fn((200, 2), |(i, j)| 100.0 + (i * (j + 1) % 17) as f32);
    let vq = Quantizer::init(&cfg, z.view(), 4).unwrap();
    let cb = vq.codebook().to_owned();
    // |C·W + b| ≤ ‖C_k‖·‖W‖ + |b|: a few units at most with c = 2.
    assert!(cb.iter().all(|v| v.abs() < 5.0), "{cb}");
    assert!(cb.outer_iter().any(|r| r != cb.row(0)), "distinct codes");
    assert_eq!(Quantizer::init(&cfg, z.view(), 4).unwrap().codebook(), cb);
    assert_ne!(Quantizer::init(&cfg, z.view(), 5).unwrap().codebook(), cb);
}

/// `affine` is vqtorch's learned scale and shift: a batch sitting exactly on code 0 gives no
/// gradient, so no code moves. Version 4's running statistics rescaled every code to the
/// batch's spread (here 0: every code collapsed onto the batch mean); that rule is now
/// `affine_running`.
#[test]
fn affine_is_learned_and_running_statistics_are_their_own_choice() {
    let codes = array![[0.0f32, 0.0], [3.0, 1.0], [-2.0, 4.0], [1.0, -3.0]];
    let z = Array2::from_shape_fn((8, 2), |(_, j)| codes[[0, j]]);
    let step = |p: &str| {
        let mut cfg = RunConfig::default();
        cfg.quantizer.codebook_size = 4;
        cfg.quantizer.parameterization = p.into();
        let mut vq = quantizer(&cfg, codes.clone());
        let (assign, _) = quantize(&vq, z.view());
        backward(&mut vq, z.view(), Array2::zeros(z.raw_dim()).view());
        vq.after_step(z.view(), &assign);
        vq.codebook().to_owned()
    };
    assert_eq!(step("affine"), codes);
    let running = step("affine_running");
    assert!(running.iter().all(|v| v.abs() < 1e-6), "{running}");
    // Off by one unit: the learned shift moves the codes that were never selected too.
    let mut cfg = RunConfig::default();
    cfg.quantizer.codebook_size = 4;
    cfg.quantizer.parameterization = "affine".into();
    let mut vq = quantizer(&cfg, codes.clone());
    let off = &z + &array![1.0f32, 0.0];
    let (assign, _) = quantize(&vq, off.view());
    assert_eq!(assign, [0; 8]);
    backward(&mut vq, off.view(), Array2::zeros(off.raw_dim()).view());
    vq.after_step(off.view(), &assign);
    for k in 1..4 {
        assert!(
            vq.codebook()[[k, 0]] > codes[[k, 0]],
            "code {k}: {}",
            vq.codebook()
        );
        assert_eq!(
            vq.codebook()[[k, 1]],
            codes[[k, 1]],
            "code {k}: no gradient in y"
        );
    }
}

/// `quantizer.lr_scale` multiplies the codebook optimizer's rate: Adam's first step moves each
/// coordinate of a code by exactly its learning rate, here train.lr × lr_scale.
#[test]
fn lr_scale_multiplies_the_codebook_learning_rate() {
    for scale in [1.0, 10.0, 100.0] {
        let mut cfg = RunConfig::default();
        cfg.quantizer.codebook_size = 2;
        cfg.quantizer.lr_scale = scale;
        let codes = array![[0.0f32, 0.0], [5.0, 5.0]];
        let mut vq = quantizer(&cfg, codes.clone());
        let z = array![[1.0f32, -1.0]];
        backward(&mut vq, z.view(), Array2::zeros(z.raw_dim()).view());
        vq.after_step(z.view(), &[0]);
        let step = (cfg.train.lr * scale) as f32;
        let moved = vq.codebook().to_owned() - &codes;
        for (got, want) in moved.row(0).iter().zip([step, -step]) {
            assert!(
                (got - want).abs() < 1e-3 * step,
                "lr_scale {scale}: {moved}"
            );
        }
        assert_eq!(moved.row(1), array![0.0f32, 0.0]);
    }
}

/// Residual VQ: four clusters at (±10, ±1) and two codes per level. Level 1's k-means splits
/// them by the first coordinate, leaving residuals (0, ±1) for level 2's k-means, which the two
/// levels together then quantize exactly, where one codebook of two codes leaves an error of 1.
#[test]
fn residual_levels_initialise_on_what_the_levels_before_leave() {
    let z = Array2::from_shape_fn((100, 2), |(i, j)| match j {
        0 => [-10.0f32, 10.0][i % 2],
        _ => [-1.0f32, 1.0][(i / 2) % 2],
    });
    let mut cfg = RunConfig::default();
    cfg.quantizer.codebook_size = 2;
    cfg.quantizer.init = Init::Kmeans;
    let one = Quantizer::init(&validate(&cfg, None).unwrap(), z.view(), 7).unwrap();
    cfg.quantizer.params.set("residual_levels", 2);
    let two = Quantizer::init(&validate(&cfg, None).unwrap(), z.view(), 7).unwrap();
    // Level 1 is the single codebook, drawn from the same stream.
    assert_eq!(two.codebook(), one.codebook());
    let sorted = |cb: ArrayView2<f32>| {
        let mut rows: Vec<[f32; 2]> = cb.outer_iter().map(|r| [r[0], r[1]]).collect();
        rows.sort_by(|a, b| a.partial_cmp(b).unwrap());
        rows
    };
    let near = |a: [f32; 2], b: [f32; 2]| (a[0] - b[0]).abs() < 1e-3 && (a[1] - b[1]).abs() < 1e-3;
    let [a, b] = sorted(two.codebook())[..] else {
        panic!()
    };
    assert!(near(a, [-10.0, 0.0]) && near(b, [10.0, 0.0]), "{a:?} {b:?}");
    let [a, b] = sorted(two.level(1).codebook())[..] else {
        panic!()
    };
    assert!(near(a, [0.0, -1.0]) && near(b, [0.0, 1.0]), "{a:?} {b:?}");
    let error = |vq: &Quantizer| {
        let (_, q) = quantize(vq, z.view());
        (&z - &q).mapv(|v| v * v).sum() / 100.0
    };
    assert!((error(&one) - 1.0).abs() < 1e-3, "{}", error(&one));
    assert!(error(&two) < 1e-5, "{}", error(&two));
}

/// Each residual level updates as a codebook of its own fed its own residuals: the EMA rule at
/// level 2 sees z − e_1, not z.
#[test]
fn residual_levels_update_on_their_own_residuals() {
    let mut cfg = RunConfig::default();
    cfg.quantizer.codebook_size = 2;
    cfg.quantizer.update = vqsim::sim::config::Update::Ema;
    cfg.quantizer.ema_decay = 0.5;
    let single = validate(&cfg, None).unwrap();
    cfg.quantizer.params.set("residual_levels", 2);
    let run = validate(&cfg, None).unwrap();
    let first = array![[1.0f32, 1.0], [10.0, 10.0]];
    let second = array![[0.0f32, 0.0], [3.0, 3.0]];
    let mut vq = Quantizer::from_levels(
        &run,
        vec![first.clone(), second.clone()],
        ChaCha8Rng::seed_from_u64(0),
    );
    let z = array![[1.0f32, 2.0], [3.0, 4.0]];
    let (assign, q) = quantize(&vq, z.view());
    // Residuals (0, 1) and (2, 3): codes 0 and 1 of level 2.
    assert_eq!(assign, [0, 0, 0, 1]);
    assert_eq!(q, array![[1.0f32, 1.0], [4.0, 4.0]]);
    vq.loss(z.view(), q.view(), &assign);
    vq.after_step(z.view(), &assign);
    let mut one = Quantizer::new(&single, first, ChaCha8Rng::seed_from_u64(0));
    one.after_step(z.view(), &[0, 0]);
    let mut two = Quantizer::new(&single, second.clone(), ChaCha8Rng::seed_from_u64(0));
    two.after_step(array![[0.0f32, 1.0], [2.0, 3.0]].view(), &[0, 1]);
    assert_eq!(vq.codebook(), one.codebook());
    assert_eq!(vq.level(1).codebook(), two.codebook());
    assert_ne!(vq.level(1).codebook(), second, "level 2 moved");
}

//! Dead-code restarts (`quantizer.restart`): known answers on hand-made batches for each rule,
//! and a short real training run in which restarts keep the codebook in use.

use std::sync::atomic::AtomicBool;

use ndarray::{array, Array2, ArrayView1, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use vqsim::sim::checked::ValidRun;
use vqsim::sim::config::{Init, RunConfig, ScheduleKind, Update};
use vqsim::sim::train::run;
use vqsim::sim::valid::validate;
use vqsim::sim::vq::Quantizer;

/// `cfg` validated: the form the model, the quantizer and training accept.
fn valid(cfg: &RunConfig) -> ValidRun {
    validate(cfg, None).unwrap()
}

fn config(restart: String, update: Update) -> RunConfig {
    let mut cfg = RunConfig::default();
    cfg.model.latent_dim = 2;
    cfg.quantizer.restart = restart;
    cfg.quantizer.update = update;
    cfg
}

fn quantizer(cfg: &RunConfig, codes: Array2<f32>) -> Quantizer {
    Quantizer::new(&valid(cfg), codes, ChaCha8Rng::seed_from_u64(3))
}

/// Whether `code` is exactly one of the rows of `z`.
fn is_row_of(code: ArrayView1<f32>, z: ArrayView2<f32>) -> bool {
    z.outer_iter().any(|row| row == code)
}

// With `update = "loss"` and no backward yet the codebook's gradient is zero, so its Adam step
// leaves the codes where they are and only the restart moves them.

#[test]
fn threshold_restarts_codes_whose_usage_ema_falls_below_it() {
    let mut cfg = config("threshold".into(), Update::Loss);
    cfg.quantizer.params.set("restart_threshold", 0.6);
    cfg.quantizer.params.set("restart_decay", 0.5);
    cfg.train.batch_size = 4;
    let codes = array![[0.0, 0.0], [5.0, 5.0], [9.0, 9.0]];
    let mut vq = quantizer(&cfg, codes.clone());
    let z = array![[0.1, 0.0], [0.0, 0.2], [0.3, 0.1], [5.0, 5.1]];
    // Usage is in shares of the expected b/S = 4/3 points and starts at the threshold 0.6
    // (Jukebox's init_k): counts (3, 1, 0) are shares (2.25, 0.75, 0), so usage =
    // 0.5·0.6 + 0.5·(2.25, 0.75, 0) = (1.425, 0.675, 0.3). Only code 2 is below 0.6.
    vq.after_step(z.view(), &[0, 0, 0, 1]);
    let after = vq.codebook().to_owned();
    assert_eq!(after.row(0), codes.row(0));
    assert_eq!(after.row(1), codes.row(1));
    assert!(is_row_of(after.row(2), z.view()), "{after}");
    assert_eq!(vq.after_epoch(1), 1);
    // Code 2 keeps its count, as in Jukebox: one more step without it takes it to 0.15 and
    // redraws it, and code 1, unused too, falls to 0.5·0.675 < 0.6.
    vq.after_step(z.view(), &[0, 0, 0, 0]);
    assert_eq!(vq.after_epoch(2), 2);
    assert_eq!(vq.codebook().row(0), codes.row(0));
}

#[test]
fn threshold_restart_picks_distinct_rows() {
    let mut cfg = config("threshold".into(), Update::Loss);
    cfg.quantizer.params.set("restart_decay", 0.0);
    cfg.train.batch_size = 4;
    let codes = Array2::zeros((4, 2));
    let mut vq = quantizer(&cfg, codes);
    let z = array![[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0]];
    // Decay 0: usage is this batch's share, so the three codes without points restart. The
    // batch has as many rows as there are codes: no tiling, no noise.
    vq.after_step(z.view(), &[0, 0, 0, 0]);
    let cb = vq.codebook().to_owned();
    assert_eq!(cb.row(0), array![0.0, 0.0]);
    let mut picked: Vec<f32> = (1..4).map(|k| cb[[k, 0]]).collect();
    picked.sort_by(f32::total_cmp);
    picked.dedup();
    assert_eq!(picked.len(), 3, "three different rows: {cb}");
    assert!((1..4).all(|k| is_row_of(cb.row(k), z.view())));
}

/// The last, short batch of an epoch moves the usage averages but reseeds no code.
#[test]
fn threshold_restart_never_reseeds_from_a_short_batch() {
    let mut cfg = config("threshold".into(), Update::Loss);
    cfg.quantizer.codebook_size = 64;
    cfg.quantizer.params.set("restart_decay", 0.0);
    cfg.train.batch_size = 256;
    let codes = Array2::from_shape_fn((64, 2), |(k, j)| (k * 2 + j) as f32);
    let mut vq = quantizer(&cfg, codes.clone());
    // 16 rows on code 0: with decay 0 the other 63 codes have usage 0.
    let z = Array2::from_elem((16, 2), 0.5f32);
    vq.after_step(z.view(), &[0; 16]);
    assert_eq!(vq.after_epoch(1), 0);
    assert_eq!(vq.codebook(), codes);
    // A full batch on code 0 restarts the 63 others.
    let z = Array2::from_elem((256, 2), 0.5f32);
    vq.after_step(z.view(), &[0; 256]);
    assert_eq!(vq.after_epoch(2), 63);
}

/// More dead codes than rows: the rows are tiled with Jukebox's noise, so no two restarted
/// codes coincide (exact duplicates would split their points and one would die again).
#[test]
fn threshold_restart_tiles_rows_with_noise_when_codes_outnumber_them() {
    let mut cfg = config("threshold".into(), Update::Loss);
    cfg.quantizer.codebook_size = 32;
    cfg.quantizer.params.set("restart_decay", 0.0);
    cfg.train.batch_size = 4;
    let mut vq = quantizer(&cfg, Array2::zeros((32, 2)));
    let z = array![[10.0, 0.0], [-10.0, 0.0], [0.0, 10.0], [0.0, -10.0]];
    vq.after_step(z.view(), &[0; 4]);
    assert_eq!(vq.after_epoch(1), 31);
    let cb = vq.codebook().to_owned();
    for k in 1..32 {
        for l in 1..k {
            assert_ne!(cb.row(k), cb.row(l), "codes {k} and {l}: {cb}");
        }
        // Near a row: the noise is 0.01·prenorm/√m ≈ 0.05 here.
        let near = z
            .outer_iter()
            .any(|r| r.iter().zip(cb.row(k)).all(|(a, b)| (a - b).abs() < 0.5));
        assert!(near, "code {k}: {}", cb.row(k));
    }
}

#[test]
fn lru_replaces_a_code_unused_for_timeout_steps() {
    let mut cfg = config("lru".into(), Update::Loss);
    cfg.quantizer.params.set("lru_timeout", 2);
    cfg.quantizer.params.set("lru_jitter", 0.0);
    let codes = array![[0.0, 0.0], [5.0, 5.0], [9.0, 9.0]];
    let mut vq = quantizer(&cfg, codes.clone());
    let z = array![[0.1, 0.0], [5.0, 5.1]];
    // Countdowns (2, 2, 2) → step 1 uses code 0: (2, 1, 1); nothing reaches 0.
    vq.after_step(z.view(), &[0, 0]);
    assert_eq!(vq.codebook(), codes);
    // Step 2 uses codes 0 and 1: (2, 2, 0) → code 2 is replaced by a row of the batch.
    vq.after_step(z.view(), &[0, 1]);
    let cb = vq.codebook().to_owned();
    assert_eq!(cb.row(0), codes.row(0));
    assert_eq!(cb.row(1), codes.row(1));
    assert!(is_row_of(cb.row(2), z.view()), "{cb}");
    assert_eq!(vq.after_epoch(1), 1);
    // Its countdown restarted at 2: one unused step is not enough.
    vq.after_step(z.view(), &[0, 1]);
    assert_eq!(vq.after_epoch(2), 0);
}

#[test]
fn lru_jitter_is_relative_to_the_row_norm() {
    let mut cfg = config("lru".into(), Update::Loss);
    cfg.quantizer.params.set("lru_timeout", 1);
    let rho = 1e-3;
    cfg.quantizer.params.set("lru_jitter", rho);
    // 400 dead codes land on rows of norm 50 and of norm 0.5; jitter of std ρ‖row‖ per
    // coordinate gives E‖offset‖² = 2(ρ‖row‖)² at both norms, which an absolute jitter of ρ
    // (ratio 0.0008 at norm 50, 8 at norm 0.5) or none (0) cannot.
    let mut vq = quantizer(&cfg, Array2::zeros((401, 2)));
    let z = Array2::from_shape_fn((100, 2), |(i, c)| {
        let v = if c == 0 { 3.0 } else { 4.0 };
        if i % 2 == 0 {
            10.0 * v
        } else {
            0.1 * v
        }
    });
    vq.after_step(z.view(), &[0; 100]);
    for norm in [50.0f32, 0.5] {
        let base = [0.6 * norm, 0.8 * norm];
        let ratios: Vec<f32> = vq
            .codebook()
            .outer_iter()
            .skip(1)
            .map(|c| (c[0] - base[0]).powi(2) + (c[1] - base[1]).powi(2))
            .filter(|&d2| d2 < (0.1 * norm).powi(2))
            .map(|d2| d2 / (rho as f32 * norm).powi(2))
            .collect();
        let mean = ratios.iter().sum::<f32>() / ratios.len() as f32;
        assert!(ratios.len() > 150, "norm {norm}: {} codes", ratios.len());
        assert!((1.6..2.4).contains(&mean), "norm {norm}: mean ratio {mean}");
    }
}

#[test]
fn kmeans_reinit_replaces_the_codebook_every_n_epochs() {
    let mut cfg = config("kmeans".into(), Update::Loss);
    cfg.quantizer.params.set("kmeans_every", 2);
    let codes = array![[0.0, 0.0], [0.1, 0.1]];
    let mut vq = quantizer(&cfg, codes.clone());
    // Two tight clusters around (−4, 0) and (6, 2).
    let z = array![
        [-4.1, 0.0],
        [-3.9, 0.0],
        [-4.0, 0.1],
        [-4.0, -0.1],
        [6.0, 2.2],
        [6.0, 1.8]
    ];
    vq.after_step(z.view(), &[0; 6]);
    assert_eq!(vq.after_epoch(1), 0, "epoch 1 is not a multiple of 2");
    assert_eq!(vq.codebook(), codes);
    assert_eq!(vq.after_epoch(2), 2, "a re-init restarts every code");
    let mut cb: Vec<[f32; 2]> = vq.codebook().outer_iter().map(|r| [r[0], r[1]]).collect();
    cb.sort_by(|a, b| a[0].total_cmp(&b[0]));
    for (c, want) in cb.iter().zip([[-4.0, 0.0], [6.0, 2.0]]) {
        assert!(
            (c[0] - want[0]).abs() < 1e-2 && (c[1] - want[1]).abs() < 1e-2,
            "{cb:?}"
        );
    }
}

/// Łańcucki et al. re-initialise early in training only (DistSup stops after a third of the
/// epochs or less): with 30 epochs and a re-init every 5, the last one is at epoch 10, and the
/// decoder trains 20 more epochs with the codebook it is measured with.
#[test]
fn kmeans_reinit_stops_after_the_first_third_of_training() {
    let mut cfg = config("kmeans".into(), Update::Loss);
    cfg.quantizer.params.set("kmeans_every", 5);
    cfg.train.epochs = 30;
    let mut vq = quantizer(&cfg, array![[0.0, 0.0], [0.1, 0.1]]);
    let z = array![[-4.0, 0.0], [-4.1, 0.0], [6.0, 2.0], [6.1, 2.0]];
    let fired: Vec<usize> = (1..=30)
        .filter(|&epoch| {
            vq.after_step(z.view(), &[0; 4]);
            vq.after_epoch(epoch) > 0
        })
        .collect();
    assert_eq!(fired, [5, 10]);
}

#[test]
fn a_restart_resets_the_ema_statistics_of_the_code() {
    // EMA codebook, decay 0.5; threshold restart with decay 0 restarts code 1 (no points).
    let mut cfg = config("threshold".into(), Update::Ema);
    cfg.quantizer.ema_decay = 0.5;
    cfg.quantizer.params.set("restart_decay", 0.0);
    cfg.train.batch_size = 1;
    let mut vq = quantizer(&cfg, array![[0.0, 0.0], [10.0, 10.0]]);
    let z = array![[2.0, 2.0]];
    vq.after_step(z.view(), &[0]);
    // EMA: N = (0.5·1 + 0.5·1, 0.5·1) = (1, 0.5), m_0 = (1, 1), m_1 = (5, 5); then code 1
    // restarts at z_0 = (2, 2) with N_1 = 1, m_1 = (2, 2).
    assert_eq!(vq.codebook().row(1), array![2.0, 2.0]);
    // Next step, code 0 takes the point again (code 1 keeps none but is restarted again):
    // N = (0.5·1 + 0.5, 0.5·1) = (1, 0.5), m_0 = 0.5·(1,1) + 0.5·(2,2) = (1.5, 1.5),
    // e_0 = m_0 / Ñ_0 with Laplace Ñ_0 = (1 + ε)/(1.5 + 2ε)·1.5.
    vq.after_step(z.view(), &[0]);
    let eps = 1e-5_f32;
    let smoothed = (1.0 + eps) / (1.5 + 2.0 * eps) * 1.5;
    let e0 = vq.codebook()[[0, 0]];
    assert!((e0 - 1.5 / smoothed).abs() < 1e-6, "{e0}");
}

#[test]
fn no_restart_leaves_codes_and_counts_zero() {
    let cfg = config("none".into(), Update::Loss);
    let codes = array![[0.0, 0.0], [9.0, 9.0]];
    let mut vq = quantizer(&cfg, codes.clone());
    vq.after_step(array![[0.1, 0.1]].view(), &[0]);
    assert_eq!(vq.after_epoch(1), 0);
    assert_eq!(vq.codebook(), codes);
}

/// A scenario nobody tuned: 7 modes in 3 dimensions, 48 codes, quantized from the first step
/// on the untrained encoder's k-means codebook; batches of 64 give 792 steps. A dead code's
/// usage average (decay 0.99) falls from its expected share to the threshold 0.25 in about 140
/// steps, and a restarted code gets as long again, so the rule needs several such rounds: at
/// 8 epochs (264 steps) it had one, and seed 0 ended with 6 codes in use.
fn untuned(restart: String) -> RunConfig {
    let mut cfg = RunConfig::default();
    cfg.data.modes = 7;
    cfg.data.dim = 3;
    cfg.data.points_per_mode = 300;
    cfg.model.latent_dim = 3;
    cfg.quantizer.codebook_size = 48;
    cfg.quantizer.init = Init::Kmeans;
    cfg.quantizer.restart = restart;
    cfg.train.epochs = 24;
    cfg.train.batch_size = 64;
    cfg.schedule.kind = ScheduleKind::Early;
    cfg
}

fn share_used(cfg: &RunConfig, seed: u64) -> f64 {
    let out = run(&valid(cfg), seed, &AtomicBool::new(false), false).expect("not cancelled");
    out.metrics.codes_used / cfg.quantizer.codebook_size as f64
}

#[test]
fn dead_code_restart_keeps_most_codes_in_use_under_early_quantization() {
    for seed in [0, 1, 2] {
        let without = share_used(&untuned("none".into()), seed);
        assert!(
            without < 0.9,
            "seed {seed}: collapses without restarts ({without:.3})"
        );
        let used = share_used(&untuned("threshold".into()), seed);
        assert!(used >= 0.9, "seed {seed}: {used:.3} of the codes used");
    }
}

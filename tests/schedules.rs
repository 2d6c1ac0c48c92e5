//! The continuous schedule and the identity model, run for real.

use std::sync::atomic::AtomicBool;

use vqsim::sim::config::{ModelKind, RunConfig, ScheduleKind};
use vqsim::sim::train::{self, Phase, RunOutcome, Status};

/// A run of a few milliseconds: 4 modes × 100 points, 2 continuous + 3 further epochs.
fn small(kind: ScheduleKind) -> RunConfig {
    let mut c = RunConfig::default();
    c.data.modes = 4;
    c.data.points_per_mode = 100;
    c.model.width = 16;
    c.model.depth = 1;
    c.quantizer.codebook_size = 8;
    c.train.epochs = 3;
    c.schedule.continuous_epochs = 2;
    c.schedule.kind = kind;
    c
}

fn run(cfg: &RunConfig, seed: u64) -> RunOutcome {
    train::run(cfg, seed, &AtomicBool::new(false), true).unwrap()
}

#[test]
fn continuous_trains_deferreds_budget_unquantized_with_codebook_metrics_nan() {
    let out = run(&small(ScheduleKind::Continuous), 3);
    assert_eq!(out.status, Status::Ok);
    assert!(out.snapshot.is_none(), "no codebook to snapshot");
    // Epoch 0 (untrained) and 2 + 3 epochs, all continuous.
    let epochs: Vec<(Phase, usize, usize)> = out
        .history
        .iter()
        .map(|h| (h.phase, h.epoch, h.total_epoch))
        .collect();
    let want: Vec<(Phase, usize, usize)> = (0..=5).map(|e| (Phase::Continuous, e, e)).collect();
    assert_eq!(epochs, want);
    let m = out.metrics;
    for (name, v) in [
        ("quant_mse", m.quant_mse),
        ("perplexity", m.perplexity),
        ("codes_used", m.codes_used),
        ("codebook_dist", m.codebook_dist),
        ("shrink_ratio", m.shrink_ratio),
        ("coverage", m.coverage),
        ("token_mode_entropy", m.token_mode_entropy),
        ("gen_modes_hit", m.gen_modes_hit),
    ] {
        assert!(v.is_nan(), "{name} = {v} without a codebook");
    }
    for (name, v) in [
        ("mse", m.mse),
        ("embed_rank", m.embed_rank),
        ("embed_var", m.embed_var),
        ("modes_hit", m.modes_hit),
        ("mode_entropy", m.mode_entropy),
    ] {
        assert!(v.is_finite(), "{name} = {v}");
    }
    // The final metrics are the last epoch's.
    let last = out.history.last().unwrap().metrics;
    assert_eq!(format!("{last:?}"), format!("{m:?}"));
}

#[test]
fn continuous_starts_as_deferreds_continuous_phase_bit_for_bit() {
    let cont = run(&small(ScheduleKind::Continuous), 5);
    let def = run(&small(ScheduleKind::Deferred), 5);
    let phase: Vec<String> = def
        .history
        .iter()
        .filter(|h| h.phase == Phase::Continuous)
        .map(|h| format!("{:?}", h.metrics))
        .collect();
    assert_eq!(phase.len(), 3);
    let head: Vec<String> = cont.history[..3]
        .iter()
        .map(|h| format!("{:?}", h.metrics))
        .collect();
    assert_eq!(head, phase);
    // After the switch they part: deferred quantizes, continuous does not.
    assert!(def.metrics.perplexity.is_finite() && cont.metrics.perplexity.is_nan());
}

#[test]
fn identity_model_quantizes_the_data_itself() {
    let mut c = small(ScheduleKind::Early);
    c.model = RunConfig::default().model;
    c.model.kind = ModelKind::Identity;
    let out = run(&c, 1);
    assert_eq!(out.status, Status::Ok);
    let snap = out.snapshot.unwrap();
    // Encoder and decoder are the identity: z = x, and each reconstruction is its code.
    assert_eq!(snap.z, snap.x);
    for (i, &k) in snap.code.iter().enumerate() {
        assert_eq!(snap.recon.row(i), snap.codebook.row(k), "point {i}");
    }
    // So the data-space error is the quantization error spread over the d dimensions.
    let (m, d) = (out.metrics, c.data.dim as f64);
    assert!(
        (m.mse * d - m.quant_mse).abs() <= 1e-6 * m.quant_mse,
        "mse {} × d vs quant_mse {}",
        m.mse,
        m.quant_mse
    );
}

#[test]
fn history_every_keeps_the_first_last_and_every_kth_epoch_and_changes_nothing_else() {
    let mut every = small(ScheduleKind::Deferred);
    every.schedule.continuous_epochs = 5;
    every.train.epochs = 7;
    every.quantizer.restart = "threshold".into();
    every.quantizer.params.set("restart_threshold", 40.0); // above the mean usage (32 points per code and step)
    let mut sparse = every.clone();
    sparse.train.history_every = 3;
    let (all, some) = (run(&every, 2), run(&sparse, 2));
    assert_eq!(all.status, Status::Ok);
    let rows = |o: &RunOutcome| -> Vec<(Phase, usize)> {
        o.history.iter().map(|h| (h.phase, h.epoch)).collect()
    };
    use Phase::{Continuous as C, Quantized as Q};
    assert_eq!(
        rows(&some),
        vec![(C, 0), (C, 3), (C, 5), (Q, 0), (Q, 3), (Q, 6), (Q, 7)]
    );
    // Measuring is read-only: the kept rows and the final metrics are the every-epoch run's,
    // but for the restarts, which a sparse row sums since the previous one.
    let restarts = |o: &RunOutcome, phase, epochs: std::ops::RangeInclusive<usize>| -> f64 {
        o.history
            .iter()
            .filter(|h| h.phase == phase && epochs.contains(&h.epoch))
            .map(|h| h.metrics.restarts)
            .sum()
    };
    for h in &some.history {
        let mut full = all
            .history
            .iter()
            .find(|a| (a.phase, a.epoch) == (h.phase, h.epoch))
            .unwrap()
            .clone();
        if h.phase == Q && h.epoch > 0 {
            let from = some
                .history
                .iter()
                .filter(|p| p.phase == Q && p.epoch < h.epoch)
                .map(|p| p.epoch + 1)
                .max()
                .unwrap();
            full.metrics.restarts = restarts(&all, Q, from..=h.epoch);
        }
        assert_eq!(format!("{:?}", h.metrics), format!("{:?}", full.metrics));
    }
    assert!(restarts(&all, Q, 1..=7) > 0.0, "the test needs restarts");
    assert_eq!(format!("{:?}", some.metrics), format!("{:?}", all.metrics));
}

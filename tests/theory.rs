//! The §4.2 formula: with identity maps, H and Q measured on tokens placed on M of K modes
//! match their predictions (H = ln M; Q from the mixture's geometry) at every M; trained rows
//! measure their run's own codebook, and their verdict can fail.

use std::sync::atomic::AtomicBool;

use vqsim::report::theory::trained_verdict;
use vqsim::sim::config::Init;
use vqsim::sim::theory::{
    theory, trained, trained_config, Source, TheoryConfig, TheoryRow, TrainedRun,
};
use vqsim::sim::train;

#[test]
fn measured_h_and_q_match_the_predictions() {
    let rows = theory(&TheoryConfig::default()).unwrap();
    assert_eq!(rows.len(), 10);
    for r in &rows {
        println!("{r:?}");
    }
    for r in &rows {
        // S = 64 does not split evenly over 3, 6, 7, 9 modes: H falls short of ln M by < 0.01.
        assert!(
            (r.h_measured - r.h_predicted).abs() < 0.01,
            "M = {}: H {} vs ln M {}",
            r.active_modes,
            r.h_measured,
            r.h_predicted
        );
        let rel = (r.q_measured - r.q_predicted).abs() / r.q_predicted;
        assert!(
            rel < 0.02,
            "M = {}: Q {} vs predicted {} ({:.1}% off)",
            r.active_modes,
            r.q_measured,
            r.q_predicted,
            100.0 * rel
        );
    }
    // The paper's point: Q rises as modes lose their tokens.
    assert!(rows.windows(2).all(|w| w[0].q_measured > w[1].q_measured));
}

fn run_at(init: Init, init_std: f64) -> TrainedRun {
    TrainedRun {
        init,
        init_std,
        codebook_size: 16,
        seed: 1,
    }
}

#[test]
fn a_trained_row_measures_the_runs_own_codebook() {
    let run = run_at(Init::Normal, 1.0);
    let row = trained(&[run]).unwrap()[0];
    assert_eq!(row.source, Source::Trained(run));
    let cfg = vqsim::sim::valid::validate(&trained_config(&run), None).unwrap();
    let out = train::run(&cfg, run.seed, &AtomicBool::new(false), false).unwrap();
    // Identity maps: the run's H and latent quantization error are the row's.
    assert_eq!(row.h_measured, out.metrics.token_mode_entropy);
    assert!(
        (row.q_measured - out.metrics.quant_mse).abs() <= 1e-9 * row.q_measured,
        "{row:?} vs {}",
        out.metrics.quant_mse
    );
    assert_eq!(row.h_predicted, (row.active_modes as f64).ln());
    // A normal init of σ = 1 leaves the modes far from the origin without tokens.
    assert!(row.active_modes < 10, "{row:?}");
}

#[test]
fn the_trained_verdict_fails_when_a_codebook_is_off_the_formula() {
    let row = |h: f64, q: f64| TheoryRow {
        source: Source::Trained(run_at(Init::Uniform, f64::NAN)),
        active_modes: 4,
        h_measured: h,
        h_predicted: 4f64.ln(),
        q_measured: q,
        q_predicted: 2.0,
    };
    let on = row(4f64.ln() - 0.05, 2.1);
    assert!(trained_verdict(&[on]).supported);
    for off in [row(1.0, 2.1), row(4f64.ln(), 2.5), row(4f64.ln(), 1.5)] {
        let v = trained_verdict(&[on, off]);
        assert!(!v.supported, "{off:?}");
        assert!(v.evidence.contains("of 2 runs"), "{}", v.evidence);
    }
}

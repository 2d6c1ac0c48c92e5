//! The paper's direction of effects, run for real: early quantization shrinks the codebook,
//! deferred quantization fixes it, for every seed.

use std::sync::atomic::AtomicBool;

use rayon::prelude::*;
use vqsim::sim::config::ScheduleKind;
use vqsim::sim::metrics::Metrics;
use vqsim::sim::train::{self, Status};
use vqsim::study::scenario::{RunSpec, Scenario};

/// Final metrics of every run of a scenario, as (seed, early, deferred) triples.
fn run_pairs(toml: &str) -> Vec<(u64, Metrics, Metrics)> {
    let scenario = Scenario::from_str(toml, None, "effects").expect("valid scenario");
    let outcomes: Vec<(&RunSpec, Metrics)> = scenario
        .runs
        .par_iter()
        .map(|spec| {
            let out = train::run(&spec.config, spec.seed, &AtomicBool::new(false), false).unwrap();
            assert_eq!(out.status, Status::Ok, "run {} diverged", spec.id);
            (spec, out.metrics)
        })
        .collect();
    let arm = |seed: u64, kind: ScheduleKind| {
        outcomes
            .iter()
            .find(|(s, _)| s.seed == seed && s.config.schedule.kind == kind)
            .map(|(_, m)| *m)
            .unwrap()
    };
    scenario
        .seeds
        .iter()
        .map(|&seed| {
            (
                seed,
                arm(seed, ScheduleKind::Early),
                arm(seed, ScheduleKind::Deferred),
            )
        })
        .collect()
}

/// The thresholds of the core issue, per seed.
fn assert_paper_effects(name: &str, toml: &str, modes: f64, codes: f64) {
    for (seed, early, deferred) in run_pairs(toml) {
        let ctx = format!("{name}, seed {seed}: early {early:?}\ndeferred {deferred:?}");
        assert!(
            deferred.perplexity >= 3.0 * early.perplexity,
            "perplexity ratio; {ctx}"
        );
        assert!(
            deferred.codes_used >= 0.9 * codes,
            "deferred code use; {ctx}"
        );
        assert_eq!(deferred.modes_hit, modes, "deferred modes; {ctx}");
        assert!(early.shrink_ratio <= 0.3, "early shrink; {ctx}");
        assert!(deferred.shrink_ratio >= 0.6, "deferred shrink; {ctx}");
        assert!(deferred.mse * 10.0 <= early.mse, "mse ratio; {ctx}");
    }
}

#[test]
fn small_mixture_shows_shrinkage_and_its_fix_for_every_seed() {
    let toml = r#"
        seeds = [100, 101, 102, 103]
        [data]
        modes = 6
        points_per_mode = 300
        [quantizer]
        codebook_size = 32
        [sweep]
        "schedule.kind" = ["early", "deferred"]
    "#;
    assert_paper_effects("small", toml, 6.0, 32.0);
}

#[test]
fn wider_encoder_more_modes_and_codes_show_the_same_effects() {
    let toml = r#"
        seeds = [7, 8]
        [data]
        modes = 12
        points_per_mode = 250
        mean_range = 12.0
        [model]
        width = 96
        [quantizer]
        codebook_size = 128
        [sweep]
        "schedule.kind" = ["early", "deferred"]
    "#;
    assert_paper_effects("wide", toml, 12.0, 128.0);
}

/// Inputs of higher dimension than the latent space: the bottleneck itself loses the noise
/// in the extra dimensions, so deferred MSE has a floor near σ²·(d − m)/d and the early arm,
/// which still hits most modes, is not always 10× worse. The directions must hold regardless.
#[test]
fn higher_input_dimension_keeps_the_direction_of_every_effect() {
    let toml = r#"
        seeds = [10, 11, 12]
        [data]
        dim = 8
        modes = 8
        [model]
        width = 32
        [quantizer]
        codebook_size = 32
        [sweep]
        "schedule.kind" = ["early", "deferred"]
    "#;
    for (seed, early, deferred) in run_pairs(toml) {
        let ctx = format!("seed {seed}: early {early:?}\ndeferred {deferred:?}");
        assert!(deferred.perplexity >= 2.0 * early.perplexity, "{ctx}");
        assert!(deferred.codes_used >= 0.9 * 32.0, "{ctx}");
        assert_eq!(deferred.modes_hit, 8.0, "{ctx}");
        assert!(
            early.shrink_ratio <= 0.3 && deferred.shrink_ratio >= 0.6,
            "{ctx}"
        );
        assert!(deferred.mse * 5.0 <= early.mse, "{ctx}");
    }
}

#[test]
fn a_run_is_reproducible_bit_for_bit() {
    let scenario = Scenario::from_str(
        "[data]\nmodes = 4\npoints_per_mode = 200\n[schedule]\nkind = \"deferred\"\ncontinuous_epochs = 5\n[train]\nepochs = 5\n",
        None,
        "repro",
    )
    .unwrap();
    let spec = &scenario.runs[0];
    let run = || train::run(&spec.config, spec.seed, &AtomicBool::new(false), true).unwrap();
    let (a, b) = (run(), run());
    // Debug prints every float in its shortest round-trip form: equal text ⇔ equal values.
    let bits = |m: &Metrics| format!("{m:?}");
    assert_eq!(bits(&a.metrics), bits(&b.metrics));
    assert_eq!(a.history.len(), b.history.len());
    for (x, y) in a.history.iter().zip(&b.history) {
        assert_eq!(bits(&x.metrics), bits(&y.metrics));
    }
    let (sa, sb) = (a.snapshot.unwrap(), b.snapshot.unwrap());
    assert_eq!(sa.z, sb.z);
    assert_eq!(sa.codebook, sb.codebook);
}

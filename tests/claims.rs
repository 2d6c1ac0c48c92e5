//! Each claim on a fixture where it holds and on one where it fails.

use std::fs;
use std::path::Path;

mod common;

use common::{arm, header, row, write_runs, Arm};
use vqsim::report::claims::{
    capacity, capacity_width, check, dynamics, generation, init, shrinkage, token_gap,
    token_scaling, travel,
};
use vqsim::report::results::Results;
use vqsim::report::summary::Summary;
use vqsim::report::table::Table;

const KIND: &str = "schedule.kind";
const SIZE: &str = "quantizer.codebook_size";

fn summary_of(arms: &[Arm]) -> Summary {
    let dir = tempfile::tempdir().unwrap();
    write_runs(dir.path(), arms);
    Results::load(dir.path()).unwrap().summary
}

/// Token sweep: `ppl(kind, size)` and `ratio(kind)` (shrink_ratio) give the mean of each arm
/// (spread 1% of it).
fn tokens(ppl: impl Fn(&str, u32) -> f64, ratio: impl Fn(&str) -> f64) -> Summary {
    let mut arms = Vec::new();
    for size in [8u32, 64, 256, 1024] {
        for kind in ["early", "deferred"] {
            let p = ppl(kind, size);
            let r = ratio(kind);
            let s = size.to_string();
            arms.push(arm(
                &[(KIND, kind), (SIZE, &s)],
                &[("perplexity", p, 0.01 * p), ("shrink_ratio", r, 0.01 * r)],
            ));
        }
    }
    summary_of(&arms)
}

fn paper_ppl(kind: &str, size: u32) -> f64 {
    match kind {
        "early" => 6.0 + (size as f64).log2() * 0.2,
        _ => 0.9 * size as f64,
    }
}

fn paper_ratio(kind: &str) -> f64 {
    if kind == "early" {
        0.1
    } else {
        1.0
    }
}

#[test]
fn token_gap_holds_when_deferred_is_higher_everywhere() {
    let v = token_gap(&tokens(paper_ppl, paper_ratio)).unwrap();
    assert!(v.supported, "{}", v.evidence);
    assert!(v.evidence.contains("S=64") && v.evidence.contains("S=1024"));
    assert!(
        !v.evidence.contains("S=8:"),
        "sizes below 64 are not part of the claim"
    );
}

#[test]
fn token_gap_fails_when_one_size_overlaps() {
    // At S = 256 deferred's perplexity collapses onto early's.
    let s = tokens(
        |k, n| if n == 256 { 7.6 } else { paper_ppl(k, n) },
        paper_ratio,
    );
    let v = token_gap(&s).unwrap();
    assert!(!v.supported);
    assert!(v.evidence.contains("not separated"), "{}", v.evidence);
}

#[test]
fn token_gap_fails_when_shrink_ratio_is_lower_under_deferred() {
    let v = token_gap(&tokens(paper_ppl, |k| if k == "early" { 1.0 } else { 0.1 })).unwrap();
    assert!(!v.supported);
    // Perplexity holds at every size: the verdict must fail on the ratio, not on a gap in the
    // fixture.
    assert!(
        v.evidence.contains("shrink_ratio 1.00 [")
            && v.evidence.matches("(not separated)").count() == 3
            && !v.evidence.contains("missing"),
        "{}",
        v.evidence
    );
}

#[test]
fn token_scaling_holds_when_early_flattens() {
    let v = token_scaling(&tokens(paper_ppl, paper_ratio)).unwrap();
    assert!(v.supported, "{}", v.evidence);
}

#[test]
fn token_scaling_fails_when_early_grows_as_fast() {
    let v = token_scaling(&tokens(|_, n| 0.9 * n as f64, paper_ratio)).unwrap();
    assert!(!v.supported);
    assert!(v.evidence.contains("early flattens: no"), "{}", v.evidence);
}

#[test]
fn token_scaling_fails_when_deferred_stalls() {
    let s = tokens(
        |k, n| {
            if k == "deferred" && n == 1024 {
                0.9 * 256.0
            } else {
                paper_ppl(k, n)
            }
        },
        paper_ratio,
    );
    let v = token_scaling(&s).unwrap();
    assert!(!v.supported);
    assert!(
        v.evidence.contains("strictly increasing: no"),
        "{}",
        v.evidence
    );
}

fn capacity_sweep(rank: impl Fn(&str, &str) -> f64, hit: impl Fn(&str, &str) -> f64) -> Summary {
    let mut arms = Vec::new();
    for dim in ["2", "8"] {
        for depth in ["0", "1", "4"] {
            for width in ["2", "16", "128"] {
                arms.push(arm(
                    &[
                        ("data.dim", dim),
                        ("model.depth", depth),
                        ("model.width", width),
                    ],
                    &[
                        ("embed_rank", rank(depth, width), 0.02),
                        ("modes_hit", hit(depth, width), 0.3),
                    ],
                ));
            }
        }
    }
    summary_of(&arms)
}

#[test]
fn capacity_holds_when_smallest_collapses() {
    let s = capacity_sweep(
        |d, w| if (d, w) == ("0", "2") { 1.0 } else { 1.9 },
        |_, _| 10.0,
    );
    let v = capacity(&s).unwrap();
    assert!(v.supported, "{}", v.evidence);
    assert!(v.evidence.contains("depth=0 width=2") && v.evidence.contains("depth=4 width=128"));
    assert!(v.evidence.contains("data.dim=8"));
}

#[test]
fn capacity_fails_without_a_difference() {
    let v = capacity(&capacity_sweep(|_, _| 1.9, |_, _| 10.0)).unwrap();
    assert!(!v.supported);
    // Both metrics present and overlapping at both dims: not a gap in the fixture.
    assert_eq!(v.evidence.matches("(overlap)").count(), 4, "{}", v.evidence);
    assert!(!v.evidence.contains("missing"), "{}", v.evidence);
}

#[test]
fn capacity_fails_when_one_metric_goes_the_other_way() {
    let s = capacity_sweep(
        |d, w| if (d, w) == ("0", "2") { 1.0 } else { 1.9 },
        |d, w| if (d, w) == ("0", "2") { 10.0 } else { 6.0 },
    );
    let v = capacity(&s).unwrap();
    assert!(!v.supported);
    // Separated both ways (rank lower, modes higher), at both dims.
    assert!(
        v.evidence.matches("modes_hit 10.0 [").count() == 2
            && !v.evidence.contains("overlap")
            && !v.evidence.contains("missing"),
        "{}",
        v.evidence
    );
}

fn shrink_sweep(used: f64) -> Summary {
    let mut arms = Vec::new();
    for dim in ["2", "8", "16"] {
        arms.push(arm(
            &[(KIND, "early"), ("data.dim", dim)],
            &[
                ("shrink_ratio", 0.1, 0.01),
                ("codes_used", 30.0, 2.0),
                ("modes_hit", 7.0, 1.0),
            ],
        ));
        arms.push(arm(
            &[(KIND, "deferred"), ("data.dim", dim)],
            &[
                ("shrink_ratio", 0.95, 0.01),
                ("codes_used", used, 0.0),
                ("modes_hit", 10.0, 0.0),
            ],
        ));
    }
    summary_of(&arms)
}

#[test]
fn shrinkage_holds_when_deferred_keeps_its_codes() {
    let v = shrinkage(&shrink_sweep(63.0)).unwrap();
    assert!(v.supported, "{}", v.evidence);
}

#[test]
fn shrinkage_fails_when_deferred_uses_too_few_codes() {
    // 57 of 64 is 89%: just under the 90% bar.
    let v = shrinkage(&shrink_sweep(57.0)).unwrap();
    assert!(!v.supported);
    assert!(v.evidence.contains("of 64 codes (no)"), "{}", v.evidence);
}

fn init_sweep(early_kmeans: f64) -> Summary {
    let mut arms = Vec::new();
    for (init, early) in [("uniform", 3.0), ("normal", 5.0), ("kmeans", early_kmeans)] {
        arms.push(arm(
            &[(KIND, "early"), ("quantizer.init", init)],
            &[("perplexity", early, 0.5)],
        ));
        arms.push(arm(
            &[(KIND, "deferred"), ("quantizer.init", init)],
            &[("perplexity", 58.0, 1.0)],
        ));
    }
    summary_of(&arms)
}

#[test]
fn init_holds_when_deferred_kmeans_wins() {
    let v = init(&init_sweep(7.0)).unwrap();
    assert!(v.supported, "{}", v.evidence);
    assert!(v.evidence.contains("early uniform") && v.evidence.contains("early normal"));
}

#[test]
fn init_fails_when_an_early_arm_ties() {
    let v = init(&init_sweep(58.0)).unwrap();
    assert!(!v.supported);
    assert!(v.evidence.contains("early kmeans") && v.evidence.contains("not beaten"));
}

#[test]
fn claims_without_their_axes_are_none() {
    let s = shrink_sweep(63.0);
    assert!(token_gap(&s).is_none());
    assert!(token_scaling(&s).is_none());
    assert!(capacity(&s).is_none());
    assert!(init(&s).is_none());
    let s = capacity_sweep(|_, _| 1.0, |_, _| 1.0);
    assert!(shrinkage(&s).is_none());
}

/// Six runs (early r0–r2, deferred r3–r5) and a history of 5 quantized epochs where
/// shrink_ratio is `early(epoch)` / `deferred(epoch)` plus a seed jitter.
fn dynamics_dir(dir: &Path, early: impl Fn(u64) -> f64, deferred: impl Fn(u64) -> f64) {
    write_runs(
        dir,
        &[
            arm(&[(KIND, "early")], &[]),
            arm(&[(KIND, "deferred")], &[]),
        ],
    );
    let mut lines = vec!["run_id,phase,epoch,total_epoch,shrink_ratio".to_string()];
    for run in 0..6u64 {
        let jitter = (run % 3) as f64 * 0.01;
        for epoch in 0..5u64 {
            let (phase, total, v) = if run < 3 {
                ("quantized", epoch, early(epoch))
            } else {
                // Continuous epochs have no codebook: NaN, and must be ignored.
                lines.push(format!("r{run},continuous,{epoch},{epoch},NaN"));
                ("quantized", epoch + 5, deferred(epoch))
            };
            lines.push(format!("r{run},{phase},{epoch},{total},{}", v + jitter));
        }
    }
    fs::write(dir.join("history.csv"), lines.join("\n")).unwrap();
}

fn dynamics_of(dir: &Path) -> Option<vqsim::report::claims::Verdict> {
    let runs = Table::read(&dir.join("runs.csv")).unwrap();
    let history = Table::read(&dir.join("history.csv")).unwrap();
    dynamics(&runs, &history).unwrap()
}

/// Both codebooks start as k-means fits (shrink_ratio ≈ 1 at epoch 0), then early's shrinks.
fn early_shrinks(epoch: u64) -> f64 {
    if epoch == 0 {
        1.0
    } else {
        0.3 - 0.05 * epoch as f64
    }
}

#[test]
fn dynamics_holds_when_early_shrinks_after_init() {
    let dir = tempfile::tempdir().unwrap();
    dynamics_dir(dir.path(), early_shrinks, |_| 1.0);
    let v = dynamics_of(dir.path()).unwrap();
    assert!(v.supported, "{}", v.evidence);
    assert!(
        v.evidence.contains("epoch 0: 1.01 [")
            && v.evidence.contains("(not tested)")
            && v.evidence.contains("fails at 0 of 4 epochs ≥ 1"),
        "{}",
        v.evidence
    );
}

#[test]
fn dynamics_is_not_decided_by_epoch_zero() {
    // Shrunk at init only (as the raw codebook_dist of an untrained encoder's k-means is), equal
    // afterwards: the claim is about training, so it fails.
    let dir = tempfile::tempdir().unwrap();
    dynamics_dir(dir.path(), |e| if e == 0 { 0.1 } else { 1.0 }, |_| 1.0);
    let v = dynamics_of(dir.path()).unwrap();
    assert!(!v.supported);
    assert!(
        v.evidence
            .contains("fails at 4 of 4 epochs ≥ 1 ([1, 2, 3, 4])"),
        "{}",
        v.evidence
    );
}

#[test]
fn dynamics_fails_when_early_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    // Epoch 2: 0.55 vs 1 is above half; epochs 3 and 4 overlap or exceed.
    dynamics_dir(dir.path(), |e| 0.05 + 0.25 * e as f64, |_| 1.0);
    let v = dynamics_of(dir.path()).unwrap();
    assert!(!v.supported);
    assert!(
        v.evidence
            .contains("fails at 3 of 4 epochs ≥ 1 ([2, 3, 4])"),
        "{}",
        v.evidence
    );
}

#[test]
fn check_dispatches_by_scenario_name() {
    let dir = tempfile::tempdir().unwrap();
    dynamics_dir(dir.path(), early_shrinks, |_| 1.0);
    let results = Results::load(dir.path()).unwrap();
    let v = check("dynamics", &results).unwrap();
    assert_eq!(v.len(), 1);
    assert!(v[0]
        .claim
        .contains("shrinks relative to the embeddings during training"));
    // The tokens claims need a codebook-size axis this sweep does not have.
    assert!(check("tokens", &results).unwrap().is_empty());
}

/// Early vs deferred at `dims`: early's generated set hits `early_hit` modes (spread 0.5) with
/// ratio 0.85, deferred's all 10 modes with ratio 1.0 (spread 0.01).
fn generation_sweep(dims: &[&str], early_hit: f64) -> Summary {
    let mut arms = Vec::new();
    for dim in dims {
        arms.push(arm(
            &[(KIND, "early"), ("data.dim", dim)],
            &[
                ("gen_modes_hit", early_hit, 0.5),
                ("gen_pairwise_ratio", 0.85, 0.01),
            ],
        ));
        arms.push(arm(
            &[(KIND, "deferred"), ("data.dim", dim)],
            &[
                ("gen_modes_hit", 10.0, 0.0),
                ("gen_pairwise_ratio", 1.0, 0.01),
            ],
        ));
    }
    summary_of(&arms)
}

#[test]
fn generation_holds_when_early_generates_fewer_modes_at_both_dims() {
    let v = generation(&generation_sweep(&["2", "8", "16"], 6.0)).unwrap();
    assert!(v.supported, "{}", v.evidence);
    assert!(v.evidence.contains("d=2:") && v.evidence.contains("d=8:"));
    assert!(!v.evidence.contains("d=16"), "only d = 2 and 8 are claimed");
}

#[test]
fn generation_fails_when_modes_overlap_or_a_dim_is_missing() {
    let v = generation(&generation_sweep(&["2", "8"], 9.8)).unwrap();
    assert!(!v.supported);
    assert!(v.evidence.contains("not separated"), "{}", v.evidence);
    let v = generation(&generation_sweep(&["2", "16"], 6.0)).unwrap();
    assert!(!v.supported);
    assert!(
        v.evidence.contains("d=8: not in the sweep"),
        "{}",
        v.evidence
    );
}

/// The continuous-capacity grid (schedules × depths × widths 2 and 128), embed_rank and
/// modes_hit from `rank` and `hit` of (depth, width).
fn width_sweep(rank: impl Fn(&str, &str) -> f64, hit: impl Fn(&str, &str) -> f64) -> Summary {
    let mut arms = Vec::new();
    for kind in ["continuous", "deferred"] {
        for depth in ["0", "1", "2"] {
            for width in ["2", "128"] {
                arms.push(arm(
                    &[(KIND, kind), ("model.depth", depth), ("model.width", width)],
                    &[
                        ("embed_rank", rank(depth, width), 0.02),
                        ("modes_hit", hit(depth, width), 0.3),
                    ],
                ));
            }
        }
    }
    summary_of(&arms)
}

#[test]
fn capacity_width_holds_when_width_two_collapses_at_every_depth_from_one() {
    // Depth 0 (a linear map) is not part of the claim: there width 2 may do as well.
    let s = width_sweep(
        |d, w| if w == "2" && d != "0" { 1.0 } else { 1.9 },
        |d, w| if w == "2" && d != "0" { 4.0 } else { 10.0 },
    );
    let v = capacity_width(&s).unwrap();
    assert!(v.supported, "{}", v.evidence);
    assert!(v.evidence.contains("depth=1") && v.evidence.contains("depth=2"));
    assert!(!v.evidence.contains("depth=0"), "{}", v.evidence);
    assert!(
        v.evidence.contains("schedule.kind=continuous"),
        "{}",
        v.evidence
    );
}

#[test]
fn capacity_width_fails_when_one_metric_overlaps_at_one_depth() {
    let s = width_sweep(
        |d, w| if w == "2" && d != "0" { 1.0 } else { 1.9 },
        |d, w| if w == "2" && d == "1" { 4.0 } else { 10.0 },
    );
    let v = capacity_width(&s).unwrap();
    assert!(!v.supported);
    assert!(v.evidence.contains("(not lower)"), "{}", v.evidence);
}

/// runs.csv by hand, early vs deferred over seeds 0–2, where the shrinkage claim holds:
/// shrink_ratio 0.1 vs 1 (spread 0.01), deferred uses 64 of 64 codes and hits 10 of 10 modes.
/// `status` of (arm, seed) decides each run's status; `skip` leaves one run out.
fn shrink_table(dir: &Path, status: impl Fn(&str, u64) -> &'static str, skip: Option<(&str, u64)>) {
    let mut lines = vec![header()];
    for (i, kind) in ["early", "deferred"].into_iter().enumerate() {
        for seed in 0..3u64 {
            if skip == Some((kind, seed)) {
                continue;
            }
            let base = if kind == "early" { 0.1 } else { 1.0 };
            let ratio = (base + 0.01 * (seed as f64 - 1.0)).to_string();
            let metrics = [
                ("shrink_ratio", ratio.as_str()),
                ("codes_used", "64"),
                ("modes_hit", "10"),
            ];
            let id = 3 * i + seed as usize;
            lines.push(row(id, status(kind, seed), seed, &[(KIND, kind)], &metrics));
        }
    }
    fs::write(dir.join("runs.csv"), lines.join("\n") + "\n").unwrap();
}

fn shrink_verdict(dir: &Path) -> vqsim::report::claims::Verdict {
    let mut v = check("shrinkage", &Results::load(dir).unwrap()).unwrap();
    assert_eq!(
        v.len(),
        1,
        "only the shrinkage claim applies: no dimension axis"
    );
    v.remove(0)
}

#[test]
fn verdicts_show_n_per_arm_when_every_seed_is_ok() {
    let dir = tempfile::tempdir().unwrap();
    shrink_table(dir.path(), |_, _| "ok", None);
    let v = shrink_verdict(dir.path());
    assert!(v.supported, "{}", v.evidence);
    assert_eq!(
        v.runs,
        "n = 3 per arm (2 arms), none diverged, failed or missing"
    );
}

/// What goes wrong in a case: its name in the runs text, each run's status, a run left out.
type Case = (
    &'static str,
    fn(&str, u64) -> &'static str,
    Option<(&'static str, u64)>,
);

#[test]
fn a_claim_with_diverged_failed_or_missing_seeds_says_so_and_does_not_pass() {
    let cases: [Case; 3] = [
        (
            "1 diverged",
            |k, s| {
                if (k, s) == ("early", 2) {
                    "diverged"
                } else {
                    "ok"
                }
            },
            None,
        ),
        (
            "1 failed",
            |k, s| {
                if (k, s) == ("deferred", 0) {
                    "failed"
                } else {
                    "ok"
                }
            },
            None,
        ),
        ("1 missing", |_, _| "ok", Some(("deferred", 1))),
    ];
    for (what, status, skip) in cases {
        let dir = tempfile::tempdir().unwrap();
        shrink_table(dir.path(), status, skip);
        let v = shrink_verdict(dir.path());
        // Two seeds of each arm still show the effect; the verdict must not rest on them.
        assert!(
            !v.evidence.contains("no)"),
            "survivors alone hold: {}",
            v.evidence
        );
        assert!(!v.supported, "{what}: passed on the survivors");
        assert!(
            v.runs.starts_with("incomplete: n = 2–3 of 3 per arm"),
            "{what}: {}",
            v.runs
        );
        assert!(v.runs.contains(what), "{what}: {}", v.runs);
    }
}

#[test]
fn a_seed_missing_from_every_arm_is_missing_and_the_claim_does_not_pass() {
    let dir = tempfile::tempdir().unwrap();
    // Seeds 0–2 ran in both arms; the stored scenario asked for seed 3 too.
    shrink_table(dir.path(), |_, _| "ok", None);
    fs::write(
        dir.path().join("scenario.toml"),
        "seeds = [0, 1, 2, 3]\n[sweep]\n\"schedule.kind\" = [\"early\", \"deferred\"]\n",
    )
    .unwrap();
    let v = shrink_verdict(dir.path());
    assert!(!v.supported, "passed on 3 of the 4 seeds asked for");
    assert!(
        v.runs.starts_with(
            "incomplete: n = 3 of 4 per arm (2 arms; 0 runs diverged, 0 failed, 2 missing)"
        ),
        "{}",
        v.runs
    );
}

/// The travel scenario: the codebook at 10× and 100× train.lr and under EMA, each early and
/// deferred; `early_ppl(arm)` gives early's perplexity (deferred's is 59, spread 1).
fn travel_sweep(early_ppl: impl Fn(&str) -> f64) -> Summary {
    let mut arms = Vec::new();
    for (name, set) in [
        (
            "10",
            [("quantizer.lr_scale", "10"), ("quantizer.update", "loss")],
        ),
        (
            "100",
            [("quantizer.lr_scale", "100"), ("quantizer.update", "loss")],
        ),
        (
            "ema",
            [("quantizer.lr_scale", "1"), ("quantizer.update", "ema")],
        ),
    ] {
        for (kind, ppl, shrink) in [("early", early_ppl(name), 0.3), ("deferred", 59.0, 1.0)] {
            let mut at = set.to_vec();
            at.push((KIND, kind));
            arms.push(arm(
                &at,
                &[("perplexity", ppl, 1.0), ("shrink_ratio", shrink, 0.02)],
            ));
        }
    }
    summary_of(&arms)
}

#[test]
fn travel_holds_when_deferred_is_higher_in_every_arm() {
    let v = travel(&travel_sweep(|_| 15.0)).unwrap();
    assert!(v.supported, "{}", v.evidence);
    for arm in [
        "quantizer.lr_scale=10",
        "quantizer.lr_scale=100",
        "quantizer.update=ema",
    ] {
        assert!(v.evidence.contains(arm), "{arm}: {}", v.evidence);
    }
}

#[test]
fn travel_fails_when_one_arm_closes_the_gap() {
    // Under EMA early quantization reaches deferred's perplexity.
    let v = travel(&travel_sweep(|a| if a == "ema" { 59.0 } else { 15.0 })).unwrap();
    assert!(!v.supported);
    assert!(v.evidence.contains("not separated"), "{}", v.evidence);
    // Without the codebook's update swept the claim does not apply.
    let plain = summary_of(&[
        arm(&[(KIND, "early")], &[("perplexity", 6.0, 1.0)]),
        arm(&[(KIND, "deferred")], &[("perplexity", 59.0, 1.0)]),
    ]);
    assert!(travel(&plain).is_none());
}

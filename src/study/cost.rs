//! How long a run takes, from its configuration: the cost model behind the order of a sweep
//! (longest first), its ETA (`eta`) and the CPU time `vqsim check` announces.
//!
//! Seconds of one core of the reference machine (`CALIBRATED`), as a sum of the parts that grow
//! with the configuration: the networks' multiply-adds and the per-point work of every epoch
//! (training, and the evaluation of the whole data set after it), the nearest-code search and
//! the remedies that work on every code. The coefficients were fitted on 2026-12-02 to the CPU
//! time (user + system) of 12 single runs on one thread, each changing one thing from the
//! defaults (deferred; S = 256 and 1024; d = 8 with width 128 and depth 4; a linear
//! continuous model; 5× the points; d = 64 with m = 8; and at S = 1024 the entropy loss, IBQ,
//! the orthogonality loss and the k-means restart): the model is within 12% of each. The CVQ
//! restart and the Gumbel-softmax estimator were added the same day from one S = 1024 run
//! each, and LFQ (its soft assignments over 2^m codes cost what a nearest-code search over as
//! many codes does) checked at m = 10.

use crate::sim::checked::ValidRun;
use crate::sim::config::{ModelKind, RunConfig, ScheduleKind};
use crate::sim::vq;

/// What the seconds are: the machine and date of the calibration below.
pub const CALIBRATED: &str = "one core of the AMD EPYC the model was calibrated on, 2026-12-02";

/// Seconds per run whatever its size: data, writing the results.
const FIXED: f64 = 0.025;
/// Seconds per point and epoch, per multiply-add of a point through encoder and decoder.
const PER_MADD: f64 = 1.04e-10;
/// Seconds per point and epoch besides the networks: batching, losses, Adam, the metrics.
const PER_POINT: f64 = 1.41e-7;
/// Seconds per point, quantized epoch, code and code dimension: the nearest-code search (the
/// k-means init, which grows the same way, is in it).
const PER_CODE: f64 = 2.43e-9;
/// Seconds per point, quantized epoch and code of the entropy loss's soft assignments.
const PER_ENTROPY: f64 = 8.7e-8;
/// Seconds per point, quantized epoch, code and dimension of index backpropagation.
const PER_IBQ: f64 = 6.2e-9;
/// Seconds per step, code pair and dimension of the orthogonality loss.
const PER_ORTHOGONAL: f64 = 4.9e-9;
/// Seconds per point, quantized epoch, code and dimension of the CVQ restart (each code's
/// closest encoder output of the batch, every step).
const PER_CVQ: f64 = 1.97e-9;
/// Seconds per point, quantized epoch and code of the Gumbel-softmax relaxation (noise,
/// softmax and its backward over every code).
const PER_GUMBEL: f64 = 3.4e-8;
/// Seconds per re-initialisation, code and dimension of the k-means restart (on the last
/// 4096 encoder outputs).
const PER_KMEANS_RESTART: f64 = 7.4e-5;

/// Expected seconds of one run on one core of the reference machine.
pub fn run_seconds(cfg: &ValidRun) -> f64 {
    let (d, m) = (cfg.data.dim as f64, cfg.model.latent_dim as f64);
    let (w, depth) = (cfg.model.width as f64, cfg.model.depth as f64);
    let madds = match cfg.model.kind {
        ModelKind::Identity => 0.0,
        ModelKind::Mlp if depth == 0.0 => 2.0 * d * m,
        ModelKind::Mlp => 2.0 * (w * (d + m) + (depth - 1.0) * w * w),
    };
    let quantized = match cfg.schedule.kind {
        ScheduleKind::Continuous => 0.0,
        ScheduleKind::Early | ScheduleKind::Deferred => cfg.train.epochs as f64,
    };
    let all = cfg.train.epochs as f64
        + match cfg.schedule.kind {
            ScheduleKind::Early => 0.0,
            ScheduleKind::Deferred | ScheduleKind::Continuous => {
                cfg.schedule.continuous_epochs as f64
            }
        };
    let n = cfg.points() as f64;
    let q = &cfg.quantizer;
    let s = q.codebook_size as f64;
    let dims = if q.code_dim > 0 { q.code_dim as f64 } else { m };
    let steps = quantized * (n / cfg.train.batch_size as f64).ceil();
    let mut t = FIXED + all * n * (PER_MADD * madds + PER_POINT);
    if q.kind == "fsq" || quantized == 0.0 {
        return t;
    }
    // Each residual level searches a codebook of its own (not calibrated: assumed alike).
    let levels = vq::levels(q) as f64;
    t += quantized * n * s * dims * PER_CODE * levels;
    if param(cfg, "entropy_weight", 0.0) > 0.0 {
        t += quantized * n * s * PER_ENTROPY;
    }
    if q.estimator == "ibq" {
        t += quantized * n * s * dims * PER_IBQ;
    }
    if param(cfg, "orthogonal_weight", 0.0) > 0.0 {
        t += steps * s * s * dims * PER_ORTHOGONAL;
    }
    if q.estimator == "gumbel" {
        t += quantized * n * s * PER_GUMBEL;
    }
    if q.restart == "cvq" {
        t += quantized * n * s * dims * PER_CVQ;
    }
    if q.restart == "kmeans" {
        let every = param(cfg, "kmeans_every", 5.0).max(1.0);
        t += (quantized / every).floor() * s * dims * PER_KMEANS_RESTART;
    }
    t
}

/// A remedy's numeric key under `[quantizer]` ("entropy_weight"), or `default` where unset.
fn param(cfg: &RunConfig, name: &str, default: f64) -> f64 {
    cfg.quantizer
        .params
        .iter()
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| match v {
            toml::Value::Float(x) => Some(*x),
            toml::Value::Integer(i) => Some(*i as f64),
            _ => None,
        })
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::valid::validate;

    fn with(edit: impl FnOnce(&mut RunConfig)) -> f64 {
        let mut cfg = RunConfig::default();
        edit(&mut cfg);
        run_seconds(&validate(&cfg, None).expect("a valid configuration"))
    }

    #[test]
    fn the_calibration_runs_come_out_as_measured() {
        // CPU seconds measured at the calibration, within the model's 12%.
        let cases: [(f64, f64); 7] = [
            (with(|_| {}), 0.48),
            (with(|c| c.quantizer.codebook_size = 1024), 1.94),
            (
                with(|c| {
                    c.quantizer.codebook_size = 1024;
                    c.quantizer.params.set("orthogonal_weight", 10.0);
                }),
                14.1,
            ),
            (
                with(|c| {
                    c.quantizer.codebook_size = 1024;
                    c.quantizer.restart = "cvq".into();
                }),
                3.10,
            ),
            (
                with(|c| {
                    c.quantizer.codebook_size = 1024;
                    c.quantizer.estimator = "gumbel".into();
                }),
                12.3,
            ),
            (
                with(|c| {
                    c.quantizer.codebook_size = 1024;
                    c.quantizer.kind = "lfq".into();
                    c.model.latent_dim = 10;
                }),
                7.21,
            ),
            (
                with(|c| {
                    c.data.dim = 8;
                    c.model.width = 128;
                    c.model.depth = 4;
                }),
                3.13,
            ),
        ];
        for (model, measured) in cases {
            assert!(
                (model / measured - 1.0).abs() < 0.13,
                "{model} vs {measured}"
            );
        }
    }

    #[test]
    fn the_codebook_costs_only_where_there_is_one() {
        let fsq = |s: usize| {
            with(|c| {
                c.quantizer.kind = "fsq".into();
                c.quantizer.codebook_size = s;
            })
        };
        assert_eq!(fsq(64), fsq(1024));
        let continuous = |s: usize| {
            with(|c| {
                c.schedule.kind = ScheduleKind::Continuous;
                c.quantizer.codebook_size = s;
            })
        };
        assert_eq!(continuous(64), continuous(1024));
        assert!(with(|c| c.schedule.kind = ScheduleKind::Deferred) > with(|_| {}));
    }
}

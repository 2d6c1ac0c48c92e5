//! A runs.csv writer for hand-made fixtures (shared by the summary and claims tests).
#![allow(dead_code)]

use std::fs;
use std::path::Path;

pub const PARAMS: [(&str, &str); 20] = [
    ("data.modes", "10"),
    ("data.points_per_mode", "1000"),
    ("data.dim", "2"),
    ("data.mean_range", "10"),
    ("data.std", "0.5"),
    ("model.latent_dim", "2"),
    ("model.width", "64"),
    ("model.depth", "2"),
    ("model.activation", "relu"),
    ("quantizer.codebook_size", "64"),
    ("quantizer.update", "loss"),
    ("quantizer.beta", "0.25"),
    ("quantizer.ema_decay", "0.99"),
    ("quantizer.init", "kmeans"),
    ("quantizer.init_std", "1"),
    ("train.lr", "0.001"),
    ("train.batch_size", "256"),
    ("train.epochs", "30"),
    ("schedule.kind", "early"),
    ("schedule.continuous_epochs", "30"),
];
pub const METRICS: [&str; 14] = [
    "mse",
    "quant_mse",
    "perplexity",
    "codes_used",
    "dead_codes",
    "codebook_dist",
    "codebook_cos",
    "embed_dist",
    "shrink_ratio",
    "coverage",
    "embed_rank",
    "modes_hit",
    "mode_entropy",
    "token_mode_entropy",
];

/// A runs.csv row: `set` overrides parameters, `metrics` overrides metrics (others 1).
pub fn row(
    i: usize,
    status: &str,
    seed: u64,
    set: &[(&str, &str)],
    metrics: &[(&str, &str)],
) -> String {
    let mut cells = vec![
        format!("r{i}"),
        i.to_string(),
        status.into(),
        String::new(),
        "0.5".into(),
    ];
    for (k, v) in PARAMS {
        let v = set.iter().find(|(s, _)| *s == k).map_or(v, |(_, v)| *v);
        cells.push(v.into());
    }
    cells.push(seed.to_string());
    for m in METRICS {
        let v = metrics
            .iter()
            .find(|(s, _)| *s == m)
            .map_or("1", |(_, v)| *v);
        cells.push(if status == "diverged" { "NaN" } else { v }.into());
    }
    cells.join(",")
}

pub fn header() -> String {
    let mut h = vec!["run_id", "run_index", "status", "diverged_epoch", "seconds"];
    h.extend(PARAMS.iter().map(|(k, _)| *k));
    h.push("seed");
    h.extend(METRICS);
    h.join(",")
}

/// Three seeds per arm: `set` fixes parameters, each metric is `mean` + {−1, 0, 1} × `spread`.
pub struct Arm<'a> {
    pub set: Vec<(&'a str, String)>,
    pub metrics: Vec<(&'a str, f64, f64)>,
}

pub fn arm<'a>(set: &[(&'a str, &str)], metrics: &[(&'a str, f64, f64)]) -> Arm<'a> {
    Arm {
        set: set.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        metrics: metrics.to_vec(),
    }
}

/// Write `dir/runs.csv` with three ok seeds per arm; run ids are `r0`, `r1`, ...
pub fn write_runs(dir: &Path, arms: &[Arm]) {
    let mut lines = vec![header()];
    let mut i = 0;
    for a in arms {
        for seed in 0..3u64 {
            let set: Vec<(&str, &str)> = a.set.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let vals: Vec<(&str, String)> = a
                .metrics
                .iter()
                .map(|(m, mean, spread)| (*m, (mean + (seed as f64 - 1.0) * spread).to_string()))
                .collect();
            let vals: Vec<(&str, &str)> = vals.iter().map(|(k, v)| (*k, v.as_str())).collect();
            lines.push(row(i, "ok", seed, &set, &vals));
            i += 1;
        }
    }
    fs::write(dir.join("runs.csv"), lines.join("\n") + "\n").unwrap();
}

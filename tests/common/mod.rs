//! Fixtures shared by the tests: a runs.csv writer (summary and claims tests), a raw .npy writer
//! (array readers) and plain reference distances (metric tests).
#![allow(dead_code)]

pub mod tables;

use std::fs;
use std::path::{Path, PathBuf};

use vqsim::sim::config::RunConfig;
use vqsim::study::scenario::flatten;
use vqsim::study::store::{metric_names, RUN_COLUMNS};

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
        String::new(),
        "0.5".into(),
    ];
    // Every scenario key at its default unless `set` says otherwise.
    for (k, v) in flatten(&RunConfig::default()) {
        let v = set
            .iter()
            .find(|(s, _)| *s == k)
            .map_or(v.as_str(), |(_, v)| *v);
        cells.push(v.into());
    }
    cells.push(seed.to_string());
    for m in metric_names() {
        let v = metrics
            .iter()
            .find(|(s, _)| *s == m)
            .map_or("1", |(_, v)| *v);
        cells.push(if status == "ok" { v } else { "NaN" }.into());
    }
    cells.join(",")
}

pub fn header() -> String {
    let mut h: Vec<String> = RUN_COLUMNS.map(String::from).into();
    h.extend(flatten(&RunConfig::default()).into_iter().map(|(k, _)| k));
    h.push("seed".into());
    h.extend(metric_names());
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

/// A `.npy` with a hand-written header, so that Fortran order and lies can be made.
pub fn raw_npy(
    dir: &Path,
    name: &str,
    descr: &str,
    fortran: bool,
    shape: &str,
    data: &[u8],
) -> PathBuf {
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

/// Euclidean distance in f64: the plain definition the fast pairwise paths are checked against.
pub fn euclid(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&u, &v)| (u as f64 - v as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// k-th nearest other distance of each row, by sorting (the reference way).
pub fn radii(rows: &[Vec<f32>], k: usize) -> Vec<f64> {
    (0..rows.len())
        .map(|i| {
            let mut d: Vec<f64> = (0..rows.len())
                .filter(|&j| j != i)
                .map(|j| euclid(&rows[i], &rows[j]))
                .collect();
            d.sort_by(f64::total_cmp);
            d[k - 1]
        })
        .collect()
}

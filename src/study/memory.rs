//! The memory guard: a sweep whose runs would not fit in memory is refused before any work,
//! naming the keys that drive the size, instead of being killed by the OS mid-sweep.
//!
//! The estimate is an upper bound on one run's peak, counted in the arrays a run holds at
//! once (f32 values, 4 bytes; indices, 8 bytes):
//!
//! - data: n points × d inputs, their labels, and the train/held-out index lists;
//! - evaluation on the whole data set after every epoch: embeddings n × m, reconstructions
//!   n × d, code assignments, and the hidden activations of encoder and decoder
//!   (n × width per layer, kept for the pass, twice for pre- and post-activation);
//! - the k-means initialisation: an f64 copy of the n × m embeddings and memberships;
//! - the end-of-run snapshot: a copy of data, embeddings, reconstructions, labels and codes,
//!   plus its `.npz` bytes (the same numbers again, up to twice while the buffer grows);
//! - the history: one row of every metric per epoch (small);
//! - the epochs measured beside training: up to `train::MOMENTS_HELD` copies of the networks
//!   (weights and gradients) and of the quantizer.
//!
//! Runs in flight at once: the `threads` costliest ones (the sweep starts the longest first).

use std::path::Path;

use crate::sim::checked::ValidRun;
use crate::sim::config::ScheduleKind;
use crate::sim::train;
use crate::sim::vq;
use crate::study::scenario::RunSpec;

/// Bytes per history CSV cell while the text is built: the String (24) and its heap text
/// (allocator-rounded).
const CSV_CELL_BYTES: u64 = 56;
/// Metrics per history row, and bytes per formatted metric cell.
const HISTORY_CELLS: u64 = 16;

/// Upper bound of one run's peak memory in bytes.
pub fn run_bytes(cfg: &ValidRun) -> u64 {
    let n = cfg.points() as u64;
    let (d, m) = (cfg.data.dim as u64, cfg.model.latent_dim as u64);
    let (w, depth) = (cfg.model.width as u64, cfg.model.depth as u64);
    let data = n * d * 4 + n * 8 * 2;
    let hidden = if depth == 0 { 0 } else { 2 * 2 * depth * w };
    let eval = n * (m + d + hidden) * 4 + n * 8;
    let kmeans = n * m * 8 + n * 8;
    let snapshot = 3 * (n * (2 * d + m) * 4 + n * 8 * 2);
    let epochs = (cfg.train.epochs
        + match cfg.schedule.kind {
            ScheduleKind::Deferred | ScheduleKind::Continuous => cfg.schedule.continuous_epochs,
            ScheduleKind::Early => 0,
        }) as u64;
    let history = (epochs + 2) * HISTORY_CELLS * CSV_CELL_BYTES * 2;
    let params = 4 * 4 * (w * (d + m) + depth.saturating_sub(1) * w * w + d + m);
    // A residual quantizer: a codebook per level, and in evaluation a code per point and
    // level, the residuals and one level's codes.
    let levels = vq::levels(&cfg.quantizer) as u64;
    let codebook = levels * cfg.quantizer.codebook_size as u64 * m * 4 * 4;
    let residual = if levels > 1 {
        (levels - 1) * n * 8 + 2 * n * m * 4
    } else {
        0
    };
    let moments = train::MOMENTS_HELD as u64 * (params / 2 + codebook);
    data + eval + residual + kmeans + snapshot + history + params + codebook + moments
}

/// What a sweep would need at its peak.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Bytes of the runs in flight at once.
    pub bytes: u64,
    /// Runs counted (at most the thread count).
    pub concurrent: usize,
    /// The largest run: its bytes and the values of the keys that drive its size.
    pub largest: u64,
    pub drivers: String,
}

/// The peak of `runs` on `threads` threads: the sum of the `threads` largest.
pub fn estimate(runs: &[&RunSpec], threads: usize) -> Estimate {
    let mut sizes: Vec<(u64, &ValidRun)> = runs
        .iter()
        .map(|r| (run_bytes(&r.config), &r.config))
        .collect();
    sizes.sort_by_key(|s| std::cmp::Reverse(s.0));
    let concurrent = threads.min(sizes.len());
    let bytes = sizes[..concurrent].iter().map(|(b, _)| b).sum();
    let (largest, drivers) = sizes.first().map_or((0, String::new()), |(b, c)| {
        (
            *b,
            format!(
                "`data.modes` × `data.points_per_mode` = {} × {} points of `data.dim` = {}, `model.latent_dim` = {}, `model.width` = {} × `model.depth` = {}",
                c.data.modes,
                c.data.points_per_mode,
                c.data.dim,
                c.model.latent_dim,
                c.model.width,
                c.model.depth
            ),
        )
    });
    Estimate {
        bytes,
        concurrent,
        largest,
        drivers,
    }
}

/// Memory available to new work: `MemAvailable` of /proc/meminfo (Linux); None elsewhere.
pub fn available() -> Option<u64> {
    meminfo_available(&std::fs::read_to_string(Path::new("/proc/meminfo")).ok()?)
}

fn meminfo_available(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `12.3 GiB`, `512 MiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = b as f64;
    let mut unit = 0;
    while x >= 1024.0 && unit + 1 < UNITS.len() {
        x /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{x:.1} {}", UNITS[unit])
    }
}

/// Parses `--max-memory`: bytes, or a number with K, M, G or T (powers of 1024, optional
/// `iB`/`B`), e.g. `16G`, `512MiB`, `1.5T`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim().to_ascii_uppercase();
    let scale: u64 = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit; use bytes or K, M, G, T (e.g. 16G)"
            ))
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a number of bytes, e.g. 16G or 512M"))?;
    let bytes = value * scale as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("`{text}`: must be at least 1 byte"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::scenario::Scenario;

    #[test]
    fn meminfo_gives_available_bytes() {
        let text =
            "MemTotal:       24684096 kB\nMemFree:  19127588 kB\nMemAvailable:   22461372 kB\n";
        assert_eq!(meminfo_available(text), Some(22_461_372 * 1024));
        assert_eq!(meminfo_available("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn sizes_parse_in_powers_of_1024() {
        assert_eq!(parse_bytes("16G"), Ok(16 << 30));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("1.5k"), Ok(1536));
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert!(parse_bytes("16Q").is_err());
        assert!(parse_bytes("G").is_err());
        assert!(parse_bytes("0").is_err());
    }

    #[test]
    fn the_data_dominates_a_large_scenario_and_threads_multiply_it() {
        let s = Scenario::from_str(
            "[data]\nmodes = 1000\npoints_per_mode = 10000\ndim = 1024\n[sweep]\n\"schedule.kind\" = [\"early\", \"deferred\"]\n",
            None,
            "big",
        )
        .unwrap();
        let runs: Vec<&RunSpec> = s.runs.iter().collect();
        let one = estimate(&runs, 1);
        // 10⁷ points × 1024 dims × 4 bytes is 41 GB for the data alone; the snapshot (data,
        // reconstructions and 2-D embeddings, copied and written) three times as much again.
        let n = 10_000_000u64;
        assert!(one.largest > n * 1024 * 4 + 3 * n * 2050 * 4);
        assert!(one.largest < n * 1024 * 4 * 10);
        let both: u64 = runs.iter().map(|r| run_bytes(&r.config)).sum();
        assert_eq!(estimate(&runs, 2).bytes, both);
        assert!(
            both > 2 * one.bytes - 1_000_000,
            "the arms differ only in history"
        );
        assert_eq!(estimate(&runs, 8).concurrent, 2);
        assert!(one
            .drivers
            .contains("1000 × 10000 points of `data.dim` = 1024"));
    }

    #[test]
    fn the_default_run_needs_a_few_megabytes() {
        let b = run_bytes(
            &crate::sim::valid::validate(&crate::sim::config::RunConfig::default(), None).unwrap(),
        );
        assert!((1 << 20..64 << 20).contains(&b), "{}", human_bytes(b));
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
        assert_eq!(human_bytes(100), "100 B");
    }
}

//! The terminal's summary of a sweep, printed after `run` and `merge`: one line per
//! configuration with its mean metrics, and how complete the sweep is.

use crate::report::results::Results;
use crate::report::table::TableError;
use crate::study::sweep::plural;

/// Metrics shown by `summary`, averaged over seeds.
pub const SUMMARY_METRICS: [&str; 5] = [
    "perplexity",
    "codes_used",
    "shrink_ratio",
    "mse",
    "modes_hit",
];

/// Four significant digits without exponent clutter for the usual ranges.
fn fmt_sig(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let a = x.abs();
    if a != 0.0 && !(1e-3..1e6).contains(&a) {
        return format!("{x:.3e}");
    }
    let digits = if a == 0.0 {
        0
    } else {
        a.log10().floor() as i32
    };
    format!("{x:.*}", (3 - digits).clamp(0, 6) as usize)
}

/// A plain-text table of runs.csv: one row per configuration of the parameters that vary,
/// with the run and divergence counts and the mean over seeds of `SUMMARY_METRICS` (diverged
/// runs excluded). Ends with the completeness line of `manifest.toml`.
pub fn summary(results: &Results) -> Result<String, TableError> {
    let table = &results.table;
    let start = table.column("seconds")? + 1;
    let end = table.column("seed")?;
    let params: Vec<&str> = table.headers[start..end]
        .iter()
        .map(String::as_str)
        .collect();
    let varying = table.varying(&params);
    let groups = table.group_by(&varying)?;

    let mut header: Vec<String> = varying.iter().map(|s| s.to_string()).collect();
    header.extend(["runs".into(), "diverged".into()]);
    header.extend(SUMMARY_METRICS.iter().map(|s| s.to_string()));
    let mut cells = vec![header];
    for (key, rows) in &groups {
        let ok: Vec<usize> = rows
            .iter()
            .copied()
            .filter(|&r| table.get(r, "status").is_ok_and(|s| s != "diverged"))
            .collect();
        let mut line = key.clone();
        line.push(rows.len().to_string());
        line.push((rows.len() - ok.len()).to_string());
        for m in SUMMARY_METRICS {
            let vals: Vec<f64> = ok
                .iter()
                .map(|&r| table.num(r, m))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .filter(|v| v.is_finite())
                .collect();
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            line.push(fmt_sig(mean));
        }
        cells.push(line);
    }

    let widths: Vec<usize> = (0..cells[0].len())
        .map(|c| cells.iter().map(|row| row[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in cells.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if c < varying.len() {
                    format!("{cell:<w$}", w = widths[c])
                } else {
                    format!("{cell:>w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
            out.push('\n');
        }
    }
    if let Some(m) = &results.manifest {
        out.push_str(&format!(
            "{}: {} finished ({} diverged), {} missing\n",
            plural(m.runs, "run"),
            m.finished,
            m.diverged,
            m.missing
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn significant_digits() {
        assert_eq!(fmt_sig(59.123), "59.12");
        assert_eq!(fmt_sig(0.0612), "0.06120");
        assert_eq!(fmt_sig(64.0), "64.00");
        assert_eq!(fmt_sig(12345.6), "12346");
        assert_eq!(fmt_sig(f64::NAN), "-");
        assert_eq!(fmt_sig(2e-5), "2.000e-5");
    }
}

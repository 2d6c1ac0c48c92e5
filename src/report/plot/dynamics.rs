//! Training dynamics from history.csv: codebook spread, perplexity and MSE vs epoch per arm,
//! with the quantization switch of deferred runs marked.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;

use plotters::style::RGBColor;

use super::axis::{Axis, Scale};
use super::curves::{Curve, CurvePanel, CurvesFig};
use super::runs::{spread, Group, Runs};
use super::style::{arm_color, Key};
use super::tokens::{arm_legend, seeds_note};
use super::{save, Figure, PlotError, Projection};
use crate::report::results::Results;
use crate::report::stats::{mean_ci, MeanCi};
use crate::report::summary::{DEFERRED, SCHEDULE};
use crate::report::table::Table;

const MAX_FIGURES: usize = 4;
/// Colour of a continuous phase that several arms share.
const SHARED: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// Points of one curve: (total epoch, mean and CI over seeds).
type Points = Vec<(f64, MeanCi)>;
const METRICS: [(&str, &str, &str, Scale); 3] = [
    (
        "codebook_dist",
        "codebook spread",
        "mean code distance (a.u.)",
        Scale::Linear,
    ),
    (
        "perplexity",
        "code perplexity",
        "perplexity (codes)",
        Scale::Linear,
    ),
    (
        "mse",
        "reconstruction error",
        "MSE (a.u.², log scale)",
        Scale::Log10,
    ),
];

/// One dynamics figure per group of runs that differ only in arm and seed, when the sweep kept
/// a history.
pub struct Dynamics;

impl Figure for Dynamics {
    fn stem(&self) -> &'static str {
        "dynamics"
    }

    fn title(&self) -> &'static str {
        "dynamics"
    }

    fn describe(&self, results: &Results) -> String {
        let t = &results.table;
        let values = |key: &str, deferred: bool| -> Vec<String> {
            let (Ok(kind), Ok(col)) = (t.column(SCHEDULE), t.column(key)) else {
                return Vec::new();
            };
            let mut v: Vec<String> = t
                .rows
                .iter()
                .filter(|r| !deferred || r[kind] == DEFERRED)
                .map(|r| r[col].clone())
                .collect();
            v.sort();
            v.dedup();
            v
        };
        let continuous: Vec<String> = values("schedule.continuous_epochs", true)
            .into_iter()
            .filter(|c| c != "0")
            .collect();
        let mut text = String::from(
            "Training dynamics: codebook spread, code perplexity and reconstruction MSE per \
             epoch, mean and 95% CI band over seeds; ",
        );
        if continuous.is_empty() {
            text.push_str("every run quantizes from the first epoch.");
        } else {
            // Why the deferred curves run longer: the same quantized training after a
            // continuous phase, on one epoch axis.
            let (epochs, extra) = (values("train.epochs", false), continuous);
            let length = match (epochs.as_slice(), extra.as_slice()) {
                ([e], [c]) => format!(
                    "Early runs train {e} epochs, all quantized; deferred runs first train {c} \
                     epochs without quantization and then the same {e} quantized epochs, so \
                     their curves run to {}: both arms get equal quantized training, and the \
                     axis counts the epochs of both phases.",
                    e.parse::<u64>().unwrap_or(0) + c.parse::<u64>().unwrap_or(0)
                ),
                _ => "Deferred runs first train without quantization and then as many \
                      quantized epochs as early runs, so their curves run longer: both arms \
                      get equal quantized training, and the axis counts the epochs of both \
                      phases."
                    .into(),
            };
            let _ = write!(
                text,
                "the dashed line marks where deferred runs switch quantization on, and before \
                 it a continuous phase that several deferred arms share is drawn once, in grey. \
                 {length}"
            );
        }
        text.push_str(
            " On the log MSE axis a band&rsquo;s lower edge is drawn no lower than a tenth of \
             the mean.",
        );
        text
    }

    fn fits(&self, results: &Results) -> bool {
        results.history.is_some()
    }

    fn draw(&self, results: &Results, _: Projection) -> Result<Vec<PathBuf>, PlotError> {
        let Some(table) = &results.history else {
            return Ok(Vec::new());
        };
        let runs = &results.runs;
        let history = History::new(table, runs)?;
        let mut paths = Vec::new();
        for group in &spread(&runs.groups(&[]), MAX_FIGURES) {
            if let Some(fig) = figure(runs, &history, group) {
                paths.extend(save(
                    &fig,
                    &results.dir,
                    &format!("dynamics{}", group.slug()),
                )?);
            }
        }
        Ok(paths)
    }
}

/// history.csv rows indexed by the runs.csv row of their run (ok runs only).
struct History<'a> {
    table: &'a Table,
    /// runs.csv row → history rows.
    by_run: HashMap<usize, Vec<usize>>,
}

impl<'a> History<'a> {
    fn new(table: &'a Table, runs: &Runs) -> Result<History<'a>, PlotError> {
        for c in ["run_id", "phase", "epoch", "total_epoch"] {
            table.column(c)?;
        }
        let row_of: HashMap<&str, usize> = (0..runs.len())
            .map(|r| (runs.text(r, "run_id"), r))
            .collect();
        let id = table.column("run_id")?;
        let mut by_run: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, row) in table.rows.iter().enumerate() {
            if let Some(&r) = row_of.get(row[id].as_str()) {
                by_run.entry(r).or_default().push(i);
            }
        }
        Ok(History { table, by_run })
    }

    fn num(&self, row: usize, col: &str) -> f64 {
        self.table.num(row, col).unwrap_or(f64::NAN)
    }
}

fn figure(runs: &Runs, history: &History, group: &Group) -> Option<CurvesFig> {
    let rows: Vec<usize> = group
        .rows
        .iter()
        .copied()
        .filter(|r| history.by_run.contains_key(r))
        .collect();
    if rows.is_empty() {
        return None;
    }
    let mut switches: Vec<(f64, usize)> = Vec::new();
    let mut panels = Vec::new();
    let mut shared_any = false;
    for (metric, title, y_desc, y) in METRICS {
        // Per arm: its colour index, continuous-phase points and quantized points.
        let mut arms: Vec<(usize, Points, Points)> = Vec::new();
        for (i, arm) in runs.arms.iter().enumerate() {
            // (total_epoch, phase order) → values over seeds; continuous before quantized so
            // the two states at the switch epoch are drawn in training order.
            let mut at: BTreeMap<(i64, u8), Vec<f64>> = BTreeMap::new();
            let mut switch = None;
            for &r in rows.iter().filter(|&&r| runs.arm(r) == *arm) {
                for &h in &history.by_run[&r] {
                    let quantized = history.table.get(h, "phase").ok() == Some("quantized");
                    let total = history.num(h, "total_epoch");
                    if !total.is_finite() {
                        continue;
                    }
                    if quantized && history.num(h, "epoch") == 0.0 && total > 0.0 {
                        switch = Some(total);
                    }
                    at.entry((total as i64, u8::from(quantized)))
                        .or_default()
                        .push(history.num(h, metric));
                }
            }
            if at.is_empty() {
                continue;
            }
            if let Some(s) = switch {
                if !switches.iter().any(|&(x, _)| x == s) {
                    switches.push((s, i));
                }
            }
            let (mut cont, mut quant) = (Vec::new(), Vec::new());
            for ((t, q), v) in at {
                let p = (t as f64, mean_ci(&v, 0.95));
                if q == 1 {
                    quant.push(p);
                } else {
                    cont.push(p);
                }
            }
            arms.push((i, cont, quant));
        }
        // Deferred arms that differ only in what happens at the switch (e.g. the codebook
        // init) share their continuous phase exactly: draw it once, in grey, rather than as
        // overlapping bands that mix into an unexplained colour.
        let shared = |c: &Points| {
            arms.iter()
                .filter(|(_, o, _)| !c.is_empty() && o == c)
                .count()
                > 1
        };
        let mut curves = Vec::new();
        let mut drawn: Vec<Points> = Vec::new();
        for (i, cont, quant) in &arms {
            let pts = if shared(cont) {
                if !drawn.contains(cont) {
                    drawn.push(cont.clone());
                    curves.push(Curve {
                        color: SHARED,
                        pts: cont.clone(),
                    });
                }
                quant.clone()
            } else {
                cont.iter().chain(quant).copied().collect()
            };
            curves.push(Curve {
                color: arm_color(*i),
                pts,
            });
        }
        shared_any |= !drawn.is_empty();
        let mut p = CurvePanel {
            title: title.into(),
            x_desc: "epoch (all phases)".into(),
            y_desc: y_desc.into(),
            x: Axis::fit(Scale::Linear, [0.0], 0.0),
            y: Axis::fit(y, [1.0], 0.0),
            curves,
            markers: false,
            reference: None,
            vlines: Vec::new(),
        };
        p.fit_axes(Scale::Linear, y);
        panels.push(p);
    }
    let mut legend = arm_legend(runs, &rows);
    if shared_any {
        legend.push((
            Key::Band(SHARED),
            "continuous phase shared by deferred arms".into(),
        ));
    }
    for p in &mut panels {
        p.vlines = switches.iter().map(|&(x, i)| (x, arm_color(i))).collect();
    }
    if !switches.is_empty() {
        legend.push((
            Key::Dashed(arm_color(switches[0].1)),
            "quantization switch".into(),
        ));
    }
    let mut title = format!("{}: training dynamics", runs.scenario);
    if !group.values.is_empty() {
        title += &format!(" ({})", group.describe());
    }
    let by: Vec<&str> = group.values.iter().map(|(k, _)| *k).collect();
    Some(CurvesFig {
        title,
        subtitle: format!(
            "{} · {}",
            runs.subtitle(&rows, &[]),
            seeds_note(runs, &rows, &by)
        ),
        legend: vec![legend],
        panels,
        cols: 3,
    })
}

//! Figures from hand-written results directories: each figure function writes valid PNG and
//! SVG files, and `plot_all` draws exactly the figures that fit what varies.
//!
//! Set PLOT_KEEP=/some/dir to build the fixtures there (and keep them) to look at the figures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2};
use ndarray_npy::NpzWriter;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vqsim::report::plot::{
    self, params, Capacity, Dynamics, Figure, Generation, Projection, Shrinkage, TokenScaling,
};
use vqsim::report::results::Results;
use vqsim::sim::config::RunConfig;
use vqsim::study::scenario::flatten;
use vqsim::study::store::metric_names;

fn defaults() -> BTreeMap<&'static str, String> {
    let mut cfg = RunConfig::default();
    cfg.data.points_per_mode = 200;
    params()
        .into_iter()
        .zip(flatten(&cfg).into_iter().map(|(_, value)| value))
        .collect()
}

/// One synthetic run: its parameters, seed, status and whether it keeps a snapshot.
struct Run {
    params: BTreeMap<&'static str, String>,
    seed: u64,
    ok: bool,
    snapshot: bool,
}

impl Run {
    fn get(&self, k: &str) -> f64 {
        self.params[k].parse().unwrap()
    }
    fn early(&self) -> bool {
        self.params["schedule.kind"] == "early"
    }
}

/// A plausible picture of the paper's findings, with seed noise, so figures can be judged.
fn metrics(run: &Run, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let s = run.get("quantizer.codebook_size");
    let (depth, width) = (run.get("model.depth"), run.get("model.width"));
    let mut n = |x: f64| x * (1.0 + 0.1 * (rng.gen::<f64>() - 0.5));
    let (mse, ppl, dist) = if run.early() {
        (n(5.0), n(7.0 + s.log2() * 0.3), n(1.0))
    } else {
        (n(0.5 * 8.0 / s), n(0.9 * s), n(11.0))
    };
    let rank = (0.6 + 0.35 * depth + 0.15 * (width / 4.0).log2()).min(2.0);
    let modes = (3.0 + 2.0 * depth + (width / 4.0).log2()).min(10.0).round();
    vec![
        mse,
        mse / 3.0,
        ppl,
        ppl.min(s),
        0.0,
        dist,
        0.5,
        11.0,
        dist / 11.0,
        0.8,
        n(rank),
        modes,
        2.0,
        f64::NAN,
        f64::NAN, // heldout_mse: no held-out split
        dist,
        dist / 11.0,
        n(rank),
        modes,
        2.0,
        1.0,
        1.0,
        mse,
        0.9,
        0.1,
        1.0,
        0.9,
        0.0, // restarts
        1.0, // code_travel
    ]
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v}")
    }
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box–Muller: the test needs no distribution crate.
    let (u, v): (f64, f64) = (rng.gen::<f64>().max(1e-12), rng.gen());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// The snapshot.npz of one run: early runs collapse 10 modes onto 7 and
/// crowd their codes near the origin; deferred runs spread codes over the modes.
fn write_snapshot(dir: &Path, id: &str, run: &Run) {
    let d = run.get("data.dim") as usize;
    let m = run.get("model.latent_dim") as usize;
    let k = run.get("data.modes") as usize;
    let per = run.get("data.points_per_mode") as usize;
    let s = run.get("quantizer.codebook_size") as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(run.seed);
    let means: Vec<Vec<f64>> = (0..k)
        .map(|_| (0..d).map(|_| rng.gen_range(-10.0..10.0)).collect())
        .collect();
    let scale = if run.early() { 0.08 } else { 0.4 };
    let embed = |x: &[f64]| -> Vec<f64> {
        (0..m)
            .map(|i| scale * x[i % d] * (1.0 + 0.3 * i as f64))
            .collect()
    };
    let codes: Vec<Vec<f64>> = (0..s)
        .map(|j| {
            if run.early() {
                (0..m).map(|_| 0.3 * normal(&mut rng)).collect()
            } else {
                let c = embed(&means[j % k]);
                c.iter().map(|v| v + 0.3 * normal(&mut rng)).collect()
            }
        })
        .collect();
    let mut usage = vec![0i64; s];
    let (mut labels, mut xs, mut zs, mut rs, mut assigned) =
        (vec![], vec![], vec![], vec![], vec![]);
    for label in 0..k {
        for _ in 0..per {
            let x: Vec<f64> = means[label]
                .iter()
                .map(|mu| mu + 0.5 * normal(&mut rng))
                .collect();
            let z = embed(&x);
            let code = (0..s)
                .min_by(|&a, &b| dist2(&codes[a], &z).total_cmp(&dist2(&codes[b], &z)))
                .unwrap();
            usage[code] += 1;
            let target = if run.early() { &means[label % 7] } else { &x };
            let r: Vec<f64> = target.iter().map(|v| v + 0.15 * normal(&mut rng)).collect();
            labels.push(label as i64);
            assigned.push(code as i64);
            xs.push(x);
            zs.push(z);
            rs.push(r);
        }
    }
    let matrix = |rows: &[Vec<f64>], cols: usize| {
        Array2::from_shape_fn((rows.len(), cols), |(i, j)| rows[i][j] as f32)
    };
    let rd = dir.join("runs").join(id);
    std::fs::create_dir_all(&rd).unwrap();
    let mut npz = NpzWriter::new(std::fs::File::create(rd.join("snapshot.npz")).unwrap());
    npz.add_array("label", &Array1::from(labels)).unwrap();
    npz.add_array("x", &matrix(&xs, d)).unwrap();
    npz.add_array("z", &matrix(&zs, m)).unwrap();
    npz.add_array("r", &matrix(&rs, d)).unwrap();
    npz.add_array("code", &Array1::from(assigned)).unwrap();
    npz.add_array("codebook", &matrix(&codes, m)).unwrap();
    npz.add_array("usage", &Array1::from(usage)).unwrap();
    npz.add_array("means", &matrix(&means, d)).unwrap();
    npz.finish().unwrap();
}

fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

/// Per-epoch history: deferred runs have a continuous phase with NaN codebook metrics.
fn write_history_rows(out: &mut String, id: &str, run: &Run, rng: &mut ChaCha8Rng) {
    let epochs = run.get("train.epochs") as usize;
    let cont = if run.early() {
        0
    } else {
        run.get("schedule.continuous_epochs") as usize
    };
    let s = run.get("quantizer.codebook_size");
    let mut row = |phase: &str, e: usize, total: usize, mse: f64, ppl: f64, dist: f64| {
        let mut m = vec![f64::NAN; metric_names().len()];
        m[0] = mse * (1.0 + 0.1 * rng.gen::<f64>());
        m[2] = ppl;
        m[5] = dist;
        let vals: Vec<String> = m.into_iter().map(fmt).collect();
        writeln!(out, "{id},{phase},{e},{total},{}", vals.join(",")).unwrap();
    };
    if !run.early() {
        for e in 0..=cont {
            row(
                "continuous",
                e,
                e,
                40.0 * (-(e as f64) / 5.0).exp() + 0.1,
                f64::NAN,
                f64::NAN,
            );
        }
    }
    for e in 0..=epochs {
        let t = e as f64 / epochs as f64;
        if run.early() {
            row(
                "quantized",
                e,
                e,
                40.0 * (-(e as f64) / 4.0).exp() + 5.0,
                3.0 + 4.0 * t,
                1.6 - 0.8 * t,
            );
        } else {
            row(
                "quantized",
                e,
                cont + e,
                0.1 - 0.04 * t,
                0.9 * s * (0.8 + 0.2 * t),
                11.0,
            );
        }
    }
}

/// Writes runs.csv, history.csv (if asked) and snapshots into `dir`.
fn write_results(dir: &Path, runs: &[Run], history: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let mut csv = String::from("run_id,run_index,status,diverged_epoch,seconds");
    for p in params()
        .iter()
        .map(|s| s.to_string())
        .chain(["seed".into()])
    {
        write!(csv, ",{p}").unwrap();
    }
    for m in metric_names() {
        write!(csv, ",{m}").unwrap();
    }
    csv.push('\n');
    let mut hist = String::from("run_id,phase,epoch,total_epoch");
    for m in metric_names() {
        write!(hist, ",{m}").unwrap();
    }
    hist.push('\n');
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for (i, run) in runs.iter().enumerate() {
        let id = format!("r{i:04}");
        let (status, div) = if run.ok {
            ("ok", "")
        } else {
            ("diverged", "3")
        };
        write!(csv, "{id},{i},{status},{div},1.5").unwrap();
        for p in params() {
            write!(csv, ",{}", run.params[p]).unwrap();
        }
        write!(csv, ",{}", run.seed).unwrap();
        for v in metrics(run, &mut rng) {
            write!(csv, ",{}", fmt(if run.ok { v } else { f64::NAN })).unwrap();
        }
        csv.push('\n');
        if history {
            write_history_rows(&mut hist, &id, run, &mut rng);
        }
        if run.snapshot {
            write_snapshot(dir, &id, run);
        }
    }
    std::fs::write(dir.join("runs.csv"), csv).unwrap();
    if history {
        std::fs::write(dir.join("history.csv"), hist).unwrap();
    }
}

/// The cartesian product of `axes` × schedule × seeds over the defaults.
fn sweep(axes: &[(&'static str, &[&str])], seeds: u64, snapshot_seed0: bool) -> Vec<Run> {
    let mut combos: Vec<BTreeMap<&'static str, String>> = vec![defaults()];
    let mut all_axes: Vec<(&'static str, &[&str])> = axes.to_vec();
    all_axes.push(("schedule.kind", &["early", "deferred"]));
    for (k, vals) in all_axes {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                vals.iter().map(move |v| {
                    let mut c = c.clone();
                    c.insert(k, v.to_string());
                    c
                })
            })
            .collect();
    }
    combos
        .into_iter()
        .flat_map(|params| {
            (0..seeds).map(move |seed| Run {
                params: params.clone(),
                seed,
                ok: true,
                snapshot: snapshot_seed0 && seed == 0,
            })
        })
        .collect()
}

/// A fresh directory for one fixture (kept under PLOT_KEEP when set).
fn fixture(name: &str, keep: &mut Option<tempfile::TempDir>) -> PathBuf {
    if let Ok(root) = std::env::var("PLOT_KEEP") {
        let dir = Path::new(&root).join(name);
        let _ = std::fs::remove_dir_all(&dir);
        return dir;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join(name);
    *keep = Some(t);
    dir
}

fn names(paths: &[PathBuf]) -> Vec<String> {
    let mut v: Vec<String> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// PNG signature, IHDR dimensions; SVG root and closing tag.
fn assert_valid(paths: &[PathBuf]) {
    assert!(!paths.is_empty());
    for p in paths {
        let bytes = std::fs::read(p).unwrap();
        match p.extension().and_then(|e| e.to_str()) {
            Some("png") => {
                assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{p:?}");
                assert_eq!(&bytes[12..16], b"IHDR");
                let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
                let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
                assert_eq!(w, plot::style::WIDTH, "{p:?}");
                assert!(h >= plot::style::ROW, "{p:?}: height {h}");
                // A blank white canvas compresses to a few kB; a drawn figure does not.
                assert!(bytes.len() > 20_000, "{p:?}: only {} bytes", bytes.len());
            }
            Some("svg") => {
                let s = String::from_utf8(bytes).unwrap();
                assert!(s.starts_with("<svg") || s.starts_with("<?xml"), "{p:?}");
                assert!(s.trim_end().ends_with("</svg>"), "{p:?}");
                assert!(s.contains("<text"), "{p:?} has no text");
            }
            other => panic!("unexpected figure file {p:?} ({other:?})"),
        }
        let dir = p.parent().unwrap();
        let leftovers: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left in {dir:?}");
    }
}

/// The stems of the figures that fit the results in `dir`.
fn fitting(dir: &Path) -> Vec<&'static str> {
    let results = Results::load(dir).unwrap();
    plot::fitting(&results).iter().map(|f| f.stem()).collect()
}

/// The files `figure` draws from the results in `dir`.
fn draw(figure: &dyn Figure, dir: &Path, projection: Projection) -> Vec<PathBuf> {
    figure
        .draw(&Results::load(dir).unwrap(), projection)
        .unwrap()
}

/// Every file `plot_all` draws from the results in `dir`.
fn plot_all(dir: &Path) -> Vec<PathBuf> {
    let drawn = plot::plot_all(&Results::load(dir).unwrap(), Projection::Pca).unwrap();
    drawn.into_iter().flat_map(|d| d.files).collect()
}

fn svg(dir: &Path, stem: &str) -> String {
    std::fs::read_to_string(dir.join("figures").join(format!("{stem}.svg"))).unwrap()
}

#[test]
fn token_sweep_gets_shrinkage_token_scaling_and_dynamics() {
    let mut keep = None;
    let dir = fixture("tokens", &mut keep);
    let runs = sweep(
        &[("quantizer.codebook_size", &["8", "16", "64", "256"])],
        3,
        true,
    );
    write_results(&dir, &runs, true);

    assert_eq!(
        fitting(&dir),
        ["shrinkage", "token_scaling", "dynamics", "generation"]
    );
    let tokens = draw(&TokenScaling, &dir, Projection::Pca);
    assert_eq!(
        names(&tokens),
        vec!["token_scaling.png", "token_scaling.svg"]
    );
    assert_valid(&tokens);
    let t = svg(&dir, "token_scaling");
    assert!(
        t.contains("ideal perplexity = S") && t.contains("\n256\n"),
        "log2 ticks as numbers"
    );

    let dynamics = draw(&Dynamics, &dir, Projection::Pca);
    assert_eq!(
        dynamics.len(),
        8,
        "one per codebook size: {:?}",
        names(&dynamics)
    );
    assert_valid(&dynamics);
    assert!(svg(&dir, "dynamics_S64").contains("quantization switch"));

    let shrink = draw(&Shrinkage, &dir, Projection::Pca);
    assert_eq!(
        names(&shrink),
        vec![
            "shrinkage_S16.png",
            "shrinkage_S16.svg",
            "shrinkage_S256.png",
            "shrinkage_S256.svg",
            "shrinkage_S64.png",
            "shrinkage_S64.svg",
            "shrinkage_S8.png",
            "shrinkage_S8.svg",
        ]
    );
    assert_valid(&shrink);
    assert!(!Capacity.fits(&Results::load(&dir).unwrap()));

    let all = plot_all(&dir);
    let generation = draw(&Generation, &dir, Projection::Pca);
    assert_valid(&generation);
    assert!(svg(&dir, "generation_S64").contains("deferred: generated, "));
    assert_eq!(
        all.len(),
        shrink.len() + tokens.len() + dynamics.len() + generation.len()
    );
    assert_valid(&all);
}

#[test]
fn dimension_sweep_projects_high_dimensions_on_principal_components() {
    let mut keep = None;
    let dir = fixture("dims", &mut keep);
    let mut runs = sweep(&[("data.dim", &["2", "8"])], 2, true);
    for r in runs.iter_mut().filter(|r| r.params["data.dim"] == "8") {
        r.params.insert("model.latent_dim", "4".into());
    }
    write_results(&dir, &runs, false);

    assert_eq!(fitting(&dir), ["shrinkage", "generation"]);
    let all = plot_all(&dir);
    assert_eq!(
        names(&all),
        vec![
            "generation_d2_m2.png",
            "generation_d2_m2.svg",
            "generation_d8_m4.png",
            "generation_d8_m4.svg",
            "shrinkage_d2_m2.png",
            "shrinkage_d2_m2.svg",
            "shrinkage_d8_m4.png",
            "shrinkage_d8_m4.svg"
        ]
    );
    assert_valid(&all);
    let g8 = svg(&dir, "generation_d8_m4");
    assert!(g8.contains("PC1 of x (a.u.)") && g8.contains("early: generated, "));
    let all: Vec<PathBuf> = all
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("shrinkage"))
        .collect();
    let (d2, d8) = (svg(&dir, "shrinkage_d2_m2"), svg(&dir, "shrinkage_d8_m4"));
    assert!(d2.contains("x₁ (a.u.)") && !d2.contains("PC1"));
    assert!(d8.contains("PC1 of x (a.u.)") && d8.contains("PC2 of z (a.u.)"));
    // Both arms are drawn, each row headed by its name, early first, and the fixed parameters
    // are named.
    let (e, f) = (
        d8.find("\nearly\n").unwrap(),
        d8.find("\ndeferred\n").unwrap(),
    );
    assert!(e < f);
    assert_eq!(d8.matches("\ndata &amp; reconstructions\n").count(), 2);
    assert!(d8.contains("d=8") && d8.contains("m=4") && d8.contains("K=10"));
    // t-SNE as the alternative projection: same files, t-SNE axes above 2 dimensions only.
    let tsne = draw(&Shrinkage, &dir, Projection::Tsne);
    assert_eq!(names(&tsne), names(&all));
    assert_valid(&tsne);
    let (d2, d8) = (svg(&dir, "shrinkage_d2_m2"), svg(&dir, "shrinkage_d8_m4"));
    assert!(d2.contains("x₁ (a.u.)") && !d2.contains("t-SNE"));
    assert!(d8.contains("t-SNE 1 of x") && d8.contains("t-SNE 2 of z") && !d8.contains("PC1"));
    let results = Results::load(&dir).unwrap();
    assert!(!TokenScaling.fits(&results) && !Dynamics.fits(&results));
}

#[test]
fn depth_and_width_sweep_gets_heat_maps_without_diverged_runs() {
    let mut keep = None;
    let dir = fixture("capacity", &mut keep);
    let mut runs = sweep(
        &[
            ("model.depth", &["0", "1", "2"]),
            ("model.width", &["4", "16", "64"]),
        ],
        2,
        false,
    );
    runs[0].snapshot = true;
    runs[2].snapshot = true;
    // A diverged run at a width no ok run has must not appear anywhere.
    let mut bad = sweep(&[("model.width", &["1024"])], 1, false).remove(0);
    bad.ok = false;
    runs.push(bad);
    write_results(&dir, &runs, false);

    let loaded = Results::load(&dir).unwrap().runs;
    assert_eq!(loaded.len(), runs.len() - 1);
    assert_eq!(loaded.distinct("model.width"), vec!["4", "16", "64"]);
    assert_eq!(loaded.arms, vec!["early", "deferred"]);

    assert_eq!(fitting(&dir), ["shrinkage", "capacity", "generation"]);
    let cap = draw(&Capacity, &dir, Projection::Pca);
    assert_eq!(names(&cap), vec!["capacity.png", "capacity.svg"]);
    assert_valid(&cap);
    let c = svg(&dir, "capacity");
    // Text only: 1024 may well be a pixel coordinate.
    assert!(c.contains("encoder width (units)") && !c.contains(">1024<"));
    // Each metric's numeric colour scale.
    assert!(c.contains("colour scale: effective rank (dims), all arms"));
    assert!(c.contains("colour scale: modes hit (of K), all arms"));
    // Only the group whose runs kept snapshots gets a shrinkage figure.
    let shrink = draw(&Shrinkage, &dir, Projection::Pca);
    assert_eq!(
        names(&shrink),
        vec!["shrinkage_width4_depth0.png", "shrinkage_width4_depth0.svg"]
    );
}

#[test]
fn width_only_sweep_gets_capacity_curves() {
    let mut keep = None;
    let dir = fixture("width", &mut keep);
    let runs = sweep(&[("model.width", &["4", "8", "16", "32", "64"])], 3, false);
    write_results(&dir, &runs, false);

    assert_eq!(fitting(&dir), ["shrinkage", "capacity", "generation"]);
    let all = plot_all(&dir);
    assert_eq!(
        names(&all),
        vec!["capacity.png", "capacity.svg"],
        "no snapshots: no shrinkage"
    );
    assert_valid(&all);
    let c = svg(&dir, "capacity");
    assert!(c.contains("log₂ scale") && c.contains("mean ± 95% CI over 3 seeds"));
}

#[test]
fn results_without_ok_runs_are_an_error() {
    let mut keep = None;
    let dir = fixture("failed", &mut keep);
    let mut runs = sweep(&[], 1, false);
    runs.iter_mut().for_each(|r| r.ok = false);
    write_results(&dir, &runs, false);
    let results = Results::load(&dir).unwrap();
    let err = plot::plot_all(&results, Projection::Pca)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no run with status `ok`"), "{err}");
}

/// Tiny real runs of `sweep` (milliseconds each), swept into a fresh directory.
fn tiny_runs(name: &str, sweep: &str, keep: &mut Option<tempfile::TempDir>) -> PathBuf {
    use vqsim::study::scenario::Scenario;
    use vqsim::study::sweep::{run_sweep, ProgressMode, SweepOptions};
    let text = format!(
        "seeds = [0, 1]\n[data]\nmodes = 4\npoints_per_mode = 60\n[model]\nwidth = 8\n\
         [quantizer]\ncodebook_size = 4\n[train]\nepochs = 2\nbatch_size = 64\n\
         [schedule]\ncontinuous_epochs = 2\n[sweep]\n{sweep}\n"
    );
    let scenario = Scenario::from_str(&text, None, name).unwrap();
    let out = fixture(name, keep);
    let mut opts = SweepOptions::new(&out);
    opts.threads = Some(1);
    opts.progress = ProgressMode::Quiet;
    run_sweep(&scenario, &opts).unwrap().dir
}

#[test]
fn deferred_arms_sharing_their_continuous_phase_get_one_grey_curve_in_the_legend() {
    let mut keep = None;
    let dir = tiny_runs(
        "init",
        "\"quantizer.init\" = [\"uniform\", \"kmeans\"]\n\"schedule.kind\" = [\"early\", \"deferred\"]",
        &mut keep,
    );
    draw(&Dynamics, &dir, Projection::Pca);
    assert!(svg(&dir, "dynamics").contains("continuous phase shared by deferred arms"));
    let caption = Dynamics.describe(&Results::load(&dir).unwrap());
    assert!(caption.contains("switch quantization on"), "{caption}");

    // One deferred arm: its continuous phase keeps its own colour, no extra legend entry.
    let mut keep = None;
    let dir = tiny_runs(
        "default",
        "\"schedule.kind\" = [\"early\", \"deferred\"]",
        &mut keep,
    );
    draw(&Dynamics, &dir, Projection::Pca);
    let d = svg(&dir, "dynamics");
    assert!(d.contains("quantization switch") && !d.contains("shared by deferred arms"));

    // Every run quantizes from the start: no switch line, and the caption says so.
    let mut keep = None;
    let dir = tiny_runs(
        "early",
        "\"quantizer.init\" = [\"uniform\", \"kmeans\"]",
        &mut keep,
    );
    let caption = Dynamics.describe(&Results::load(&dir).unwrap());
    assert!(!caption.contains("switch"), "{caption}");
    assert!(caption.contains("every run quantizes from the first epoch"));
}

//! `vqsim diagnose`: known answers on a hand-made codebook, the same numbers from every file
//! format, a vqsim run's own snapshot giving its runs.csv row, and refusals with exit 2.

use std::fs;
use std::path::Path;
use std::process::Command;

use half::f16;
use ndarray::{array, Array2};
use ndarray_npy::{write_npy, NpzWriter};
use safetensors::{serialize, tensor::TensorView, Dtype};
mod common;

use common::raw_npy;
use vqsim::arrays::{read_matrix, Shape, Source};
use vqsim::diagnose::{diagnose, verdict, Diagnosis, Limits};
use vqsim::study::scenario::Scenario;
use vqsim::study::sweep::{self, ProgressMode, Snapshots, SweepOptions};

/// Codes at (0,0), (4,0), (0,4) and one far away that nothing picks; embeddings: 2 on the
/// first code, 1 on each of the others (each 1 away along an axis).
fn hand_made() -> (Array2<f32>, Array2<f32>) {
    let codes = array![[0.0f32, 0.0], [4.0, 0.0], [0.0, 4.0], [100.0, 100.0]];
    let z = array![[1.0f32, 0.0], [0.0, 1.0], [5.0, 0.0], [0.0, 5.0]];
    (codes, z)
}

fn run(codes: &Array2<f32>, z: &Array2<f32>, labels: Option<&[usize]>) -> Diagnosis {
    diagnose(z.view(), codes.view(), labels, 0, Limits::default()).diagnosis
}

#[test]
fn known_answers_on_a_hand_made_codebook() {
    let (codes, z) = hand_made();
    let d = run(&codes, &z, Some(&[0, 0, 1, 1]));
    // Usage (2, 1, 1, 0): H = −(½ ln ½ + 2 · ¼ ln ¼) = 1.5 ln 2.
    assert!((d.perplexity - (1.5f64 * 2f64.ln()).exp()).abs() < 1e-12);
    assert_eq!((d.codes_used, d.dead_codes), (3.0, 1.0));
    assert!((d.quant_mse - 1.0).abs() < 1e-12);
    // Live codes (0,0), (4,0), (0,4): variance 2·(16/3 − 16/9) = 64/9; embeddings: mean (1.5, 1.5),
    // squared deviations summed per point 2.5²+1.5²… → total 2 · (2·1.5² + 3.5² + 0.5²)/4.
    let z_var = 2.0 * (2.0 * 2.25 + 12.25 + 0.25) / 4.0;
    assert!(
        (d.live_var_share - (64.0 / 9.0) / z_var).abs() < 1e-9,
        "{d:?}"
    );
    // Every pair distance of the four embeddings: √2, 5, 1·… computed directly.
    let pts = [(1.0f64, 0.0f64), (0.0, 1.0), (5.0, 0.0), (0.0, 5.0)];
    let mut sum = 0.0;
    for i in 0..4 {
        for j in i + 1..4 {
            sum += ((pts[i].0 - pts[j].0).powi(2) + (pts[i].1 - pts[j].1).powi(2)).sqrt();
        }
    }
    assert!((d.embed_dist - sum / 6.0).abs() < 1e-6, "{d:?}");
    assert!((d.shrink_ratio - d.codebook_dist / d.embed_dist).abs() < 1e-12);
    // Class means (0.5, 0.5) and (2.5, 2.5): code (0,0) → class 0; (4,0) and (0,4) are
    // 12.5 vs 8.5 (squared) away → class 1, and so is the dead code (100, 100). The paper's H
    // counts every code (p_k = |T_k|/S, as a run's token_mode_entropy): shares 1/4, 3/4.
    assert_eq!(d.classes_hit, 2.0);
    let h = -(0.25f64 * 0.25f64.ln() + 0.75 * 0.75f64.ln());
    assert!((d.token_class_entropy - h).abs() < 1e-12, "{d:?}");
    // Sparse, huge label values are classes like any other.
    let sparse = run(&codes, &z, Some(&[7, 7, usize::MAX, usize::MAX]));
    assert_eq!(sparse.classes_hit, 2.0);
    assert_eq!(sparse.token_class_entropy, d.token_class_entropy);
    let no_labels = run(&codes, &z, None);
    assert!(no_labels.classes_hit.is_nan() && no_labels.token_class_entropy.is_nan());
}

#[test]
fn a_shrunk_codebook_is_called_shrinkage() {
    // Embeddings spread over ±10, all codes within ±0.1 of the origin.
    let z = Array2::from_shape_fn((400, 3), |(i, j)| {
        ((i * 7 + j * 13) % 41) as f32 / 2.0 - 10.0
    });
    let codes = Array2::from_shape_fn((32, 3), |(i, j)| ((i + j) % 5) as f32 / 50.0 - 0.05);
    let report = diagnose(z.view(), codes.view(), None, 0, Limits::default());
    assert!(
        report.diagnosis.shrink_ratio < 0.1,
        "{:?}",
        report.diagnosis
    );
    assert!(verdict(&report).contains("verdict: shrinkage"));
}

#[test]
fn subsampled_pairwise_metrics_stay_close_to_the_exact_ones() {
    let codes = Array2::from_shape_fn((300, 4), |(i, j)| ((i * 31 + j * 17) % 97) as f32 / 9.0);
    let z = Array2::from_shape_fn((2000, 4), |(i, j)| ((i * 13 + j * 7) % 89) as f32 / 8.0);
    let exact = diagnose(z.view(), codes.view(), None, 3, Limits::default()).diagnosis;
    let small = Limits {
        codes: 100,
        coverage_codes: 100,
        rank_rows: 500,
    };
    let sub = diagnose(z.view(), codes.view(), None, 3, small).diagnosis;
    // codebook_cos in closed form takes every code whatever the limit.
    assert_eq!(exact.perplexity, sub.perplexity);
    assert_eq!(exact.codebook_cos.to_bits(), sub.codebook_cos.to_bits());
    assert!((exact.codebook_dist / sub.codebook_dist - 1.0).abs() < 0.05);
    assert!((exact.embed_rank / sub.embed_rank - 1.0).abs() < 0.05);
}

#[test]
fn f64_fortran_npz_and_safetensors_inputs_give_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (codes, z) = hand_made();
    let want = run(&codes, &z, None);
    let p = |n: &str| dir.path().join(n);
    write_npy(p("c.npy"), &codes).unwrap();
    write_npy(p("z64.npy"), &z.mapv(f64::from)).unwrap();
    // Fortran order, header by hand.
    let zf: Vec<u8> = z.t().iter().flat_map(|v| v.to_le_bytes()).collect();
    raw_npy(dir.path(), "zf.npy", "<f4", true, "(4, 2)", &zf);
    let mut npz = NpzWriter::new(fs::File::create(p("a.npz")).unwrap());
    npz.add_array("codes", &codes).unwrap();
    npz.add_array("z", &z).unwrap();
    npz.finish().unwrap();
    // f16 holds these small integers exactly.
    let c16: Vec<u8> = codes
        .iter()
        .flat_map(|&v| f16::from_f32(v).to_le_bytes())
        .collect();
    let z32: Vec<u8> = z.iter().flat_map(|v| v.to_le_bytes()).collect();
    let tensors = vec![
        (
            "embed",
            TensorView::new(Dtype::F16, vec![4, 2], &c16).unwrap(),
        ),
        (
            "z",
            TensorView::new(Dtype::F32, vec![2, 2, 2], &z32).unwrap(),
        ),
    ];
    fs::write(p("w.safetensors"), serialize(tensors, None).unwrap()).unwrap();
    let read = |spec: &str| {
        let s = Source::parse(&p(spec).display().to_string());
        read_matrix(&s, Shape::Vectors).unwrap()
    };
    for (c, e) in [
        ("c.npy", "z64.npy"),
        ("c.npy", "zf.npy"),
        ("a.npz:codes", "a.npz:z"),
        ("w.safetensors:embed", "w.safetensors:z"),
    ] {
        // Debug text compares NaN (no labels) equal to NaN.
        let got = run(&read(c), &read(e), None);
        assert_eq!(format!("{got:?}"), format!("{want:?}"), "{c} / {e}");
    }
}

#[test]
fn a_runs_own_snapshot_gives_its_runs_csv_row() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("rt.toml");
    fs::write(
        &scenario,
        r#"
seeds = [3]
[data]
modes = 4
points_per_mode = 150
dim = 4
[model]
width = 16
[quantizer]
codebook_size = 16
[train]
epochs = 3
[schedule]
continuous_epochs = 3
[sweep]
"model.latent_dim" = [2, 12]
"schedule.kind" = ["early", "deferred"]
"#,
    )
    .unwrap();
    let mut opts = SweepOptions::new(dir.path());
    opts.progress = ProgressMode::Quiet;
    opts.snapshots = Snapshots::All;
    let done = sweep::run_sweep(&Scenario::load(&scenario).unwrap(), &opts).unwrap();
    let mut runs = csv::Reader::from_path(done.dir.join("runs.csv")).unwrap();
    let header = runs.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut checked = 0;
    for row in runs.records() {
        let row = row.unwrap();
        let run_dir = done.dir.join("runs").join(&row[col("run_id")]);
        let src = |f: &str, name: &str| Source::new(run_dir.join(f), Some(name.into()));
        let z = read_matrix(&src("snapshot.npz", "z"), Shape::Matrix).unwrap();
        let codes = read_matrix(&src("snapshot.npz", "codebook"), Shape::Matrix).unwrap();
        let seed: u64 = row[col("seed")].parse().unwrap();
        let d = diagnose(z.view(), codes.view(), None, seed, Limits::default()).diagnosis;
        for (name, value) in d.fields() {
            let Some(c) = header.iter().position(|h| h == name) else {
                continue; // live_rank and the rest exist only in diagnose
            };
            let want: f64 = row[c].parse().unwrap();
            assert!(
                value == want || (value.is_nan() && want.is_nan()),
                "{name}: diagnose {value} vs runs.csv {want} ({})",
                run_dir.display()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 4 * 10, "10 shared metrics in each of 4 runs");
}

fn vqsim(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vqsim"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_prints_json_writes_its_files_and_refuses_bad_input_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (codes, z) = hand_made();
    let p = |n: &str| dir.path().join(n).display().to_string();
    write_npy(p("c.npy"), &codes).unwrap();
    write_npy(p("z.npy"), &z).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vqsim"))
        .args([
            "diagnose",
            "--codebook",
            &p("c.npy"),
            "--embeddings",
            &p("z.npy"),
        ])
        .args(["--json", "--out", &p("out")])
        .output()
        .unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["dead_codes"], 1.0);
    assert!(json["classes_hit"].is_null());
    for f in [
        "diagnosis.csv",
        "verdict.txt",
        "figures/diagnosis.png",
        "figures/diagnosis.svg",
    ] {
        assert!(Path::new(&p("out")).join(f).is_file(), "{f}");
    }

    // Bad inputs, each refused with exit 2 and a message naming the file.
    let npy = fs::read(p("z.npy")).unwrap();
    fs::write(p("trunc.npy"), &npy[..npy.len() - 4]).unwrap();
    fs::write(p("magic.npy"), b"not an npy file at all").unwrap();
    write_npy(p("rank1.npy"), &array![1.0f32, 2.0]).unwrap();
    write_npy(p("m3.npy"), &Array2::<f32>::ones((4, 3))).unwrap();
    write_npy(p("nan.npy"), &array![[1.0f32, f32::NAN]]).unwrap();
    for bad in ["trunc.npy", "magic.npy", "rank1.npy", "m3.npy", "nan.npy"] {
        let (code, stderr) = vqsim(&[
            "diagnose",
            "--codebook",
            &p("c.npy"),
            "--embeddings",
            &p(bad),
        ]);
        assert_eq!(code, 2, "{bad}: {stderr}");
        assert!(
            stderr.contains(bad) && !stderr.contains("panicked"),
            "{bad}: {stderr}"
        );
    }
    let (code, stderr) = vqsim(&[
        "diagnose",
        "--codebook",
        &p("c.npy"),
        "--embeddings",
        &p("z.npy"),
        "--labels",
        &p("rank1.npy"),
    ]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn chunked_assignment_is_the_exact_direct_argmin_with_ties_to_the_lowest_code() {
    use rand::{Rng, SeedableRng};
    use vqsim::diagnose::assign;
    use vqsim::sim::nearest::sq_dist;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let (n, s, m) = (2500, 70, 16);
    let z = Array2::from_shape_fn((n, m), |_| rng.gen_range(-3.0f32..3.0));
    let mut codes = Array2::from_shape_fn((s, m), |_| rng.gen_range(-3.0f32..3.0));
    // Exact ties: code 40 repeats code 3, and some embeddings sit on a code.
    let dup = codes.row(3).to_owned();
    codes.row_mut(40).assign(&dup);
    let mut z = z;
    for i in (0..n).step_by(97) {
        z.row_mut(i).assign(&codes.row(i % s));
    }
    let got = assign(z.view(), codes.view());
    for (i, row) in z.rows().into_iter().enumerate() {
        let q = row.to_slice().unwrap();
        let mut best = (0, f32::INFINITY);
        for (k, c) in codes.rows().into_iter().enumerate() {
            let d = sq_dist(q, c.to_slice().unwrap());
            if d < best.1 {
                best = (k, d);
            }
        }
        assert_eq!((got.code[i], got.sq_dist[i]), best, "row {i}");
    }
    assert!(got.code.iter().all(|&k| k != 40), "ties go to code 3");
}

#[test]
fn a_snapshot_brings_its_labels_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (codes, z) = hand_made();
    let snapshot = dir.path().join("snapshot.npz");
    let mut npz = NpzWriter::new(fs::File::create(&snapshot).unwrap());
    npz.add_array("z", &z).unwrap();
    npz.add_array("codebook", &codes).unwrap();
    let labels: Vec<i64> = (0..z.nrows() as i64).map(|i| i % 2).collect();
    npz.add_array("label", &ndarray::Array1::from(labels))
        .unwrap();
    npz.finish().unwrap();
    let s = snapshot.display().to_string();
    let out_dir = dir.path().join("out").display().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_vqsim"))
        .args(["diagnose", "--codebook", &format!("{s}:codebook")])
        .args([
            "--embeddings",
            &format!("{s}:z"),
            "--json",
            "--out",
            &out_dir,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("labels: the `label` array of") && stderr.contains("snapshot.npz"),
        "{stderr}"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["classes_hit"].is_number(), "{json}");
    let verdict = fs::read_to_string(Path::new(&out_dir).join("verdict.txt")).unwrap();
    assert!(verdict.ends_with(".\n"), "{verdict:?}");
}

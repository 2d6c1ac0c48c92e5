//! Finite-difference checks of the bottleneck's backward through a lookup of its own
//! (projections and/or cosine distance): ∂L/∂z, ∂L/∂W_in, ∂L/∂W_out and ∂L/∂E for
//! L = Σ g_q ⊙ q̃ + codebook loss + β·commitment, where q̃ = W_out(û + sg(ê − û)) + b_out is
//! what the decoder sees under the straight-through estimator and the assignments are held
//! fixed. Each side is a function computed from the forward pieces alone.

use ndarray::{Array2, ArrayView2};
use ndarray_rand::rand_distr::StandardNormal;
use ndarray_rand::RandomExt;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::sim::checked::ValidRun;
use crate::sim::config::{Distance, RunConfig};

const H: f32 = 1e-3;

fn config(distance: Distance, code_dim: usize) -> ValidRun {
    let mut cfg = RunConfig::default();
    cfg.model.latent_dim = 3;
    cfg.quantizer.codebook_size = 5;
    cfg.quantizer.distance = distance;
    cfg.quantizer.code_dim = code_dim;
    cfg.quantizer.beta = 0.4;
    crate::sim::valid::validate(&cfg, None).unwrap()
}

fn assert_close(what: &str, analytic: f32, numeric: f64) {
    let tol = 2e-2 * numeric.abs().max(analytic.abs() as f64) + 3e-4;
    assert!(
        (numeric - analytic as f64).abs() <= tol,
        "{what}: analytic {analytic} vs numeric {numeric}"
    );
}

/// Everything a check needs: the quantizer after a backward, the batch, its frozen lookup
/// (û₀, ê₀, assignments) and the decoder's gradient.
struct Case {
    vq: Quantizer,
    z: Array2<f32>,
    g_q: Array2<f32>,
    g_z: Array2<f32>,
    assign: Vec<usize>,
    u0: Array2<f32>,
    e0: Array2<f32>,
    beta: f64,
}

fn case(distance: Distance, code_dim: usize, seed: u64) -> Case {
    let cfg = config(distance, code_dim);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let c = if code_dim > 0 { code_dim } else { 3 };
    let z: Array2<f32> = Array2::random_using((12, 3), StandardNormal, &mut rng);
    let codes: Array2<f32> = Array2::random_using((5, c), StandardNormal, &mut rng);
    let g_q: Array2<f32> = Array2::random_using((12, 3), StandardNormal, &mut rng);
    let mut vq = Quantizer::new(&cfg, codes, ChaCha8Rng::seed_from_u64(0));
    let mut assign = vec![0; 12];
    let mut q = Array2::zeros((12, 3));
    vq.quantize(z.view(), &mut assign, q.view_mut(), &mut Scratch::default());
    vq.loss(z.view(), q.view(), &assign);
    let (u0, e0) = {
        let (u, e) = vq.lookup.batch();
        (u.to_owned(), e.to_owned())
    };
    let mut g_z = Array2::zeros((12, 3));
    vq.backward(z.view(), q.view(), &assign, g_q.view(), g_z.view_mut());
    Case {
        beta: cfg.quantizer.beta,
        vq,
        z,
        g_q,
        g_z,
        assign,
        u0,
        e0,
    }
}

fn mean_sq(a: ArrayView2<f32>, b: ArrayView2<f32>) -> f64 {
    let s: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    s / a.len() as f64
}

/// The encoder side: Σ g_q ⊙ W_out(û(z) + ê₀ − û₀) + β·mean‖û(z) − ê₀‖² under `vq`'s lookup.
fn encoder_side(case: &Case, vq: &Quantizer, z: ArrayView2<f32>) -> f64 {
    let u = vq.lookup.inputs(z);
    let shifted = &u + &(&case.e0 - &case.u0);
    let q = match &vq.lookup.project {
        Some(p) => {
            let mut q = Array2::zeros(z.raw_dim());
            p.output(shifted.view(), q.view_mut());
            q
        }
        None => shifted,
    };
    let recon: f64 = q.iter().zip(&case.g_q).map(|(a, b)| (a * b) as f64).sum();
    recon + case.beta * mean_sq(u.view(), case.e0.view())
}

/// The codebook side: mean‖û₀ − Ê(E)[assign]‖² for codes E.
fn codebook_side(case: &Case, codes: ArrayView2<f32>) -> f64 {
    let mut table = codes.to_owned();
    if case.vq.lookup.cosine() {
        distance::normalize_rows(table.view_mut());
    }
    let chosen = Array2::from_shape_fn(case.u0.raw_dim(), |(i, j)| table[[case.assign[i], j]]);
    mean_sq(case.u0.view(), chosen.view())
}

fn check(distance: Distance, code_dim: usize, seed: u64) {
    let case = case(distance, code_dim, seed);
    let used: std::collections::BTreeSet<_> = case.assign.iter().collect();
    assert!(used.len() >= 2, "the check needs several codes in use");
    // ∂L/∂z.
    for i in 0..12 {
        for j in 0..3 {
            let at = |d: f32| {
                let mut z = case.z.clone();
                z[[i, j]] += d;
                encoder_side(&case, &case.vq, z.view())
            };
            let numeric = (at(H) - at(-H)) / (2.0 * H as f64);
            assert_close(&format!("z[{i},{j}]"), case.g_z[[i, j]], numeric);
        }
    }
    // ∂L/∂E.
    let analytic = case.vq.codebook_grad().unwrap().to_owned();
    assert!(analytic.iter().any(|g| g.abs() > 1e-3));
    for ((k, j), &a) in analytic.indexed_iter() {
        let at = |d: f32| {
            let mut codes = case.vq.codes.clone();
            codes[[k, j]] += d;
            codebook_side(&case, codes.view())
        };
        assert_close(
            &format!("E[{k},{j}]"),
            a,
            (at(H) - at(-H)) / (2.0 * H as f64),
        );
    }
    let Some(p) = &case.vq.lookup.project else {
        return;
    };
    // ∂L/∂W_in, ∂L/∂b_in: through û(z) on the encoder side.
    for (which, analytic) in [
        ("w_in", p.w_in.gw.clone()),
        ("b_in", p.w_in.gb.clone().insert_axis(ndarray::Axis(0))),
    ] {
        for ((r, c), &a) in analytic.indexed_iter() {
            let at = |d: f32| {
                let mut vq = case.vq.clone();
                let layer = &mut vq.lookup.project.as_mut().unwrap().w_in;
                if which == "w_in" {
                    layer.w[[r, c]] += d;
                } else {
                    layer.b[c] += d;
                }
                encoder_side(&case, &vq, case.z.view())
            };
            assert_close(
                &format!("{which}[{r},{c}]"),
                a,
                (at(H) - at(-H)) / (2.0 * H as f64),
            );
        }
    }
    // ∂L/∂W_out: Σ g_q ⊙ (ê₀·W_out + b_out), the value the decoder received.
    for ((r, c), &a) in p.w_out.gw.indexed_iter() {
        let at = |d: f32| {
            let mut w = p.w_out.clone();
            w.w[[r, c]] += d;
            let mut q = Array2::zeros(case.z.raw_dim());
            w.forward(case.e0.view(), q.view_mut());
            q.iter()
                .zip(&case.g_q)
                .map(|(a, b)| (a * b) as f64)
                .sum::<f64>()
        };
        assert_close(
            &format!("w_out[{r},{c}]"),
            a,
            (at(H) - at(-H)) / (2.0 * H as f64),
        );
    }
}

#[test]
fn cosine_backward_matches_finite_differences() {
    check(Distance::Cosine, 0, 1);
}

#[test]
fn projected_backward_matches_finite_differences() {
    check(Distance::L2, 2, 2);
    check(Distance::L2, 1, 3);
}

#[test]
fn projected_cosine_backward_matches_finite_differences() {
    check(Distance::Cosine, 2, 4);
}

#[test]
fn the_decoder_receives_the_projected_normalised_code() {
    let case = case(Distance::Cosine, 2, 5);
    let vq = &case.vq;
    let codebook = vq.codebook();
    let mut table = vq.codes.clone();
    distance::normalize_rows(table.view_mut());
    let mut expected = Array2::zeros((5, 3));
    vq.lookup
        .project
        .as_ref()
        .unwrap()
        .output(table.view(), expected.view_mut());
    assert_eq!(codebook, expected);
    // Each assignment is the nearest normalised code to the normalised projected input.
    let u = vq.lookup.inputs(case.z.view());
    for (ui, &k) in u.outer_iter().zip(&case.assign) {
        let d = |j: usize| (&ui - &table.row(j)).mapv(|v| v * v).sum();
        assert!((0..5).all(|j| d(k) <= d(j)));
    }
}

//! Finite-difference checks of every backward pass in `nn`, plus Adam and loss known answers.
//!
//! Gradients are checked against central differences of the scalar L = Σ R ⊙ y for a fixed
//! random R (so dL/dy = R), summed in f64 to keep f32 rounding out of the difference quotient.
//! Every comparison also asserts that a sign-flipped analytic gradient would have failed.

use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vqsim::sim::config::Activation;
use vqsim::sim::nn::{activation, loss, Adam, Linear, Mlp};

const ACTS: [Activation; 3] = [Activation::Relu, Activation::Tanh, Activation::Gelu];
/// Central-difference step: large enough that f32 rounding in the forward pass stays small
/// next to the difference, small enough that the O(eps²) truncation error is negligible.
const EPS: f32 = 3e-3;
/// Every ReLU pre-activation is kept at least this far from the kink, far more than any EPS
/// perturbation can move it, so the difference quotient never straddles the kink.
const KINK_MARGIN: f32 = 0.05;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn uniform(rng: &mut impl Rng, shape: (usize, usize), r: f32) -> Array2<f32> {
    Array2::from_shape_fn(shape, |_| rng.gen_range(-r..r))
}

/// L = Σ R ⊙ y in f64.
fn weighted_sum(y: ArrayView2<f32>, r: ArrayView2<f32>) -> f64 {
    y.iter()
        .zip(r)
        .map(|(&y, &r)| f64::from(y) * f64::from(r))
        .sum()
}

fn close(a: f32, n: f32) -> bool {
    (a - n).abs() <= 2e-3 + 1e-2 * a.abs().max(n.abs())
}

/// Asserts analytic ≈ numeric elementwise, that the gradients are not trivially small, and
/// that the same comparison rejects the negated analytic gradient (the test can fail).
fn assert_grads_match(what: &str, analytic: &[f32], numeric: &[f32]) {
    assert_close_all(what, analytic, numeric);
    assert_nontrivial(what, analytic, numeric);
}

fn assert_close_all(what: &str, analytic: &[f32], numeric: &[f32]) {
    assert_eq!(analytic.len(), numeric.len(), "{what}: length");
    for (i, (&a, &n)) in analytic.iter().zip(numeric).enumerate() {
        assert!(close(a, n), "{what}[{i}]: analytic {a} vs numeric {n}");
    }
}

fn assert_nontrivial(what: &str, analytic: &[f32], numeric: &[f32]) {
    let biggest = numeric.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        biggest > 0.01,
        "{what}: gradients too small ({biggest}) to test anything"
    );
    assert!(
        analytic.iter().zip(numeric).any(|(&a, &n)| !close(-a, n)),
        "{what}: a sign-flipped gradient would also pass"
    );
}

/// Central difference of `f` with respect to each entry of `v`, restoring `v` afterwards.
fn numeric_grad(v: &mut [f32], mut f: impl FnMut(&[f32]) -> f64) -> Vec<f32> {
    (0..v.len())
        .map(|i| {
            let orig = v[i];
            v[i] = orig + EPS;
            let lp = f(v);
            v[i] = orig - EPS;
            let lm = f(v);
            v[i] = orig;
            ((lp - lm) / (2.0 * f64::from(EPS))) as f32
        })
        .collect()
}

#[test]
fn linear_gradients_match_finite_differences() {
    let mut rng = rng(1);
    let mut lin = Linear::new(3, 4, &mut rng);
    let mut x = uniform(&mut rng, (5, 3), 1.5);
    let r = uniform(&mut rng, (5, 4), 1.0);
    let mut gx = Array2::zeros((5, 3));
    lin.backward(x.view(), r.view(), Some(gx.view_mut()));

    let loss_of = |lin: &Linear, x: ArrayView2<f32>| {
        let mut y = Array2::zeros((x.nrows(), 4));
        lin.forward(x, y.view_mut());
        weighted_sum(y.view(), r.view())
    };
    let (gw, gb) = (lin.gw.clone(), lin.gb.clone());
    let mut probe = lin.clone();
    let w = probe.w.clone();
    let mut w_flat = w.into_raw_vec_and_offset().0;
    let num_w = numeric_grad(&mut w_flat, |w| {
        probe.w.as_slice_mut().unwrap().copy_from_slice(w);
        loss_of(&probe, x.view())
    });
    probe.w = lin.w.clone();
    let mut b_flat = lin.b.to_vec();
    let num_b = numeric_grad(&mut b_flat, |b| {
        probe.b.as_slice_mut().unwrap().copy_from_slice(b);
        loss_of(&probe, x.view())
    });
    let x0 = x.clone();
    let num_x = numeric_grad(x.as_slice_mut().unwrap(), |xs| {
        let xv = ArrayView2::from_shape((5, 3), xs).unwrap();
        loss_of(&lin, xv)
    });
    assert_eq!(x, x0);
    assert_grads_match("linear w", gw.as_slice().unwrap(), &num_w);
    assert_grads_match("linear b", gb.as_slice().unwrap(), &num_b);
    assert_grads_match("linear x", gx.as_slice().unwrap(), &num_x);
}

#[test]
fn linear_init_is_uniform_within_torch_bound() {
    let mut rng = rng(2);
    let lin = Linear::new(16, 300, &mut rng);
    let k = 1.0 / 4.0;
    assert!(lin.w.iter().chain(&lin.b).all(|v| v.abs() <= k));
    // A uniform on ±k fills its range: the extremes come close to k.
    let max = lin.w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(max > 0.99 * k, "weights span only ±{max}, expected ±{k}");
    assert!(lin.gw.iter().chain(&lin.gb).all(|&g| g == 0.0));
}

#[test]
fn activation_gradients_match_finite_differences() {
    for act in ACTS {
        let mut rng = rng(3);
        // Magnitudes in [KINK_MARGIN, 4] with random signs: away from the ReLU kink, and
        // reaching GELU's and tanh's curved tails.
        let mut pre = Array2::from_shape_fn((4, 6), |_| {
            let m = rng.gen_range(KINK_MARGIN..4.0);
            if rng.gen_bool(0.5) {
                m
            } else {
                -m
            }
        });
        let r = uniform(&mut rng, (4, 6), 1.0);
        let mut out = Array2::zeros((4, 6));
        activation::forward(act, pre.view(), out.view_mut());
        let mut g = r.clone();
        activation::backward(act, pre.view(), out.view(), g.view_mut());
        let num = numeric_grad(pre.as_slice_mut().unwrap(), |p| {
            let p = ArrayView2::from_shape((4, 6), p).unwrap();
            let mut o = Array2::zeros((4, 6));
            activation::forward(act, p, o.view_mut());
            weighted_sum(o.view(), r.view())
        });
        assert_grads_match(&format!("{act:?}"), g.as_slice().unwrap(), &num);
    }
}

#[test]
fn activation_values_match_known_answers() {
    let pre = Array2::from_shape_vec((1, 4), vec![-1.0, 0.0, 1.0, 3.0]).unwrap();
    let mut out = Array2::zeros((1, 4));
    let expect = [
        (Activation::Relu, [0.0, 0.0, 1.0, 3.0]),
        (
            Activation::Tanh,
            [-0.761_594_2, 0.0, 0.761_594_2, 0.995_054_8],
        ),
        // x·Φ(x), Φ from math.erf in Python.
        (
            Activation::Gelu,
            [-0.158_655_25, 0.0, 0.841_344_7, 2.995_950_3],
        ),
    ];
    for (act, want) in expect {
        activation::forward(act, pre.view(), out.view_mut());
        for (&o, &w) in out.iter().zip(&want) {
            assert!((o - w).abs() < 1e-6, "{act:?}: got {o}, want {w}");
        }
    }
}

/// erf from the everywhere-positive series 2/√π·e^{−x²}·Σ 2ⁿx^{2n+1}/(2n+1)!!, in f64.
fn erf_reference(x: f64) -> f64 {
    let mut term = x;
    let mut sum = x;
    let mut n = 0.0;
    while term.abs() > 1e-18 * sum.abs() {
        n += 1.0;
        term *= 2.0 * x * x / (2.0 * n + 1.0);
        sum += term;
    }
    2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp() * sum
}

#[test]
fn erf_is_accurate_to_1e6() {
    assert!((erf_reference(1.0) - 0.842_700_792_949_714_9).abs() < 1e-14);
    let mut worst = 0.0f64;
    for i in -6000..=6000 {
        let x = i as f32 * 1e-3;
        worst = worst.max((f64::from(activation::erf(x)) - erf_reference(f64::from(x))).abs());
    }
    assert!(worst < 1e-6, "max |erf error| = {worst}");
    assert_eq!(activation::erf(20.0), 1.0);
    assert_eq!(activation::erf(-20.0), -1.0);
}

/// Nudges hidden biases so every hidden pre-activation on `x` is ≥ KINK_MARGIN from 0.
fn keep_away_from_kinks(mlp: &mut Mlp, x: ArrayView2<f32>, act: Activation) {
    let depth = mlp.layers().len() - 1;
    let mut h = x.to_owned();
    for i in 0..depth {
        let layer = &mlp.layers()[i];
        let mut pre = Array2::zeros((h.nrows(), layer.fan_out()));
        layer.forward(h.view(), pre.view_mut());
        let mut shifts = vec![0.0f32; layer.fan_out()];
        for (j, mut col) in pre.columns_mut().into_iter().enumerate() {
            let clear = |s: f32| col.iter().all(|&p| (p + s).abs() >= KINK_MARGIN);
            let k = (0..)
                .flat_map(|k| [k, -k])
                .find(|&k| clear(k as f32 * KINK_MARGIN))
                .unwrap();
            shifts[j] = k as f32 * KINK_MARGIN;
            col.mapv_inplace(|p| p + shifts[j]);
        }
        let (b, _) = mlp.params_mut().nth(2 * i + 1).unwrap();
        b.iter_mut().zip(&shifts).for_each(|(b, s)| *b += s);
        h = Array2::zeros(pre.raw_dim());
        activation::forward(act, pre.view(), h.view_mut());
    }
}

fn params_of(mlp: &mut Mlp) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    mlp.params_mut()
        .map(|(p, g)| (p.to_vec(), g.to_vec()))
        .unzip()
}

#[test]
fn mlp_gradients_match_finite_differences() {
    for depth in [0, 1, 3] {
        for act in ACTS {
            let what = format!("depth {depth} {act:?}");
            let mut rng = rng(10 + depth as u64);
            let (d_in, width, d_out, n) = (3, 5, 2, 4);
            // max_batch > n: the first n rows of the caches must be the ones used.
            let mut mlp = Mlp::new(d_in, width, depth, d_out, act, 7, &mut rng);
            let mut x = uniform(&mut rng, (n, d_in), 1.5);
            let r = uniform(&mut rng, (n, d_out), 1.0);
            keep_away_from_kinks(&mut mlp, x.view(), act);

            mlp.zero_grad();
            mlp.forward(x.view());
            let mut gx = Array2::zeros((n, d_in));
            mlp.backward(x.view(), r.view(), Some(gx.view_mut()));
            let (_, grads) = params_of(&mut mlp);

            let slots = grads.len();
            assert_eq!(slots, 2 * (depth + 1), "{what}: one W and one b per layer");
            // A narrow ReLU layer may be mostly dead, so non-triviality is judged over all
            // parameters together; closeness is checked for every single one.
            let mut all_numeric = Vec::new();
            for (k, grad) in grads.iter().enumerate() {
                let mut p = mlp.params_mut().nth(k).unwrap().0.to_vec();
                let num = numeric_grad(&mut p, |p| {
                    mlp.params_mut().nth(k).unwrap().0.copy_from_slice(p);
                    weighted_sum(mlp.infer(x.view()).view(), r.view())
                });
                mlp.params_mut().nth(k).unwrap().0.copy_from_slice(&p);
                assert_close_all(&format!("{what} param {k}"), grad, &num);
                all_numeric.extend(num);
            }
            assert_nontrivial(&what, &grads.concat(), &all_numeric);
            let num_x = numeric_grad(x.as_slice_mut().unwrap(), |xs| {
                let xv = ArrayView2::from_shape((n, d_in), xs).unwrap();
                weighted_sum(mlp.infer(xv).view(), r.view())
            });
            assert_grads_match(&format!("{what} input"), gx.as_slice().unwrap(), &num_x);
        }
    }
}

#[test]
fn mlp_backward_without_grad_in_gives_same_parameter_grads() {
    let mut rng = rng(20);
    let mut mlp = Mlp::new(2, 8, 2, 3, Activation::Tanh, 6, &mut rng);
    let x = uniform(&mut rng, (6, 2), 1.0);
    let r = uniform(&mut rng, (6, 3), 1.0);
    mlp.forward(x.view());
    let mut gx = Array2::zeros((6, 2));
    mlp.backward(x.view(), r.view(), Some(gx.view_mut()));
    let (_, with) = params_of(&mut mlp);
    mlp.zero_grad();
    mlp.backward(x.view(), r.view(), None);
    let (_, without) = params_of(&mut mlp);
    assert_eq!(with, without);
}

#[test]
fn infer_equals_forward_and_leaves_training_caches_alone() {
    for depth in [0, 2] {
        let mut rng = rng(30);
        let mut mlp = Mlp::new(2, 16, depth, 3, Activation::Gelu, 8, &mut rng);
        let x = uniform(&mut rng, (5, 2), 2.0);
        let other = uniform(&mut rng, (11, 2), 2.0);
        let r = uniform(&mut rng, (5, 3), 1.0);

        let y = mlp.forward(x.view()).to_owned();
        let inferred = mlp.infer(x.view());
        for (a, b) in y.iter().zip(&inferred) {
            assert!(
                (a - b).abs() <= 1e-6 * a.abs().max(1.0),
                "depth {depth}: {a} vs {b}"
            );
        }

        mlp.backward(x.view(), r.view(), None);
        let (_, reference) = params_of(&mut mlp);
        mlp.zero_grad();
        mlp.forward(x.view());
        // Inference on a different, larger set between forward and backward changes nothing.
        assert_eq!(mlp.infer(other.view()).dim(), (11, 3));
        mlp.backward(x.view(), r.view(), None);
        let (_, after) = params_of(&mut mlp);
        assert_eq!(reference, after, "depth {depth}");
    }
}

#[test]
fn gradients_accumulate_across_backward_calls() {
    let mut rng = rng(40);
    let mut lin = Linear::new(3, 4, &mut rng);
    let x = uniform(&mut rng, (5, 3), 1.0);
    let gy = uniform(&mut rng, (5, 4), 1.0);
    lin.backward(x.view(), gy.view(), None);
    let (gw, gb) = (lin.gw.clone(), lin.gb.clone());
    lin.backward(x.view(), gy.view(), None);
    // Exact 2× is not promised: the bias sum is accumulated row by row.
    assert_doubled(gw.iter().chain(&gb), lin.gw.iter().chain(&lin.gb));
    lin.zero_grad();
    assert!(lin.gw.iter().chain(&lin.gb).all(|&g| g == 0.0));

    let mut mlp = Mlp::new(3, 6, 2, 2, Activation::Relu, 5, &mut rng);
    let gy = uniform(&mut rng, (5, 2), 1.0);
    mlp.forward(x.view());
    mlp.backward(x.view(), gy.view(), None);
    let (_, once) = params_of(&mut mlp);
    mlp.backward(x.view(), gy.view(), None);
    let (_, twice) = params_of(&mut mlp);
    assert!(once.iter().flatten().any(|&g| g != 0.0));
    assert_doubled(once.iter().flatten(), twice.iter().flatten());
    mlp.zero_grad();
    assert!(params_of(&mut mlp).1.iter().flatten().all(|&g| g == 0.0));
}

fn assert_doubled<'a>(once: impl Iterator<Item = &'a f32>, twice: impl Iterator<Item = &'a f32>) {
    let mut count = 0;
    for (&o, &t) in once.zip(twice) {
        assert!(
            (t - 2.0 * o).abs() <= 1e-6 * o.abs().max(1e-3),
            "{o} then {t}"
        );
        count += 1;
    }
    assert!(count > 0);
}

#[test]
fn mlp_all_finite_detects_nan() {
    let mut rng = rng(50);
    let mut mlp = Mlp::new(2, 4, 1, 2, Activation::Relu, 4, &mut rng);
    assert!(mlp.all_finite());
    mlp.params_mut().nth(3).unwrap().0[1] = f32::NAN;
    assert!(!mlp.all_finite());
}

#[test]
fn mse_matches_known_answer() {
    let pred = Array2::from_shape_vec((2, 2), vec![1.0, 2.0, 0.0, -1.0]).unwrap();
    let target = Array2::zeros((2, 2));
    // (1 + 4 + 0 + 1) / 4
    assert_eq!(loss::mse(pred.view(), target.view()), 1.5);
}

#[test]
fn mse_grad_matches_finite_differences_and_overwrites() {
    let mut rng = rng(60);
    let mut pred = uniform(&mut rng, (4, 3), 2.0);
    let target = uniform(&mut rng, (4, 3), 2.0);
    let mut g = Array2::from_elem((4, 3), f32::NAN);
    loss::mse_grad(pred.view(), target.view(), 1.0, g.view_mut());
    let num = numeric_grad(pred.as_slice_mut().unwrap(), |p| {
        let p = ArrayView2::from_shape((4, 3), p).unwrap();
        f64::from(loss::mse(p, target.view()))
    });
    assert_grads_match("mse", g.as_slice().unwrap(), &num);

    let mut g3 = Array2::from_elem((4, 3), 7.0);
    loss::mse_grad(pred.view(), target.view(), 3.0, g3.view_mut());
    for (a, b) in g3.iter().zip(&g) {
        assert!((a - 3.0 * b).abs() <= 1e-6 * a.abs().max(1.0));
    }
}

#[test]
fn adam_first_two_steps_match_hand_computation() {
    let mut adam = Adam::new(0.1);
    let mut p = [1.0f32, -2.0];
    let mut q = [0.5f32];
    // Step 1: m̂ = g, v̂ = g², so each parameter moves by lr·g/(|g| + ε) ≈ lr·sign(g).
    adam.step(
        [
            (&mut p[..], &[0.5f32, -0.1][..]),
            (&mut q[..], &[0.0f32][..]),
        ]
        .into_iter(),
    );
    assert!(
        (p[0] - 0.9).abs() < 1e-6 && (p[1] + 1.9).abs() < 1e-6,
        "{p:?}"
    );
    assert_eq!(q[0], 0.5, "zero gradient, zero step");
    // Step 2, g = (0.2, 0.3): m = (0.065, 0.021), v = (2.8975e-4, 9.999e-5),
    // m̂ = m/0.19, v̂ = v/0.001999, Δ = 0.1·m̂/√v̂ = (0.0898575, 0.0494190).
    adam.step(
        [
            (&mut p[..], &[0.2f32, 0.3][..]),
            (&mut q[..], &[0.0f32][..]),
        ]
        .into_iter(),
    );
    assert!((p[0] - 0.810_142_5).abs() < 1e-6, "{}", p[0]);
    assert!((p[1] + 1.949_419).abs() < 1e-6, "{}", p[1]);
    assert_eq!(adam.t, 2);
    assert_eq!(adam.m.len(), 2);
    assert!((adam.m[0][0] - 0.065).abs() < 1e-7, "{}", adam.m[0][0]);
    assert!((adam.v[0][1] - 9.999e-5).abs() < 1e-9, "{}", adam.v[0][1]);
}

#[test]
fn adam_minimises_a_quadratic() {
    // f(p) = Σ aᵢ (pᵢ − cᵢ)², badly scaled on purpose: Adam's per-coordinate scaling copes.
    let a = [100.0f32, 1.0, 0.01];
    let c = [1.0f32, -3.0, 0.5];
    let mut p = [0.0f32; 3];
    let mut g = [0.0f32; 3];
    let mut adam = Adam::new(0.05);
    for _ in 0..3000 {
        for i in 0..3 {
            g[i] = 2.0 * a[i] * (p[i] - c[i]);
        }
        adam.step(std::iter::once((&mut p[..], &g[..])));
    }
    for i in 0..3 {
        assert!(
            (p[i] - c[i]).abs() < 1e-2,
            "coordinate {i}: {} vs {}",
            p[i],
            c[i]
        );
    }
}

#[test]
fn adam_trains_an_mlp_on_a_linear_map() {
    // End-to-end: forward, mse_grad, backward, params_mut, Adam reduce the loss a lot.
    let mut rng = rng(70);
    let mut mlp = Mlp::new(2, 16, 1, 2, Activation::Tanh, 32, &mut rng);
    let x = uniform(&mut rng, (32, 2), 1.0);
    let target = x.dot(&ndarray::arr2(&[[0.5f32, -1.0], [1.5, 0.3]]));
    let mut adam = Adam::new(1e-2);
    let mut g = Array2::zeros((32, 2));
    let first = loss::mse(mlp.infer(x.view()).view(), target.view());
    for _ in 0..500 {
        mlp.zero_grad();
        let y = mlp.forward(x.view());
        loss::mse_grad(y, target.view(), 1.0, g.view_mut());
        mlp.backward(x.view(), g.view(), None);
        adam.step(mlp.params_mut());
    }
    let last = loss::mse(mlp.infer(x.view()).view(), target.view());
    assert!(last < 0.01 * first, "loss {first} -> {last}");
}

#[test]
fn tanh_is_accurate_to_a_few_ulp() {
    let xs = Array2::from_shape_fn((1, 24001), |(_, i)| (i as f32 - 12000.0) * 1e-3);
    let mut out = Array2::zeros(xs.raw_dim());
    activation::forward(Activation::Tanh, xs.view(), out.view_mut());
    for (&x, &y) in xs.iter().zip(&out) {
        let want = f64::from(x).tanh();
        let err = (f64::from(y) - want).abs();
        assert!(
            err <= 4.0 * f64::EPSILON.max(want.abs() * 1.2e-7),
            "tanh({x}) = {y}, want {want}"
        );
        assert!(y.abs() <= 1.0);
    }
}

#[test]
fn identity_mlp_copies_forward_and_its_input_gradient_matches_finite_differences() {
    let mut rng = rng(30);
    let (d, n) = (3, 4);
    let mut id = Mlp::identity(d, 6);
    assert_eq!((id.d_in(), id.d_out()), (d, d));
    assert_eq!(id.params_mut().count(), 0, "no parameters");
    let mut x = uniform(&mut rng, (n, d), 1.5);
    let r = uniform(&mut rng, (n, d), 1.0);
    assert_eq!(id.forward(x.view()), x.view());
    assert_eq!(id.infer(x.view()), x);
    let mut gx = Array2::zeros((n, d));
    id.backward(x.view(), r.view(), Some(gx.view_mut()));
    let num = numeric_grad(x.as_slice_mut().unwrap(), |xs| {
        let xv = ArrayView2::from_shape((n, d), xs).unwrap();
        weighted_sum(id.infer(xv).view(), r.view())
    });
    assert_grads_match("identity input", gx.as_slice().unwrap(), &num);
}

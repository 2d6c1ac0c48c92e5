//! The training step allocates nothing in steady state: a counting global
//! allocator watches this thread across an epoch of steps, after a warm-up epoch.
//!
//! One exception, outside vqsim's own code: after every product on faer's kernels,
//! `matmul::clear_upper_registers` runs a 1×1 product through ndarray's matrixmultiply, which
//! takes its packing buffer from the allocator (one small size that repeats, served from the
//! allocator's free lists). The counter leaves out exactly that request — the layout a bare
//! `clear_upper_registers()` asks for, measured first — and sees every other one, whatever its
//! size or alignment (faer's products themselves allocate nothing).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use vqsim::sim::checked::ValidRun;
use vqsim::sim::config::{Activation, Distance, Init, RunConfig, Update};
use vqsim::sim::data::Mixture;
use vqsim::sim::model::Autoencoder;
use vqsim::sim::rng::{stream, Stream};
use vqsim::sim::train::Epochs;
use vqsim::sim::valid::validate;
use vqsim::sim::vq::Quantizer;

struct Counting;

thread_local! {
    // Const-initialised and without Drop, so touching them never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    /// (size, align) of the allocation left out; (0, 0) leaves out none.
    static EXEMPT: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    /// (size, align) of the last allocation seen.
    static LAST: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// `cfg` validated: the form the model, the quantizer and training accept.
fn valid(cfg: &RunConfig) -> ValidRun {
    validate(cfg, None).unwrap()
}

fn note_allocation(layout: Layout) {
    let _ = COUNTING.try_with(|on| {
        if !on.get() {
            return;
        }
        let seen = (layout.size(), layout.align());
        let _ = LAST.try_with(|last| last.set(seen));
        if EXEMPT.try_with(|e| e.get() == seen).unwrap_or(false) {
            return;
        }
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    });
}

/// Leaves out the one allocation of a bare `clear_upper_registers()` from the counts that
/// follow on this thread (asserting it makes exactly one).
fn exempt_the_register_clear() {
    EXEMPT.with(|e| e.set((0, 0)));
    let n = allocations_in(vqsim::sim::matmul::clear_upper_registers);
    assert_eq!(
        n, 1,
        "the 1×1 matrixmultiply product allocates its packing buffer once"
    );
    EXEMPT.with(|e| e.set(LAST.with(|l| l.get())));
}

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation(layout);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made on this thread by `f`.
fn allocations_in(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    ALLOCATIONS.with(|n| n.get())
}

/// A change to the default configuration.
type Edit = fn(&mut RunConfig);

/// A small run: 1000 points, so an epoch ends in a partial batch as real epochs may.
fn small(edit: impl FnOnce(&mut RunConfig)) -> RunConfig {
    let mut cfg = RunConfig::default();
    cfg.data.points_per_mode = 100;
    edit(&mut cfg);
    cfg
}

/// Allocations during the second epoch of quantized (or, with `quantized` false, continuous)
/// training steps, driven as the epoch loop drives them.
fn second_epoch_allocations(cfg: &RunConfig, quantized: bool) -> usize {
    let data = Mixture::sample(&cfg.data, &mut stream(0, Stream::Data));
    let run = valid(cfg);
    let mut model = Autoencoder::new(&run, &mut stream(0, Stream::Weights));
    let z = model.encoder.infer(data.x.view());
    let mut vq = Quantizer::init(&run, z.view(), 0).unwrap();
    let mut epochs = Epochs::new(
        (0..data.len()).collect(),
        cfg.train.batch_size,
        cfg.data.dim,
        0,
    );
    let mut epoch = || {
        let stepped = epochs.run(data.x.view(), |b| {
            let loss = model.step(b, quantized.then_some(&mut vq));
            assert!(loss.is_finite());
            Ok::<(), ()>(())
        });
        assert!(stepped.is_ok());
    };
    epoch();
    exempt_the_register_clear();
    allocations_in(epoch)
}

#[test]
fn the_counter_sees_allocations() {
    exempt_the_register_clear();
    let n = allocations_in(|| {
        let v = std::hint::black_box(vec![1u8; 100]);
        assert_eq!(v.len(), 100);
        // SIMD-aligned requests are counted too: only the register clear's exact layout is not.
        let w = std::hint::black_box(vec![0u128; 4]);
        assert_eq!(w.len(), 4);
        vqsim::sim::matmul::clear_upper_registers();
    });
    assert_eq!(n, 2);
}

#[test]
fn quantized_step_allocates_nothing_once_warm() {
    assert_eq!(second_epoch_allocations(&small(|_| {}), true), 0);
}

#[test]
fn continuous_step_allocates_nothing_once_warm() {
    assert_eq!(second_epoch_allocations(&small(|_| {}), false), 0);
}

#[test]
fn every_variant_of_the_step_allocates_nothing_once_warm() {
    let variants: [(&str, Edit); 29] = [
        // The batch's search builds a k-d tree of the codes (in its scratch) at this size.
        ("codebook of 512", |c| c.quantizer.codebook_size = 512),
        ("ema codebook", |c| c.quantizer.update = Update::Ema),
        // Restarts every step: usage can never reach the threshold.
        ("threshold restart", |c| {
            c.quantizer.restart = "threshold".into();
            c.quantizer.params.set("restart_threshold", 1e6);
        }),
        ("lru restart, ema", |c| {
            c.quantizer.restart = "lru".into();
            c.quantizer.params.set("lru_timeout", 1);
            c.quantizer.update = Update::Ema;
        }),
        ("kmeans re-init buffer", |c| {
            c.quantizer.restart = "kmeans".into()
        }),
        ("rotation trick", |c| {
            c.quantizer.estimator = "rotation".into()
        }),
        ("index backpropagation", |c| {
            c.quantizer.estimator = "ibq".into()
        }),
        ("synchronised update", |c| c.quantizer.sync_nu = 0.2),
        ("fsq", |c| c.quantizer.kind = "fsq".into()),
        ("fsq, latent 3", |c| {
            c.quantizer.kind = "fsq".into();
            c.quantizer.codebook_size = 125;
            c.model.latent_dim = 3;
        }),
        ("orthogonal codes", |c| {
            c.quantizer.params.set("orthogonal_weight", 0.1)
        }),
        ("entropy loss", |c| {
            c.quantizer.params.set("entropy_weight", 0.1)
        }),
        ("cosine distance", |c| {
            c.quantizer.distance = Distance::Cosine
        }),
        ("code_dim 1, ema, lru", |c| {
            c.quantizer.code_dim = 1;
            c.quantizer.update = Update::Ema;
            c.quantizer.restart = "lru".into();
            c.quantizer.params.set("lru_timeout", 1);
        }),
        ("code_dim 12 of 16, cosine, rotation, entropy", |c| {
            c.model.latent_dim = 16;
            c.quantizer.code_dim = 12;
            c.quantizer.distance = Distance::Cosine;
            c.quantizer.estimator = "rotation".into();
            c.quantizer.params.set("entropy_weight", 0.1);
        }),
        ("simvq", |c| c.quantizer.parameterization = "simvq".into()),
        ("affine, code_dim 1", |c| {
            c.quantizer.parameterization = "affine".into();
            c.quantizer.code_dim = 1;
        }),
        // Above 8 latent dims the code search screens with matrix products.
        ("latent 16", |c| c.model.latent_dim = 16),
        ("tanh", |c| c.model.activation = Activation::Tanh),
        ("gelu, width 40", |c| {
            c.model.activation = Activation::Gelu;
            c.model.width = 40;
        }),
        ("linear maps", |c| c.model.depth = 0),
        ("uniform init, dim 5, batch 100", |c| {
            c.quantizer.init = Init::Uniform;
            c.data.dim = 5;
            c.train.batch_size = 100;
        }),
        ("fsq levels [4, 16]", |c| {
            c.quantizer.kind = "fsq".into();
            c.quantizer.params.set("fsq_levels", vec![4, 16]);
        }),
        ("lfq", |c| {
            c.quantizer.kind = "lfq".into();
            c.quantizer.codebook_size = 4;
        }),
        ("lfq, latent 5, commitment", |c| {
            c.quantizer.kind = "lfq".into();
            c.quantizer.codebook_size = 32;
            c.model.latent_dim = 5;
            c.quantizer.params.set("lfq_commitment", 0.25);
        }),
        ("gumbel", |c| c.quantizer.estimator = "gumbel".into()),
        ("cvq restart", |c| c.quantizer.restart = "cvq".into()),
        ("residual, 3 levels", |c| {
            c.quantizer.params.set("residual_levels", 3)
        }),
        ("residual, 2 levels, ema, latent 16", |c| {
            c.quantizer.params.set("residual_levels", 2);
            c.quantizer.update = Update::Ema;
            c.model.latent_dim = 16;
        }),
    ];
    for (what, edit) in variants {
        assert_eq!(second_epoch_allocations(&small(edit), true), 0, "{what}");
    }
}

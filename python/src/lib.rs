//! `vqsim._vqsim`: the Rust half of the Python package. It converts arrays and errors and
//! releases the GIL around vqsim's own functions; the Python half (`py_src/vqsim`) shapes
//! the results into classes, dicts and DataFrames.
//!
//! Bad input raises ValueError with the command line's message, prefixed by the argument's
//! name where the command line names the file. A Rust panic arrives as PyO3's PanicException,
//! never as an abort.

mod monitor;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ndarray::{ArrayViewD, CowArray, IxDyn};
use numpy::{PyArray1, PyReadonlyArrayDyn};
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use vqsim::arrays::{self, ArrayError, Problem, Shape, Source};
use vqsim::diagnose::{self as diag, Kind, Limits};
use vqsim::report::plot::{self, Projection};
use vqsim::report::results::Results;
use vqsim::report::summary;
use vqsim::study::scenario::Scenario;
use vqsim::study::sweep::{self, SweepError, SweepOptions};

#[pymodule]
fn _vqsim(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(diagnose, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_class::<monitor::Usage>()?;
    Ok(())
}

/// `problem` of the argument `name`, as the command line words it for a file.
fn named(name: &'static str) -> impl Fn(Problem) -> ArrayError {
    move |problem| ArrayError {
        source_name: name.into(),
        problem,
    }
}

fn value_error(name: &'static str, problem: Problem) -> PyErr {
    array_error(named(name)(problem))
}

fn array_error(e: ArrayError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A float array as numpy gave it, before the checks.
enum Floats<'py> {
    F32(PyReadonlyArrayDyn<'py, f32>),
    F64(PyReadonlyArrayDyn<'py, f64>),
}

/// Its view, which may cross into code running without the GIL.
enum FloatView<'a> {
    F32(ArrayViewD<'a, f32>),
    F64(ArrayViewD<'a, f64>),
}

impl<'py> Floats<'py> {
    fn extract(name: &'static str, obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(a) = obj.extract::<PyReadonlyArrayDyn<'py, f32>>() {
            return Ok(Floats::F32(a));
        }
        if let Ok(a) = obj.extract::<PyReadonlyArrayDyn<'py, f64>>() {
            return Ok(Floats::F64(a));
        }
        Err(value_error(
            name,
            Problem::Dtype {
                found: dtype_of(obj)?,
                allowed: "float32 or float64",
            },
        ))
    }

    fn view(&self) -> FloatView<'_> {
        match self {
            Floats::F32(a) => FloatView::F32(a.as_array()),
            Floats::F64(a) => FloatView::F64(a.as_array()),
        }
    }
}

impl FloatView<'_> {
    /// f32 values, as the command line reads them: float64 narrowed (values beyond the f32
    /// range become infinite and fail the finiteness check).
    fn to_f32(&self) -> CowArray<'_, f32, IxDyn> {
        match self {
            FloatView::F32(a) => a.view().into(),
            FloatView::F64(a) => a.mapv(|v| v as f32).into(),
        }
    }
}

fn dtype_of(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(obj.getattr("dtype")?.str()?.to_string())
}

/// `vqsim diagnose --json` on arrays, with the GIL released: a dict of every metric under
/// its JSON name (NaN where the JSON has null), plus the verdict and the usage counts.
/// The arrays arrive from `numpy.asarray`; labels, if any, already as int64.
#[pyfunction]
#[pyo3(signature = (codebook, embeddings, labels, seed))]
fn diagnose<'py>(
    py: Python<'py>,
    codebook: &Bound<'py, PyAny>,
    embeddings: &Bound<'py, PyAny>,
    labels: Option<&Bound<'py, PyAny>>,
    seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let codebook = Floats::extract("codebook", codebook)?;
    let embeddings = Floats::extract("embeddings", embeddings)?;
    let labels = match labels {
        Some(l) => Some(l.extract::<PyReadonlyArrayDyn<'py, i64>>().map_err(
            |_| match dtype_of(l) {
                Ok(found) => value_error(
                    "labels",
                    Problem::Dtype {
                        found,
                        allowed: "an integer type",
                    },
                ),
                Err(e) => e,
            },
        )?),
        None => None,
    };
    let (codebook, embeddings) = (codebook.view(), embeddings.view());
    let labels = labels.as_ref().map(|l| l.as_array());
    let (report, verdict) = py
        .detach(|| -> Result<_, ArrayError> {
            let codebook = codebook.to_f32();
            let codebook =
                arrays::vectors(codebook.view(), Shape::Vectors).map_err(named("codebook"))?;
            let z = embeddings.to_f32();
            let z = arrays::vectors(z.view(), Shape::Vectors).map_err(named("embeddings"))?;
            arrays::check_columns(
                &Source::new("embeddings", None),
                z.ncols(),
                &Source::new("codebook", None),
                codebook.ncols(),
            )?;
            let labels = labels
                .map(|l| arrays::labels_for(l.iter().copied(), z.nrows()))
                .transpose()
                .map_err(named("labels"))?;
            let report = diag::diagnose(
                z.view(),
                codebook.view(),
                labels.as_deref(),
                seed,
                Limits::default(),
            );
            let verdict = diag::verdict(&report);
            Ok((report, verdict))
        })
        .map_err(array_error)?;
    let out = PyDict::new(py);
    let fields = PyDict::new(py);
    for (name, value) in report.diagnosis.fields() {
        fields.set_item(name, value)?;
    }
    let kind = Kind::of(&report);
    out.set_item("fields", fields)?;
    out.set_item("kind", kind.name())?;
    out.set_item("sentence", kind.sentence())?;
    out.set_item("text", verdict)?;
    out.set_item("rows", report.rows)?;
    out.set_item("dim", report.dim)?;
    let usage: Vec<i64> = report.usage.iter().map(|&c| c as i64).collect();
    out.set_item("usage", PyArray1::from_vec(py, usage))?;
    Ok(out)
}

/// `vqsim run SCENARIO --out OUT [--threads N]`: the sweep, resumed where it stopped, then
/// its tables and figures; returns the results directory. The GIL is released while it
/// runs; Ctrl-C (Python's KeyboardInterrupt, which vqsim does not take over) abandons the
/// runs in flight, keeps the finished ones and raises KeyboardInterrupt.
#[pyfunction]
#[pyo3(signature = (scenario, out, threads))]
fn run(
    py: Python<'_>,
    scenario: PathBuf,
    out: PathBuf,
    threads: Option<usize>,
) -> PyResult<PathBuf> {
    let scenario = Scenario::load(&scenario).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let mut opts = SweepOptions::new(out);
    opts.threads = threads;
    opts.signals = false;
    let cancel = opts.cancel.clone();
    let (result, interrupted) = py.detach(|| {
        std::thread::scope(|s| {
            let worker = s.spawn(|| sweep_and_report(&scenario, &opts));
            let mut interrupted = false;
            while !worker.is_finished() {
                std::thread::sleep(Duration::from_millis(50));
                // Python's handler only records the signal; this runs it (in the main
                // thread; elsewhere there is nothing to run).
                if !interrupted && Python::attach(|py| py.check_signals()).is_err() {
                    interrupted = true;
                    cancel.store(true, Ordering::SeqCst);
                }
            }
            let result = worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (result, interrupted)
        })
    });
    match result {
        Err(Failure::Sweep(e @ SweepError::Cancelled { .. })) if interrupted => {
            Err(PyKeyboardInterrupt::new_err(e.to_string()))
        }
        // Ctrl-C came as the last runs finished: it still stops the program, as in Python.
        Ok(dir) if interrupted => Err(PyKeyboardInterrupt::new_err(format!(
            "interrupted as the sweep finished; every run has results in {}",
            dir.display()
        ))),
        Ok(dir) => Ok(dir),
        Err(Failure::Sweep(e)) if e.exit_code() == 2 => Err(PyValueError::new_err(e.to_string())),
        Err(e) => Err(PyRuntimeError::new_err(e.to_string())),
    }
}

/// What can stop `run` once the scenario is loaded.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Sweep(#[from] SweepError),
    #[error(transparent)]
    Summary(#[from] summary::SummaryError),
    #[error("drawing figures: {0}")]
    Plot(#[from] plot::PlotError),
}

/// The sweep, then (when every run is there) the summary tables and figures, as `vqsim run`.
fn sweep_and_report(scenario: &Scenario, opts: &SweepOptions) -> Result<PathBuf, Failure> {
    let done = sweep::run_sweep(scenario, opts)?;
    if done.assembly.missing.is_empty() {
        let results = Results::load(&done.dir)?;
        results.write_tables()?;
        plot::plot_all(&results, Projection::Pca)?;
    }
    Ok(done.dir)
}

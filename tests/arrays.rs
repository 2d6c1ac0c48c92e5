//! The array readers on hand-made files of every kind, good and bad.

use std::fs;
use std::path::Path;

use half::{bf16, f16};
use ndarray::{array, Array2, Array3};
use ndarray_npy::{write_npy, NpzWriter};
use safetensors::{serialize, tensor::TensorView, Dtype};
mod common;

use common::raw_npy;
use vqsim::arrays::{
    read_labels, read_labels_for, read_matrix, ArrayError, Problem, Shape, Source,
};

fn src(path: &Path) -> Source {
    Source::new(path, None)
}

fn named(path: &Path, name: &str) -> Source {
    Source::new(path, Some(name.to_string()))
}

fn err(r: Result<Array2<f32>, ArrayError>) -> ArrayError {
    r.expect_err("the file must be refused")
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn npy_f32_and_f64_read_alike() {
    let dir = tempfile::tempdir().unwrap();
    let a = array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.5]];
    write_npy(dir.path().join("a.npy"), &a).unwrap();
    write_npy(dir.path().join("b.npy"), &a.mapv(|v| v as f64)).unwrap();
    let pa = read_matrix(&src(&dir.path().join("a.npy")), Shape::Matrix).unwrap();
    let pb = read_matrix(&src(&dir.path().join("b.npy")), Shape::Matrix).unwrap();
    assert_eq!(pa, a);
    assert_eq!(pb, a);
}

#[test]
fn fortran_order_is_read_in_row_order() {
    let dir = tempfile::tempdir().unwrap();
    // [[1, 2, 3], [4, 5, 6]] stored column by column.
    let data = f32_bytes(&[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    let p = raw_npy(dir.path(), "f.npy", "<f4", true, "(2, 3)", &data);
    let m = read_matrix(&src(&p), Shape::Matrix).unwrap();
    assert_eq!(m, array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
}

#[test]
fn leading_axes_flatten_into_rows_for_vectors_only() {
    let dir = tempfile::tempdir().unwrap();
    let a = Array3::from_shape_fn((2, 3, 4), |(i, j, k)| (i * 100 + j * 10 + k) as f32);
    let p = dir.path().join("a.npy");
    write_npy(&p, &a).unwrap();
    let m = read_matrix(&src(&p), Shape::Vectors).unwrap();
    assert_eq!(m.dim(), (6, 4));
    assert_eq!(m.row(4).to_vec(), vec![110.0, 111.0, 112.0, 113.0]);
    let e = err(read_matrix(&src(&p), Shape::Matrix));
    assert!(matches!(e.problem, Problem::Rank { .. }), "{e}");
}

#[test]
fn rank_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v.npy");
    write_npy(&p, &array![1.0f32, 2.0]).unwrap();
    let e = err(read_matrix(&src(&p), Shape::Vectors));
    assert!(matches!(e.problem, Problem::Rank { .. }), "{e}");
    assert!(e.to_string().contains("v.npy"), "{e}");
}

#[test]
fn integer_and_bool_arrays_are_not_floats() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("i.npy");
    write_npy(&p, &array![[1i32, 2], [3, 4]]).unwrap();
    let e = err(read_matrix(&src(&p), Shape::Matrix));
    assert!(
        matches!(&e.problem, Problem::Dtype { found, .. } if found.contains("i4")),
        "{e}"
    );
    let p = raw_npy(dir.path(), "s.npy", "<U3", false, "(1, 1)", &[0u8; 12]);
    let e = err(read_matrix(&src(&p), Shape::Matrix));
    assert!(matches!(e.problem, Problem::Dtype { .. }), "{e}");
}

#[test]
fn nan_and_infinity_are_refused_with_their_position() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("n.npy");
    write_npy(&p, &array![[1.0f32, 2.0], [3.0, f32::NAN]]).unwrap();
    let e = err(read_matrix(&src(&p), Shape::Matrix));
    assert!(
        matches!(e.problem, Problem::NonFinite { row: 1, col: 1, .. }),
        "{e}"
    );
    // Finite in f64 but beyond f32.
    let p = dir.path().join("big.npy");
    write_npy(&p, &array![[1e300f64, 2.0]]).unwrap();
    let e = err(read_matrix(&src(&p), Shape::Matrix));
    assert!(
        matches!(e.problem, Problem::NonFinite { row: 0, col: 0, .. }),
        "{e}"
    );
}

#[test]
fn zero_rows_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("z.npy");
    write_npy(&p, &Array2::<f32>::zeros((0, 3))).unwrap();
    let e = err(read_matrix(&src(&p), Shape::Matrix));
    assert!(matches!(e.problem, Problem::Empty(_)), "{e}");
}

#[test]
fn truncated_files_and_lying_headers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.npy");
    write_npy(&p, &Array2::<f32>::ones((10, 4))).unwrap();
    let bytes = fs::read(&p).unwrap();
    fs::write(&p, &bytes[..bytes.len() - 5]).unwrap();
    let e = err(read_matrix(&src(&p), Shape::Matrix));
    assert!(matches!(e.problem, Problem::Format { .. }), "{e}");
    assert!(e.to_string().contains("truncated"), "{e}");
    // A header claiming 4 TB over 8 bytes of data: refused without trying to allocate it.
    let p = raw_npy(
        dir.path(),
        "lie.npy",
        "<f4",
        false,
        "(1000000000, 1000)",
        &[0; 8],
    );
    let e = err(read_matrix(&src(&p), Shape::Matrix));
    assert!(matches!(e.problem, Problem::Format { .. }), "{e}");
    // Too many bytes for the header's shape.
    let p = raw_npy(dir.path(), "extra.npy", "<f4", false, "(1, 1)", &[0; 8]);
    let e = err(read_matrix(&src(&p), Shape::Matrix));
    assert!(matches!(e.problem, Problem::Format { .. }), "{e}");
}

#[test]
fn wrong_magic_and_unknown_extensions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.npy");
    fs::write(&p, b"PK\x03\x04 this is no npy").unwrap();
    let e = err(read_matrix(&src(&p), Shape::Matrix));
    assert!(matches!(e.problem, Problem::Format { .. }), "{e}");
    for name in ["m.npz", "m.safetensors"] {
        let p = dir.path().join(name);
        fs::write(&p, b"\x93NUMPY garbage").unwrap();
        let e = err(read_matrix(&src(&p), Shape::Matrix));
        assert!(matches!(e.problem, Problem::Format { .. }), "{name}: {e}");
    }
    let p = dir.path().join("m.txt");
    fs::write(&p, "1,2").unwrap();
    let e = err(read_matrix(&src(&p), Shape::Matrix));
    assert!(matches!(e.problem, Problem::Extension), "{e}");
    let e = err(read_matrix(
        &src(&dir.path().join("missing.npy")),
        Shape::Matrix,
    ));
    assert!(matches!(e.problem, Problem::Io(_)), "{e}");
}

#[test]
fn npz_arrays_are_picked_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.npz");
    let mut npz = NpzWriter::new_compressed(fs::File::create(&p).unwrap());
    npz.add_array("codes", &array![[1.0f32, 2.0]]).unwrap();
    npz.add_array("z", &array![[3.0f64, 4.0], [5.0, 6.0]])
        .unwrap();
    npz.finish().unwrap();
    let z = read_matrix(&named(&p, "z"), Shape::Matrix).unwrap();
    assert_eq!(z, array![[3.0f32, 4.0], [5.0, 6.0]]);
    let e = err(read_matrix(&src(&p), Shape::Matrix));
    assert!(
        matches!(e.problem, Problem::Ambiguous { count: 2, .. }),
        "{e}"
    );
    let e = err(read_matrix(&named(&p, "q"), Shape::Matrix));
    assert!(
        matches!(&e.problem, Problem::NoSuchArray { available, .. } if available.contains("codes")),
        "{e}"
    );
    let single = dir.path().join("b.npz");
    let mut npz = NpzWriter::new(fs::File::create(&single).unwrap());
    npz.add_array("only", &array![[7.0f32]]).unwrap();
    npz.finish().unwrap();
    assert_eq!(
        read_matrix(&src(&single), Shape::Matrix).unwrap(),
        array![[7.0f32]]
    );
}

#[test]
fn safetensors_read_every_float_width() {
    let dir = tempfile::tempdir().unwrap();
    let values = [0.5f32, -1.25, 2.0, 3.0, 4.5, -6.0];
    let b32 = f32_bytes(&values);
    let b64: Vec<u8> = values
        .iter()
        .flat_map(|&v| (v as f64).to_le_bytes())
        .collect();
    let b16: Vec<u8> = values
        .iter()
        .flat_map(|&v| f16::from_f32(v).to_le_bytes())
        .collect();
    let bb16: Vec<u8> = values
        .iter()
        .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
        .collect();
    let tensors = vec![
        (
            "a32",
            TensorView::new(Dtype::F32, vec![2, 3], &b32).unwrap(),
        ),
        (
            "a64",
            TensorView::new(Dtype::F64, vec![2, 3], &b64).unwrap(),
        ),
        (
            "a16",
            TensorView::new(Dtype::F16, vec![2, 3], &b16).unwrap(),
        ),
        (
            "ab16",
            TensorView::new(Dtype::BF16, vec![1, 2, 3], &bb16).unwrap(),
        ),
        (
            "i",
            TensorView::new(Dtype::U8, vec![2, 3], &[1, 2, 3, 4, 5, 6]).unwrap(),
        ),
    ];
    let p = dir.path().join("w.safetensors");
    fs::write(&p, serialize(tensors, None).unwrap()).unwrap();
    let want = Array2::from_shape_vec((2, 3), values.to_vec()).unwrap();
    for name in ["a32", "a64", "a16", "ab16"] {
        let m = read_matrix(&named(&p, name), Shape::Vectors).unwrap();
        assert_eq!(m, want, "{name}");
    }
    let e = err(read_matrix(&named(&p, "i"), Shape::Matrix));
    assert!(matches!(e.problem, Problem::Dtype { .. }), "{e}");
    let e = err(read_matrix(&src(&p), Shape::Matrix));
    assert!(matches!(e.problem, Problem::Ambiguous { .. }), "{e}");
    // Truncated: the header's offsets run past the end.
    let bytes = fs::read(&p).unwrap();
    fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
    let e = err(read_matrix(&named(&p, "a32"), Shape::Matrix));
    assert!(matches!(e.problem, Problem::Format { .. }), "{e}");
}

#[test]
fn csv_with_and_without_header() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("h.csv");
    fs::write(&p, "a,b\n1,2\n3,4.5\n").unwrap();
    assert_eq!(
        read_matrix(&src(&p), Shape::Matrix).unwrap(),
        array![[1.0f32, 2.0], [3.0, 4.5]]
    );
    let p = dir.path().join("n.csv");
    fs::write(&p, "1,2\n3,4.5\n").unwrap();
    assert_eq!(
        read_matrix(&src(&p), Shape::Matrix).unwrap(),
        array![[1.0f32, 2.0], [3.0, 4.5]]
    );
}

#[test]
fn csv_columns_are_picked_by_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("latent.csv");
    fs::write(&p, "label,x0,z1,z0,code\n3,9,1,2,0\n4,9,5,6,1\n").unwrap();
    let z = read_matrix(&Source::parse(&format!("{}:z", p.display())), Shape::Matrix).unwrap();
    assert_eq!(z, array![[2.0f32, 1.0], [6.0, 5.0]]);
    let labels = read_labels(&named(&p, "label")).unwrap();
    assert_eq!(labels, vec![3, 4]);
}

#[test]
fn csv_lies_and_junk_are_refused_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("lie.csv", "a,b,c\n1,2\n3,4\n", 2),
        ("ragged.csv", "1,2\n3,4\n5\n", 3),
        ("junk.csv", "a,b\n1,2\n3,x\n", 3),
    ];
    for (name, text, line) in cases {
        let p = dir.path().join(name);
        fs::write(&p, text).unwrap();
        let e = err(read_matrix(&src(&p), Shape::Matrix));
        assert!(
            matches!(e.problem, Problem::Csv { line: l, .. } if l == line as u64),
            "{name}: {e}"
        );
    }
    let p = dir.path().join("empty.csv");
    fs::write(&p, "a,b\n").unwrap();
    let e = err(read_matrix(&src(&p), Shape::Matrix));
    assert!(matches!(e.problem, Problem::Empty(_)), "{e}");
}

#[test]
fn labels_from_npy_any_integer_width_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("l.npy");
    write_npy(&p, &array![0i64, 2, 1]).unwrap();
    assert_eq!(read_labels(&src(&p)).unwrap(), vec![0, 2, 1]);
    let p8 = dir.path().join("l8.npy");
    write_npy(&p8, &array![5u8, 7]).unwrap();
    assert_eq!(read_labels(&src(&p8)).unwrap(), vec![5, 7]);
    let e = read_labels_for(&src(&p), 4).unwrap_err();
    assert!(
        matches!(
            e.problem,
            Problem::LabelCount {
                found: 3,
                expected: 4
            }
        ),
        "{e}"
    );
    let neg = dir.path().join("neg.npy");
    write_npy(&neg, &array![0i32, -1]).unwrap();
    let e = read_labels(&src(&neg)).unwrap_err();
    assert!(matches!(e.problem, Problem::Label { row: 1, .. }), "{e}");
    let f = dir.path().join("f.npy");
    write_npy(&f, &array![0.0f32]).unwrap();
    let e = read_labels(&src(&f)).unwrap_err();
    assert!(matches!(e.problem, Problem::Dtype { .. }), "{e}");
}

#[test]
fn source_splits_the_name_after_a_known_extension_only() {
    assert_eq!(
        Source::parse("a.npz:z"),
        Source::new("a.npz", Some("z".into()))
    );
    assert_eq!(
        Source::parse("w.safetensors:model.embed"),
        Source::new("w.safetensors", Some("model.embed".into()))
    );
    assert_eq!(Source::parse("c:/x.npy"), Source::new("c:/x.npy", None));
    assert_eq!(Source::parse("a.npy"), Source::new("a.npy", None));
    // A name on a plain .npy is an error, not ignored.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.npy");
    write_npy(&p, &array![[1.0f32]]).unwrap();
    let e = err(read_matrix(&named(&p, "x"), Shape::Matrix));
    assert!(matches!(e.problem, Problem::NameOnPlainFile(_)), "{e}");
}

#[test]
fn the_vendored_digits_written_by_numpy_read_back() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/digits");
    let x = read_matrix(&src(&dir.join("digits.npy")), Shape::Matrix).unwrap();
    assert_eq!(x.dim(), (1797, 64));
    assert!(x
        .iter()
        .all(|&v| (0.0..=16.0).contains(&v) && v == v.round()));
    let y = read_labels_for(&src(&dir.join("labels.npy")), 1797).unwrap();
    let mut counts = [0usize; 10];
    y.iter().for_each(|&c| counts[c] += 1);
    assert!(
        counts.iter().all(|&c| (174..=183).contains(&c)),
        "{counts:?}"
    );
}

"""vqsim.diagnose: known answers, the command line's numbers on the same arrays, every
ValueError."""

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import vqsim

ROOT = Path(__file__).resolve().parents[2]


def hand_made():
    """Codes at (0,0), (4,0), (0,4) and one far away that nothing picks; embeddings: 2 on
    the first code, 1 on each of the others (each 1 away along an axis)."""
    codes = np.array([[0, 0], [4, 0], [0, 4], [100, 100]], dtype=np.float32)
    z = np.array([[1, 0], [0, 1], [5, 0], [0, 5]], dtype=np.float32)
    return codes, z


def test_known_answers_on_a_hand_made_codebook():
    codes, z = hand_made()
    d = vqsim.diagnose(codes, z, labels=[0, 0, 1, 1])
    # Usage (2, 1, 1, 0): H = 1.5 ln 2.
    assert d.perplexity == pytest.approx(math.exp(1.5 * math.log(2)), abs=1e-12)
    assert (d.codes_used, d.dead_codes) == (3, 1)
    assert d.quant_mse == pytest.approx(1.0, abs=1e-12)
    assert list(d.usage) == [2, 1, 1, 0]
    z_var = 2 * (2 * 2.25 + 12.25 + 0.25) / 4
    assert d.live_var_share == pytest.approx((64 / 9) / z_var, abs=1e-9)
    pairs = [np.linalg.norm(z[i] - z[j]) for i in range(4) for j in range(i + 1, 4)]
    assert d.embed_dist == pytest.approx(np.mean(pairs), abs=1e-6)
    # Class means (0.5, 0.5) and (2.5, 2.5): shares 1/4 and 3/4 of all S codes, the dead
    # (100, 100) included (p_k = |T_k|/S, as a run's token_mode_entropy).
    assert d.classes_hit == 2
    h = -(1 / 4 * math.log(1 / 4) + 3 / 4 * math.log(3 / 4))
    assert d.token_class_entropy == pytest.approx(h, abs=1e-12)
    assert (d.rows, d.dim) == (4, 2)
    assert d.verdict.kind == "healthy"
    assert "healthy" in str(d.verdict) and "thresholds" in str(d.verdict)
    no_labels = vqsim.diagnose(codes, z)
    assert math.isnan(no_labels.classes_hit) and math.isnan(no_labels.token_class_entropy)


def test_a_shrunk_codebook_is_called_shrinkage():
    i, j = np.meshgrid(np.arange(400), np.arange(3), indexing="ij")
    z = ((i * 7 + j * 13) % 41) / 2.0 - 10.0
    i, j = np.meshgrid(np.arange(32), np.arange(3), indexing="ij")
    codes = ((i + j) % 5) / 50.0 - 0.05
    d = vqsim.diagnose(codes, z)
    assert d.shrink_ratio < 0.1
    assert d.verdict.kind == "shrinkage"
    assert d.verdict.sentence == "the codes sit in a region much narrower than the embeddings"


def test_to_dict_has_the_json_fields_in_order_and_html_shows_them():
    codes, z = hand_made()
    d = vqsim.diagnose(codes, z)
    fields = d.to_dict()
    assert list(fields)[:3] == ["perplexity", "codes_used", "dead_codes"]
    assert all(getattr(d, k) is v or (math.isnan(v) and math.isnan(getattr(d, k))) for k, v in fields.items())
    page = d._repr_html_()
    assert all(f"<td>{k}</td>" in page for k in fields) and "healthy" in page


def test_layouts_dtypes_and_leading_axes_give_the_same_numbers():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(6, 50, 8)).astype(np.float32)
    codes = rng.normal(size=(64, 8)).astype(np.float32)
    base = vqsim.diagnose(codes, z.reshape(-1, 8)).to_dict()
    for c, e in [
        (np.asfortranarray(codes), z),
        (codes.astype(np.float64), z.astype(np.float64)),
        (codes, np.asfortranarray(z.reshape(-1, 8))),
        (codes[:, ::-1][:, ::-1], z[..., :8]),
        (codes.tolist(), z),
    ]:
        assert vqsim.diagnose(c, e).to_dict() == pytest.approx(base, nan_ok=True)


def test_a_cpu_torch_like_object_converts_through_asarray():
    class Tensor:  # what numpy.asarray sees of a CPU torch tensor
        def __init__(self, a):
            self.a = a

        def __array__(self, dtype=None, copy=None):
            return self.a

    codes, z = hand_made()
    assert vqsim.diagnose(Tensor(codes), Tensor(z)).to_dict() == pytest.approx(
        vqsim.diagnose(codes, z).to_dict(), nan_ok=True
    )


def cli():
    """The vqsim binary: $VQSIM_BIN, or the repository's release build."""
    path = os.environ.get("VQSIM_BIN") or ROOT / "target" / "release" / "vqsim"
    if not Path(path).is_file():
        pytest.skip(f"no vqsim binary at {path}; build it (cargo build --release) or set VQSIM_BIN")
    return str(path)


@pytest.mark.parametrize("labels", [False, True])
def test_the_numbers_equal_the_command_lines_json(tmp_path, labels):
    binary = cli()
    rng = np.random.default_rng(7)
    centres = rng.normal(0, 4, (16, 12))
    z = (centres[rng.integers(0, 16, (1500,))] + rng.normal(0, 1, (1500, 12))).astype(np.float32)
    codes = (z[rng.choice(1500, 200, replace=False)] * 0.3).astype(np.float32)
    y = rng.integers(0, 16, 1500)
    np.save(tmp_path / "z.npy", z.reshape(30, 50, 12))
    np.save(tmp_path / "codes.npy", codes)
    np.save(tmp_path / "y.npy", y)
    args = [binary, "diagnose", "--json", "--seed", "3",
            "--codebook", str(tmp_path / "codes.npy"), "--embeddings", str(tmp_path / "z.npy")]
    if labels:
        args += ["--labels", str(tmp_path / "y.npy")]
    out = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    d = vqsim.diagnose(codes, z.reshape(30, 50, 12), y if labels else None, seed=3).to_dict()
    assert list(d) == list(out)
    for k, v in out.items():
        assert (math.isnan(d[k]) if v is None else d[k] == v), k


@pytest.mark.parametrize(
    "codebook, embeddings, labels, message",
    [
        (np.zeros(4), np.zeros((3, 4)), None,
         "codebook: shape [4] is not allowed; expected at least two axes, (…, dimensions)"),
        (np.zeros((2, 4)), np.zeros(4), None, "embeddings: shape [4] is not allowed"),
        (np.zeros((0, 4)), np.zeros((3, 4)), None, "codebook: has no rows (shape [0, 4])"),
        (np.zeros((2, 4)), np.zeros((3, 0)), None, "embeddings: has no rows (shape [3, 0])"),
        (np.zeros((2, 4)), np.full((3, 4), np.nan), None,
         "embeddings: value at row 0, column 0 is NaN"),
        (np.array([[0, 1], [2, np.inf]]), np.zeros((3, 2)), None,
         "codebook: value at row 1, column 1 is inf"),
        (np.zeros((2, 4)), np.full((3, 4), 1e300), None,
         "embeddings: value at row 0, column 0 is inf (NaN, infinite or beyond the f32 range)"),
        (np.zeros((2, 4)), np.zeros((3, 5)), None,
         "embeddings: has 5 columns but codebook has 4; both must have the same dimension"),
        (np.zeros((2, 4), dtype=np.int64), np.zeros((3, 4)), None,
         "codebook: element type int64 is not allowed; expected float32 or float64"),
        (np.zeros((2, 4)), np.zeros((3, 4), dtype=np.float16), None,
         "embeddings: element type float16 is not allowed"),
        (np.zeros((2, 4)), np.zeros((3, 4)), [0, 1], "labels: holds 2 labels for 3 rows"),
        (np.zeros((2, 4)), np.zeros((3, 4)), [0, -1, 2],
         "labels: label at row 1 is -1; labels must be integers ≥ 0"),
        (np.zeros((2, 4)), np.zeros((3, 4)), [0.0, 1.0, 2.0],
         "labels: element type float64 is not allowed; expected an integer type"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(codebook, embeddings, labels, message):
    with pytest.raises(ValueError) as e:
        vqsim.diagnose(codebook, embeddings, labels)
    assert str(e.value).startswith(message), str(e.value)


def test_a_bad_seed_raises_value_error():
    codes, z = hand_made()
    with pytest.raises(ValueError, match="seed: -1 is not allowed"):
        vqsim.diagnose(codes, z, seed=-1)

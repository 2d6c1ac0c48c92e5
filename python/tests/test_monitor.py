"""vqsim.Monitor against numpy.bincount over windows and levels."""

import math

import numpy as np
import pytest

import vqsim


def expected(indices, s):
    """The report's keys computed with numpy from a flat array of indices."""
    counts = np.bincount(indices, minlength=s)
    p = counts[counts > 0] / counts.sum()
    perplexity = math.exp(-(p * np.log(p)).sum()) if len(p) else math.nan
    share = counts / max(counts.sum(), 1)
    return {
        "perplexity": perplexity,
        "perplexity_ratio": perplexity / s,
        "codes_used": int((counts > 0).sum()),
        "dead_codes": int((counts == 0).sum()),
        "rare_codes": int(((counts > 0) & (share < 1 / (10 * s))).sum()),
    }


def check(report, seen, s, window):
    want = expected(seen[-window:], s)
    want.update({f"total_{k}": v for k, v in expected(seen, s).items()})
    assert report.keys() == want.keys()
    for k, v in want.items():
        assert report[k] == pytest.approx(v, rel=1e-12, nan_ok=True), k


@pytest.mark.parametrize("window", [1, 7, 100, 1000, 65536])
def test_one_level_matches_bincount_over_the_window_and_since_the_start(window):
    s = 50
    rng = np.random.default_rng(window)
    m = vqsim.Monitor(s, window=window)
    seen = np.zeros(0, dtype=np.int64)
    check(m.report(), seen, s, window)  # nothing yet: NaN perplexity, every code dead
    # Skewed batches of varying size and shape, some larger than the window.
    for size in [3, 1, 250, 40, 1200, 5, 999]:
        batch = np.minimum(rng.geometric(0.08, size), s) - 1
        shape = (size,) if size % 2 else (size // 5, 5) if size % 5 == 0 else (size,)
        m.update(batch.reshape(shape).astype(np.int32))
        seen = np.concatenate([seen, batch])
        check(m.report(), seen, s, window)


def test_rare_codes_are_used_codes_below_a_tenth_of_the_uniform_share():
    # S = 4: threshold 1/40. 100 indices: a code seen twice (2%) is rare, 3 times (3%) not.
    m = vqsim.Monitor(4)
    m.update([0] * 95 + [1] * 2 + [2] * 3)
    r = m.report()
    assert (r["codes_used"], r["dead_codes"], r["rare_codes"]) == (3, 1, 1)


@pytest.mark.parametrize("as_list", [False, True])
def test_levels_are_counted_apart_from_the_last_axis_or_a_list(as_list):
    s, levels, window = 16, 3, 40
    rng = np.random.default_rng(0)
    m = vqsim.Monitor(s, window=window, levels=levels)
    seen = [np.zeros(0, dtype=np.int64) for _ in range(levels)]
    for step in range(6):
        # Level k uses only codes below 4 · (k + 1): different usage per level.
        batch = np.stack([rng.integers(0, 4 * (k + 1), (2, 9)) for k in range(levels)], axis=-1)
        m.update([batch[..., k] for k in range(levels)] if as_list else batch)
        seen = [np.concatenate([seen[k], batch[..., k].ravel()]) for k in range(levels)]
        reports = m.report()["levels"]
        assert len(reports) == levels
        for k in range(levels):
            check(reports[k], seen[k], s, window)


def test_bad_input_raises_value_error_and_counts_nothing():
    m = vqsim.Monitor(8, levels=2)
    m.update(np.array([[1, 2]]))
    before = m.report()
    bad = [
        (np.array([[1, 8]]), "indices: value 8 at position 0 of level 1 is not a code of a codebook of size 8"),
        (np.array([[-1, 0]]), "indices: value -1 at position 0 of level 0"),
        (np.array([[1, 2, 3]]), "indices: shape (1, 3) does not end in the 2 levels"),
        (np.array([[0.5, 1.0]]), "indices: element type float64 is not allowed; expected an integer type"),
        ([np.array([1]), np.array([2]), np.array([3])], "indices: 3 levels given for a monitor of 2"),
    ]
    for indices, message in bad:
        with pytest.raises(ValueError) as e:
            m.update(indices)
        assert str(e.value).startswith(message), str(e.value)
    assert m.report() == before
    with pytest.raises(ValueError, match="indices: value 5 at position 2 is not a code"):
        vqsim.Monitor(5).update([0, 1, 5])


@pytest.mark.parametrize("name", ["codebook_size", "window", "levels"])
@pytest.mark.parametrize("value", [0, -3, 2.5, None])
def test_bad_sizes_raise_value_error_naming_the_argument(name, value):
    kwargs = {"codebook_size": 8, name: value}
    with pytest.raises(ValueError, match=f"^{name}: "):
        vqsim.Monitor(kwargs.pop("codebook_size"), **kwargs)


def test_check_is_diagnose():
    codes = np.array([[0, 0], [4, 0], [0, 4], [100, 100]], dtype=np.float32)
    z = np.array([[1, 0], [0, 1], [5, 0], [0, 5]], dtype=np.float32)
    assert vqsim.Monitor(4).check(codes, z).to_dict() == pytest.approx(
        vqsim.diagnose(codes, z).to_dict(), nan_ok=True
    )

"""``vqsim.diagnose``: the metrics of ``vqsim diagnose --json`` on arrays in memory."""

import html
import math
from typing import NamedTuple

import numpy as np

from . import _vqsim


class Verdict(NamedTuple):
    """What the diagnosis concludes: ``kind`` is ``"shrinkage"``, ``"underused"`` or
    ``"healthy"``; ``sentence`` says what that means; ``str()`` gives the full verdict with
    its numbers and thresholds (``verdict.txt`` of ``vqsim diagnose --out``)."""

    kind: str
    sentence: str
    text: str

    def __str__(self):
        return self.text


class Diagnosis:
    """One attribute per field of ``vqsim diagnose --json``, under the same names (NaN where
    the JSON has null), plus ``verdict``, ``usage`` (points per code), ``rows`` and ``dim``
    (of the embeddings, flattened to rows)."""

    def __init__(self, raw):
        self._fields = dict(raw["fields"])
        for name, value in self._fields.items():
            setattr(self, name, value)
        self.verdict = Verdict(raw["kind"], raw["sentence"], raw["text"])
        self.usage = raw["usage"]
        self.rows = raw["rows"]
        self.dim = raw["dim"]

    def to_dict(self):
        """The metrics as ``{name: value}``, in the order of ``--json``."""
        return dict(self._fields)

    def __repr__(self):
        shown = ", ".join(f"{k}={_show(v)}" for k, v in self._fields.items())
        return f"Diagnosis({self.verdict.kind}: {shown})"

    def _repr_html_(self):
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td style='text-align:right'>{_show(v)}</td></tr>"
            for k, v in self._fields.items()
        )
        return (
            f"<table><caption><b>{html.escape(self.verdict.kind)}</b>: "
            f"{html.escape(self.verdict.sentence)}</caption>{rows}</table>"
        )


def _show(v):
    if isinstance(v, float) and math.isnan(v):
        return "-"
    if float(v).is_integer() and abs(v) < 1e9:
        return str(int(v))
    return f"{v:.4g}"


def diagnose(codebook, embeddings, labels=None, *, seed=0):
    """Codebook health of a trained tokenizer, as ``vqsim diagnose``.

    codebook: (S, m) float32 or float64, the effective codes; embeddings: encoder outputs of
    any shape (..., m); labels: optional integer class per embedding row (adds classes_hit
    and token_class_entropy); seed: picks the subsamples of the pairwise metrics. Anything
    ``numpy.asarray`` converts is accepted, e.g. CPU torch tensors (``.detach()`` first if
    they require grad). Raises ValueError naming the argument for bad input.
    """
    codebook = np.asarray(codebook)
    embeddings = np.asarray(embeddings)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.dtype.kind in "iu":
            labels = labels.astype(np.int64, copy=False)
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: {seed!r} is not allowed; expected an integer ≥ 0")
    return Diagnosis(_vqsim.diagnose(codebook, embeddings, labels, int(seed)))

"""``vqsim.Monitor``: code usage over a sliding window of indices, for a training loop."""

import numpy as np

from . import _vqsim
from .diagnosis import diagnose


class Monitor:
    """Counts the code indices a quantizer emits, over the last ``window`` indices (per
    level) and since the start.

    ``update(indices)`` takes a batch's indices, any integer array of any shape (numpy, or a
    CPU torch tensor). With ``levels > 1`` (residual or multi-scale quantizers) the last axis
    of the array gives the level, or ``indices`` is a list of one array per level.

    ``report()`` returns ``perplexity`` (exp of the usage entropy), ``perplexity_ratio``
    (perplexity / codebook_size), ``codes_used``, ``dead_codes`` (codes never emitted) and
    ``rare_codes`` (emitted, but with a share below 1/(10 · codebook_size)) over the window,
    and the same keys prefixed ``total_`` since the start. With ``levels > 1`` it returns
    ``{"levels": [one such dict per level]}``.
    """

    def __init__(self, codebook_size, *, window=65536, levels=1):
        for name, value in (("codebook_size", codebook_size), ("window", window), ("levels", levels)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: {value!r} is not allowed; expected an integer ≥ 1")
        self.codebook_size = int(codebook_size)
        self.window = int(window)
        self.levels = int(levels)
        self._usage = _vqsim.Usage(self.codebook_size, self.window, self.levels)

    def update(self, indices):
        if self.levels > 1 and isinstance(indices, (list, tuple)):
            per_level = [_ints(a) for a in indices]
        else:
            a = _ints(indices)
            if self.levels == 1:
                per_level = [a]
            elif a.ndim == 0 or a.shape[-1] != self.levels:
                raise ValueError(
                    f"indices: shape {a.shape} does not end in the {self.levels} levels; "
                    f"give (..., {self.levels}) or a list of {self.levels} arrays"
                )
            else:
                per_level = [_ints(a[..., k]) for k in range(self.levels)]
        self._usage.update(per_level)

    def report(self):
        if self.levels == 1:
            return self._usage.report(0)
        return {"levels": [self._usage.report(k) for k in range(self.levels)]}

    def check(self, codebook, embeddings, labels=None, *, seed=0):
        """``vqsim.diagnose(codebook, embeddings, labels, seed=seed)``."""
        return diagnose(codebook, embeddings, labels, seed=seed)

    def __repr__(self):
        return f"Monitor(codebook_size={self.codebook_size}, window={self.window}, levels={self.levels})"


def _ints(indices):
    a = np.asarray(indices)
    if a.dtype.kind not in "iu":
        raise ValueError(f"indices: element type {a.dtype} is not allowed; expected an integer type")
    # Contiguous: a strided view (a level of the last axis) costs 10x more to count in Rust.
    return np.ascontiguousarray(a, dtype=np.int64)

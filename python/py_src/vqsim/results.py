"""``vqsim.run`` and ``vqsim.load``: a scenario's sweep and its tables as pandas DataFrames."""

import os
from functools import cached_property
from pathlib import Path

from . import _vqsim


class Results:
    """The tables of one results directory ``OUT/NAME``, read when first used.

    ``runs``: runs.csv, one row per run (its keys and final metrics); ``history``:
    history.csv, the metrics per run and epoch; ``summary`` and ``comparisons``: the
    summary tables (written by ``vqsim run`` or ``vqsim plot``); ``name``: the scenario's.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.name = self.path.resolve().name

    def _read(self, file, hint=""):
        path = self.path / file
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file{hint}")
        return _pandas().read_csv(path)

    @cached_property
    def runs(self):
        return self._read("runs.csv")

    @cached_property
    def history(self):
        return self._read("history.csv")

    @cached_property
    def summary(self):
        return self._read("summary.csv", f"; `vqsim plot {self.path}` writes it")

    @cached_property
    def comparisons(self):
        return self._read("comparisons.csv", f"; `vqsim plot {self.path}` writes it")

    def __repr__(self):
        return f"Results({self.name!r}, path={str(self.path)!r})"


def _pandas():
    try:
        import pandas
    except ImportError as e:
        raise ImportError(
            "vqsim.load and vqsim.run return pandas DataFrames, and pandas is not installed: "
            "pip install pandas (or pip install 'vqsim[pandas]')"
        ) from e
    return pandas


def load(path):
    """The results in ``path``, an ``OUT/NAME`` directory written by ``vqsim run`` (or
    ``vqsim.run``). Needs pandas."""
    _pandas()
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such directory; give OUT/<scenario name>")
    if not (path / "scenario.toml").is_file():
        inside = sorted(str(p) for p in path.iterdir() if (p / "scenario.toml").is_file())
        such = f", such as {' or '.join(inside)}" if inside else ""
        raise ValueError(
            f"{path} is not a results directory: it has no scenario.toml; give OUT/<scenario name>{such}"
        )
    return Results(path)


def run(scenario, *, out="out", threads=None):
    """Run a scenario file as ``vqsim run SCENARIO --out OUT``: runs already in
    ``OUT/NAME`` are kept (an interrupted sweep resumes), progress goes to stderr, and the
    same files are written (tables, figures). ``threads``: worker threads, default all
    cores; results do not depend on it. Ctrl-C abandons the runs in flight, keeps those
    finished and raises KeyboardInterrupt. Returns ``load(OUT/NAME)``; needs pandas."""
    _pandas()
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool)):
        raise ValueError(f"threads: {threads!r} is not allowed; expected an integer ≥ 1 or None")
    if threads is not None and threads < 1:
        raise ValueError("threads: must be at least 1")
    return load(_vqsim.run(os.fspath(scenario), os.fspath(out), threads))

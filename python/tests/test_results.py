"""vqsim.run and vqsim.load against the CSV files and the command line."""

import csv
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import vqsim
from test_diagnose import ROOT, cli

pd = pytest.importorskip("pandas")
SMOKE = ROOT / "scenarios" / "smoke.toml"


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def without_seconds(path):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows(path)]


def same_table(frame, path):
    """The DataFrame holds the file's table: columns, and every cell as pandas parses it."""
    assert list(frame.columns) == list(rows(path)[0])
    pd.testing.assert_frame_equal(frame, pd.read_csv(path))
    assert len(frame) == len(rows(path))


def test_run_writes_what_the_command_line_writes_and_load_reads_it(tmp_path):
    results = vqsim.run(SMOKE, out=tmp_path / "py", threads=2)
    assert results.name == "smoke"
    d = tmp_path / "py" / "smoke"
    for table, file in [
        (results.runs, "runs.csv"),
        (results.history, "history.csv"),
        (results.summary, "summary.csv"),
        (results.comparisons, "comparisons.csv"),
    ]:
        same_table(table, d / file)
    assert len(results.runs) == 4 and set(results.runs["status"]) == {"ok"}
    assert (d / "figures").is_dir() and any((d / "figures").glob("*.png"))
    # The command line on the same scenario: the same tables, but for the seconds.
    subprocess.run([cli(), "run", str(SMOKE), "--out", str(tmp_path / "cli")], check=True,
                   capture_output=True)
    for file in ["runs.csv", "history.csv", "summary.csv", "comparisons.csv"]:
        assert without_seconds(d / file) == without_seconds(tmp_path / "cli" / "smoke" / file), file
    loaded = vqsim.load(tmp_path / "cli" / "smoke")
    same_table(loaded.runs, tmp_path / "cli" / "smoke" / "runs.csv")


def test_run_resumes_finished_runs(tmp_path):
    first = vqsim.run(SMOKE, out=tmp_path, threads=1).runs
    again = vqsim.run(SMOKE, out=tmp_path, threads=2).runs
    # Runs present are not run again: even their wall times are the ones stored.
    pd.testing.assert_frame_equal(first, again)


def test_ctrl_c_stops_the_sweep_cleanly_and_the_next_run_resumes(tmp_path):
    # 200 default-size runs (0.2-0.5 s each), so that the sweep is still going when the signal
    # comes, however fast or busy the machine: smoke-size runs all finish within it.
    scenario = tmp_path / "many.toml"
    scenario.write_text(f'name = "many"\nseeds = {list(range(200))}\n[schedule]\nkind = "early"\n')
    # A shell that starts a job in the background makes it ignore SIGINT, and Python then
    # keeps ignoring it: install Python's own handler, as an interactive session has it.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        ctrl_c_then_resume(scenario, tmp_path / "out")
    finally:
        signal.signal(signal.SIGINT, previous)


def ctrl_c_then_resume(scenario, out):
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt, match="sweep cancelled: .* runs have results in"):
        vqsim.run(scenario, out=out, threads=2)
    timer.join()
    d = out / "many"
    done = len(rows(d / "runs.csv"))
    assert 0 < done < 200, done
    assert not list(d.rglob(".tmp~*")), "temporary files left behind"
    # Python's own Ctrl-C handling is intact afterwards.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    results = vqsim.run(scenario, out=out, threads=2)
    assert len(results.runs) == 200


def test_bad_scenarios_and_arguments_raise_value_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[quantizer]\ncodebook_size = 0\n')
    with pytest.raises(ValueError, match="codebook_size"):
        vqsim.run(bad, out=tmp_path)
    with pytest.raises(ValueError, match="threads: must be at least 1"):
        vqsim.run(SMOKE, out=tmp_path, threads=0)
    with pytest.raises(ValueError, match="threads: 1.5 is not allowed"):
        vqsim.run(SMOKE, out=tmp_path, threads=1.5)
    with pytest.raises(ValueError, match="--threads 100000 is too many"):
        vqsim.run(SMOKE, out=tmp_path, threads=100000)
    with pytest.raises(ValueError, match="cannot read|no such file|No such file"):
        vqsim.run(tmp_path / "missing.toml", out=tmp_path)


def test_load_refuses_what_is_not_a_results_directory(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "scenario.toml").write_text('name = "a"\n')
    with pytest.raises(ValueError, match=r"is not a results directory: it has no scenario.toml; give OUT/<scenario name>, such as .*a"):
        vqsim.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        vqsim.load(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="summary.csv: no such file; `vqsim plot"):
        vqsim.load(tmp_path / "a").summary


def test_without_pandas_load_raises_a_clear_import_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        vqsim.load(tmp_path)
    with pytest.raises(ImportError, match="pip install pandas"):
        vqsim.run(SMOKE, out=tmp_path)

"""vqsim in Python: codebook health for VQ tokenizers.

- ``diagnose(codebook, embeddings)``: the numbers of ``vqsim diagnose`` for a trained codebook;
- ``Monitor(codebook_size)``: code usage over a sliding window, inside a training loop;
- ``run(scenario)`` and ``load(path)``: vqsim's simulations, results as pandas DataFrames.

The work is done by vqsim's Rust core, with the GIL released.
"""

from .diagnosis import Diagnosis, Verdict, diagnose
from .monitor import Monitor
from .results import Results, load, run

__all__ = ["Diagnosis", "Monitor", "Results", "Verdict", "diagnose", "load", "run"]

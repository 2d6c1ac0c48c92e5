"""Write the inputs of the diagnose scale measurement (docs/diagnose.md, "Scale"): 200 000
embeddings of dimension 256 and a codebook of 16 384 codes, float32 .npy, into DIR.

Embeddings come from a mixture of 64 Gaussians; the codebook is 16 384 of the embeddings'
own neighbourhood (each code an embedding plus a little noise), as a k-means codebook would be.

    python3 scripts/diagnose_scale.py /tmp/scale      # needs numpy
    /usr/bin/time -v target/release/vqsim diagnose --threads 2 \\
        --codebook /tmp/scale/codebook.npy --embeddings /tmp/scale/embeddings.npy
"""
import sys
from pathlib import Path

import numpy as np

N, M, S, K = 200_000, 256, 16_384, 64
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
centres = rng.normal(0.0, 4.0, (K, M)).astype(np.float32)
z = centres[rng.integers(0, K, N)] + rng.normal(0.0, 1.0, (N, M)).astype(np.float32)
codes = z[rng.choice(N, S, replace=False)] + rng.normal(0.0, 0.1, (S, M)).astype(np.float32)
np.save(out / "embeddings.npy", z.astype(np.float32))
np.save(out / "codebook.npy", codes.astype(np.float32))

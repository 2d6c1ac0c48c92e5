#!/usr/bin/env python3
"""vqsim's PyTorch reference: one run of a scenario, written independently of the Rust code.

    python3 scripts/torch_ref.py SCENARIO.toml [--seed N] [--threads 1]

Reads the scenario's base configuration (the same keys and defaults as vqsim; `[sweep]` is
ignored, the first seed is used unless --seed is given), trains the VQ autoencoder on CPU and
prints one JSON line: the final metrics under vqsim's names and `seconds`, the wall time of
training (codebook initialisation included, metrics excluded), as vqsim's runs.csv has it.

Same model and method as vqsim (docs/metrics.md, "Model, training and conventions"): K isotropic
Gaussians with means uniform in [-r, r]^d; MLP encoder and mirror decoder initialised as
nn.Linear; nearest code with the straight-through estimator; loss = recon MSE +
||sg(z) - q||^2 + beta ||z - sg(q)||^2 (means over batch x dims); the codebook has its own
Adam; `deferred` trains continuous_epochs without quantization first; k-means init is
scikit-learn's (k-means++, one run, 50 iterations). Random streams differ from vqsim's, so
compare distributions over seeds, not single runs (scripts/compare_torch.py does).

Needs Python >= 3.11 (tomllib), torch, numpy, scikit-learn. Only `update = "loss"` and equal
mixture weights and spreads are implemented; other settings are refused.
"""
import argparse
import json
import sys
import time
import tomllib

import numpy as np
import torch
from sklearn.cluster import KMeans
from torch import nn

DEFAULTS = {
    "data": {"modes": 10, "points_per_mode": 1000, "dim": 2, "mean_range": 10.0, "std": 0.5,
             "weight_ratio": 1.0, "std_ratio": 1.0, "holdout": 0.0},
    "model": {"latent_dim": 2, "width": 64, "depth": 2, "activation": "relu"},
    "quantizer": {"codebook_size": 64, "update": "loss", "beta": 0.25, "ema_decay": 0.99,
                  "init": "kmeans", "init_std": 1.0},
    "train": {"lr": 1e-3, "batch_size": 256, "epochs": 30},
    "schedule": {"kind": "early", "continuous_epochs": 30},
}
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}
SUBSAMPLE = 1000  # points for the embedding spread, as vqsim


def config(path):
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    cfg = {section: {**keys, **raw.get(section, {})} for section, keys in DEFAULTS.items()}
    unsupported = [
        f"{s}.{k} = {cfg[s][k]!r}"
        for s, k, ok in [("quantizer", "update", "loss"), ("data", "weight_ratio", 1.0),
                         ("data", "std_ratio", 1.0), ("data", "holdout", 0.0)]
        if cfg[s][k] != ok
    ]
    if unsupported:
        sys.exit(f"{path}: not implemented in the reference: {', '.join(unsupported)}")
    seeds = raw.get("seeds") or list(range(raw.get("replicates", 1)))
    return cfg, seeds


def network(inputs, outputs, model):
    layers, width = [], inputs
    for _ in range(model["depth"]):
        layers += [nn.Linear(width, model["width"]), ACTIVATIONS[model["activation"]]()]
        width = model["width"]
    return nn.Sequential(*layers, nn.Linear(width, outputs))


def mixture(data, rng):
    means = rng.uniform(-data["mean_range"], data["mean_range"], (data["modes"], data["dim"]))
    points = means.repeat(data["points_per_mode"], axis=0)
    points += data["std"] * rng.standard_normal(points.shape)
    return means, torch.from_numpy(points.astype(np.float32))


def entropy(counts):
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def nearest(a, b):
    return torch.cdist(a, b).argmin(dim=1)


def train(cfg, seed):
    data, model, quant, tr, sched = (cfg[k] for k in DEFAULTS)
    torch.manual_seed(seed)
    means, x = mixture(data, np.random.default_rng(seed))
    n = len(x)
    encoder = network(data["dim"], model["latent_dim"], model)
    decoder = network(model["latent_dim"], data["dim"], model)
    adam = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=tr["lr"])
    shuffle = torch.Generator().manual_seed(seed)

    def epoch(codebook=None, codebook_adam=None):
        for batch in torch.randperm(n, generator=shuffle).split(tr["batch_size"]):
            xb = x[batch]
            z = encoder(xb)
            if codebook is None:
                loss = ((decoder(z) - xb) ** 2).mean()
            else:
                q = codebook[nearest(z.detach(), codebook.detach())]
                straight_through = z + (q - z).detach()
                loss = (((decoder(straight_through) - xb) ** 2).mean()
                        + ((z.detach() - q) ** 2).mean()
                        + quant["beta"] * ((z - q.detach()) ** 2).mean())
                codebook_adam.zero_grad()
            adam.zero_grad()
            loss.backward()
            adam.step()
            if codebook is not None:
                codebook_adam.step()

    start = time.perf_counter()
    if sched["kind"] == "deferred":
        for _ in range(sched["continuous_epochs"]):
            epoch()
    k, m = quant["codebook_size"], model["latent_dim"]
    with torch.no_grad():
        if quant["init"] == "kmeans":
            z = encoder(x).numpy()
            fit = KMeans(k, init="k-means++", n_init=1, max_iter=50, random_state=seed).fit(z)
            initial = torch.from_numpy(fit.cluster_centers_.astype(np.float32))
        elif quant["init"] == "normal":
            initial = quant["init_std"] * torch.randn(k, m, generator=shuffle)
        else:
            initial = (2 * torch.rand(k, m, generator=shuffle) - 1) / k
    codebook = nn.Parameter(initial)
    codebook_adam = torch.optim.Adam([codebook], lr=tr["lr"])
    for _ in range(tr["epochs"]):
        epoch(codebook, codebook_adam)
    seconds = time.perf_counter() - start
    return means, x, encoder, decoder, codebook.detach(), seconds, shuffle


def metrics(means, x, encoder, decoder, codebook, rng):
    with torch.no_grad():
        z = encoder(x)
        code = nearest(z, codebook)
        recon = decoder(codebook[code])
        k = len(codebook)
        usage = np.bincount(code.numpy(), minlength=k)
        mode_of = lambda points: nearest(points, torch.from_numpy(means).float()).numpy()
        hit = np.bincount(mode_of(recon), minlength=len(means))
        code_modes = np.bincount(mode_of(decoder(codebook)), minlength=len(means))
        pairs = lambda a: float(torch.cdist(a, a).sum() / (len(a) * (len(a) - 1)))
        sub = z[torch.randperm(len(z), generator=rng)[:SUBSAMPLE]]
        codebook_dist, embed_dist = pairs(codebook), pairs(sub)
    return {
        "mse": float(((recon - x) ** 2).mean()),
        "quant_mse": float(((z - codebook[code]) ** 2).sum(dim=1).mean()),
        "perplexity": float(np.exp(entropy(usage))),
        "codes_used": int((usage > 0).sum()),
        "dead_codes": int((usage == 0).sum()),
        "codebook_dist": codebook_dist,
        "embed_dist": embed_dist,
        "shrink_ratio": codebook_dist / embed_dist,
        "modes_hit": int((hit > 0).sum()),
        "mode_entropy": entropy(hit),
        "token_mode_entropy": entropy(code_modes),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario")
    ap.add_argument("--seed", type=int, help="default: the scenario's first seed")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg, seeds = config(args.scenario)
    seed = seeds[0] if args.seed is None else args.seed
    means, x, encoder, decoder, codebook, seconds, rng = train(cfg, seed)
    result = {"seed": seed, "kind": cfg["schedule"]["kind"],
              **metrics(means, x, encoder, decoder, codebook, rng), "seconds": seconds}
    print(json.dumps(result))


if __name__ == "__main__":
    main()

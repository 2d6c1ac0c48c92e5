#!/usr/bin/env python3
"""vqsim.Monitor inside a PyTorch training loop: a small VQ autoencoder on a Gaussian
mixture, trained under early quantization (the codebook is fitted to the untrained encoder's
outputs and quantization is on from the first step) and under deferred quantization (the
autoencoder trains without quantization first, then the codebook is fitted and fine-tuned).

    pip install ./python torch       # from the repository root
    python examples/pytorch_monitor.py [--every 200]

Every --every steps it prints the monitor's report over the last epoch of indices; at the
end, vqsim.diagnose on the whole data set's embeddings. The model is vqsim's built-in
default (10 modes of 1 000 points in 2-D, MLP 2-64-64-2, 64 codes, straight-through
estimator with the codebook loss and beta = 0.25, Adam 1e-3, batch 256, 30 epochs, plus 30
unquantized epochs when deferred), written in plain PyTorch.
"""
import argparse

import torch
from torch import nn

import vqsim

MODES, PER_MODE, DIM, RANGE, STD = 10, 1000, 2, 10.0, 0.5
LATENT, WIDTH, CODES, BETA = 2, 64, 64, 0.25
LR, BATCH, EPOCHS, CONTINUOUS = 1e-3, 256, 30, 30


def mixture(gen):
    means = (torch.rand(MODES, DIM, generator=gen) * 2 - 1) * RANGE
    labels = torch.arange(MODES).repeat_interleave(PER_MODE)
    return means[labels] + STD * torch.randn(len(labels), DIM, generator=gen), labels


def mlp(d_in, d_out):
    return nn.Sequential(nn.Linear(d_in, WIDTH), nn.ReLU(), nn.Linear(WIDTH, WIDTH), nn.ReLU(),
                         nn.Linear(WIDTH, d_out))


def kmeans(z, k, gen, iters=50):
    """k-means++ seeding, then Lloyd's iterations: the codebook fitted to the embeddings."""
    centres = z[torch.randint(len(z), (1,), generator=gen)]
    while len(centres) < k:
        d2 = torch.cdist(z, centres).min(dim=1).values ** 2
        centres = torch.cat([centres, z[torch.multinomial(d2, 1, generator=gen)]])
    for _ in range(iters):
        assign = torch.cdist(z, centres).argmin(dim=1)
        for j in range(k):
            if (assign == j).any():
                centres[j] = z[assign == j].mean(dim=0)
    return centres


def quantize(z, codebook):
    """Nearest code, the straight-through estimator and the codebook + commitment loss."""
    idx = torch.cdist(z, codebook).argmin(dim=1)
    q = codebook[idx]
    loss = ((z.detach() - q) ** 2).mean() + BETA * ((z - q.detach()) ** 2).mean()
    return z + (q - z).detach(), idx, loss


def train(kind, x, labels, every, seed=0):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    enc, dec = mlp(DIM, LATENT), mlp(LATENT, DIM)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=LR)
    step = 0

    def epochs(n, codebook=None, code_opt=None, monitor=None):
        nonlocal step
        for _ in range(n):
            for batch in torch.randperm(len(x), generator=gen).split(BATCH):
                z = enc(x[batch])
                loss = 0.0
                if codebook is not None:
                    z, idx, loss = quantize(z, codebook)
                    monitor.update(idx)
                loss = loss + ((dec(z) - x[batch]) ** 2).mean()
                opt.zero_grad()
                if code_opt:
                    code_opt.zero_grad()
                loss.backward()
                opt.step()
                if code_opt:
                    code_opt.step()
                step += 1
                if monitor and step % every == 0:
                    r = monitor.report()
                    print(f"{kind:>8} step {step:5d}: perplexity {r['perplexity']:5.1f} "
                          f"({r['perplexity_ratio']:.2f} of {CODES}), {r['codes_used']:2d} codes used, "
                          f"{r['dead_codes']:2d} dead, {r['rare_codes']:2d} rare")

    if kind == "deferred":
        epochs(CONTINUOUS)
    with torch.no_grad():
        codebook = nn.Parameter(kmeans(enc(x), CODES, gen))
    # The window is one epoch of indices: usage now, not averaged over training.
    monitor = vqsim.Monitor(CODES, window=len(x))
    epochs(EPOCHS, codebook, torch.optim.Adam([codebook], lr=LR), monitor)
    with torch.no_grad():
        d = monitor.check(codebook.detach(), enc(x), labels)
    print(f"{kind:>8} end: {d.verdict.kind}: perplexity {d.perplexity:.1f}, {d.codes_used:.0f} codes used, "
          f"shrink_ratio {d.shrink_ratio:.3f}, live codes hold {100 * d.live_var_share:.1f}% of the "
          f"embeddings' variance, {d.classes_hit:.0f} of {MODES} modes hit")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--every", type=int, default=200, help="steps between reports")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    x, labels = mixture(torch.Generator().manual_seed(args.seed))
    for kind in ["early", "deferred"]:
        train(kind, x, labels, args.every, args.seed)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""vqsim's batched PyTorch sweep reference (`vqsim bench --torch` runs it).

What a PyTorch user would write for a sweep: R independent default runs (the built-in defaults, early schedule,
k-means init on the untrained encoder: random start + 50 Lloyd iterations) trained in lockstep with batched
matrix products, on CPU or GPU. Prints one JSON line per R: wall seconds (k-means init + training, as vqsim's
`seconds`), runs per second, and the perplexity of the first runs as a sanity check.

    python3 scripts/torch_batched.py 16 [R ...] [--threads N]

Lloyd k-means from a random start rather than vqsim's k-means++ and m_k-means, and no per-epoch
metrics: the cheapest loop a user would write, so the fairest speed reference for a sweep.
"""
import json, sys, time, math, torch
dev = "cuda" if torch.cuda.is_available() else "cpu"
K, P, d, m, w, S, B, E, lr, beta = 10, 1000, 2, 2, 64, 64, 256, 30, 1e-3, 0.25
N = K * P

def uni(R, i, o, g):
    a = 1 / math.sqrt(i)
    return [(torch.rand(R, i, o, generator=g, device=dev) * 2 - 1) * a, (torch.rand(R, 1, o, generator=g, device=dev) * 2 - 1) * a]

def mlp(params, x):
    for j in range(0, len(params) - 2, 2):
        x = torch.relu(torch.baddbmm(params[j + 1], x, params[j]))
    return torch.baddbmm(params[-1], x, params[-2])

def kmeans(z, S, iters, g):
    R = z.shape[0]
    c = torch.gather(z, 1, torch.randint(0, z.shape[1], (R, S, 1), generator=g, device=dev).expand(-1, -1, z.shape[2])).clone()
    for _ in range(iters):
        a = torch.cdist(z, c).argmin(2)
        s = torch.zeros_like(c).scatter_add_(1, a[..., None].expand(-1, -1, z.shape[2]), z)
        n = torch.zeros(R, S, device=dev).scatter_add_(1, a, torch.ones_like(a, dtype=z.dtype))
        c = torch.where(n[..., None] > 0, s / n.clamp(min=1)[..., None], c)
    return c

def sweep(R, seed=0):
    g = torch.Generator(device=dev).manual_seed(seed)
    means = (torch.rand(R, K, d, generator=g, device=dev) * 2 - 1) * 10
    lab = torch.arange(K, device=dev).repeat_interleave(P)
    x = means[:, lab] + 0.5 * torch.randn(R, N, d, generator=g, device=dev)
    enc = uni(R, d, w, g) + uni(R, w, w, g) + uni(R, w, m, g)
    dec = uni(R, m, w, g) + uni(R, w, w, g) + uni(R, w, d, g)
    params = [p.requires_grad_() for p in enc + dec]
    opt = torch.optim.Adam(params, lr=lr)
    if dev == "cuda": torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch.no_grad(): cb = kmeans(mlp(enc, x), S, 50, g)
    cb.requires_grad_(); copt = torch.optim.Adam([cb], lr=lr)
    for _ in range(E):
        perm = torch.argsort(torch.rand(R, N, generator=g, device=dev), 1)
        for s in range(0, N, B):
            idx = perm[:, s:s + B]
            xb = torch.gather(x, 1, idx[..., None].expand(-1, -1, d))
            z = mlp(enc, xb)
            k = torch.cdist(z, cb).argmin(2)
            q = torch.gather(cb, 1, k[..., None].expand(-1, -1, m))
            rec = mlp(dec, z + (q - z).detach())
            loss = (((rec - xb) ** 2).mean((1, 2)) + ((q - z.detach()) ** 2).mean((1, 2)) + beta * ((z - q.detach()) ** 2).mean((1, 2))).sum()
            opt.zero_grad(); copt.zero_grad(); loss.backward(); opt.step(); copt.step()
    if dev == "cuda": torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    with torch.no_grad():
        z = mlp(enc, x); k = torch.cdist(z, cb).argmin(2)
        ppl = []
        for r in range(min(R, 4)):
            p = torch.bincount(k[r], minlength=S).float() / N; p = p[p > 0]
            ppl.append(float(torch.exp(-(p * p.log()).sum())))
    return dt, ppl

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--threads" in args:
        i = args.index("--threads"); torch.set_num_threads(int(args[i + 1])); del args[i:i + 2]
    torch.backends.cuda.matmul.allow_tf32 = False
    sweep(2)  # warm-up
    for R in [int(a) for a in args] or [1, 16, 128, 1024]:
        dt, ppl = sweep(R)
        print(json.dumps(dict(device=torch.cuda.get_device_name() if dev == "cuda" else "cpu", runs=R, seconds=round(dt, 3),
                              runs_per_s=round(R / dt, 2), perplexity_first_runs=[round(p, 2) for p in ppl])), flush=True)

#!/usr/bin/env python3
"""Compare vqsim's remedies with lucidrains/vector-quantize-pytorch's, arm by arm.

Each arm is one remedy that both implement, run on the same data, encoder and decoder (the
built-in defaults, early quantization from a k-means init on the untrained encoder, as in the zoo)
over the same seeds, one thread each: vqsim through its CLI, the library's `VectorQuantize`
inside the PyTorch model of scripts/torch_ref.py. Random streams differ, so runs are compared
as distributions over seeds: per arm, metric and side the mean with its 95% t-interval, as a
Markdown table, then the metrics whose intervals do not overlap.

The library's venv (Python >= 3.11):

    python3 -m venv /tmp/peervenv
    /tmp/peervenv/bin/pip install vector-quantize-pytorch==1.32.0 scikit-learn scipy
    /tmp/peervenv/bin/python scripts/compare_peer.py --seeds 0 1 2 3 4 5 6 7 8 9

How vqsim's keys map onto the library's options (read from vector_quantize_pytorch.py 1.32.0):
- every arm: rotation_trick=False unless the arm is the rotation trick (the library turns it on
  by default when dim > 1; vqsim's default estimator is straight-through), commitment_weight =
  quantizer.beta, decay = quantizer.ema_decay (EMA arms) or quantizer.restart_decay (the
  library tracks usage with the same decay it would use for EMA).
- update = "loss": learnable_codebook=True, ema_update=False, the codebook in its own Adam at
  train.lr. The library's commitment term mse(q, z) sends the same weight β to the code and to
  the encoder; VQ-VAE's codebook loss has weight 1, so (1 − β)·mse(e, sg(z)) is added here.
- update = "ema": ema_update=True; the library's EMA (cluster sizes starting at 1, sums at
  the codes, Laplace smoothing) is vqsim's.
- codebook init: both start from k-means++ (50 iterations) on the untrained encoder's outputs
  of the whole data set (scikit-learn here), written into the library's codebook buffers;
  except the arm "k-means init (library's)", where the library runs its own kmeans_init
  (10 Lloyd iterations from random rows of the first batch).
- restart = "threshold" -> threshold_ema_dead_code = restart_threshold; distance = "cosine" ->
  use_cosine_sim=True (the library allows it with EMA only, so that arm is EMA on both sides);
  estimator = "rotation" -> rotation_trick=True; sync_nu -> sync_update_v; orthogonal_weight ->
  orthogonal_reg_weight; code_dim -> codebook_dim (project_in / project_out, which learn in
  the networks' Adam here and in their own Adam in vqsim: the same per-parameter update).
"""
import argparse, csv, json, pathlib, statistics, subprocess, sys, tempfile, time

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats
from sklearn.cluster import KMeans
from vector_quantize_pytorch import VectorQuantize

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import torch_ref  # noqa: E402  (the same mixture, networks and metric helpers)

METRICS = ["perplexity", "codes_used", "shrink_ratio", "quant_mse", "mse", "modes_hit",
           "token_mode_entropy"]
# name, vqsim settings (TOML values), library options
ARMS = [
    ("plain early", [], {}),
    ("deferred", ['schedule.kind="deferred"'], {"deferred": True}),
    ("EMA", ['quantizer.update="ema"'], {"ema": True}),
    ("threshold restart", ['quantizer.restart="threshold"'], {"threshold_ema_dead_code": 1.0}),
    ("rotation trick", ['quantizer.estimator="rotation"'], {"rotation_trick": True}),
    ("sync update ν = 0.2", ["quantizer.sync_nu=0.2"], {"sync_update_v": 0.2}),
    ("orthogonal 10", ["quantizer.orthogonal_weight=10.0"], {"orthogonal_reg_weight": 10.0}),
    ("code_dim 1", ["quantizer.code_dim=1"], {"codebook_dim": 1}),
    ("EMA + cosine", ['quantizer.update="ema"', 'quantizer.distance="cosine"'],
     {"ema": True, "use_cosine_sim": True}),
    ("k-means init (library's)", [], {"kmeans_init": True}),
]


def vqsim_runs(vqsim, seeds, settings, tmp, name):
    scenario = tmp / f"{name}.toml"
    scenario.write_text(f'name = "{name}"\nseeds = {list(seeds)}\n' + torch_ref_toml(settings))
    subprocess.run([vqsim, "run", str(scenario), "--out", str(tmp), "--threads", "1", "--no-report"],
                   check=True, stdout=subprocess.DEVNULL)
    with open(tmp / name / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    bad = [r["run_id"] for r in rows if r["status"] != "ok"]
    if bad:
        sys.exit(f"vqsim {name}: runs not ok: {bad}")
    return [{m: float(r[m]) for m in METRICS} for r in rows]


def torch_ref_toml(settings):
    sections = {}
    for setting in settings:
        key, value = setting.split("=", 1)
        section, k = key.split(".", 1)
        sections.setdefault(section, []).append(f"{k} = {value}")
    return "".join(f"[{s}]\n" + "".join(f"{line}\n" for line in lines) for s, lines in sections.items())


def quantizer(cfg, opts):
    q, m = cfg["quantizer"], cfg["model"]["latent_dim"]
    ema = opts.get("ema", False)
    return VectorQuantize(
        dim=m, codebook_size=q["codebook_size"], codebook_dim=opts.get("codebook_dim"),
        decay=q["ema_decay"] if ema else q["restart_decay"], eps=1e-5,
        commitment_weight=q["beta"], ema_update=ema, learnable_codebook=not ema,
        rotation_trick=opts.get("rotation_trick", False),
        threshold_ema_dead_code=opts.get("threshold_ema_dead_code", 0),
        use_cosine_sim=opts.get("use_cosine_sim", False),
        orthogonal_reg_weight=opts.get("orthogonal_reg_weight", 0.0),
        sync_update_v=opts.get("sync_update_v", 0.0),
        kmeans_init=opts.get("kmeans_init", False), kmeans_iters=10)


def lookup_inputs(vq, z):
    """What the library's codebook sees of z: projected, l2-normalised for cosine."""
    return vq._codebook.transform_input(vq.project_in(z))


def kmeans_codebook(vq, z, seed):
    """vqsim's init: k-means++ (one run, 50 iterations) on the lookup inputs of every point,
    written where the library keeps its codes and EMA statistics (cluster sizes 1)."""
    u = lookup_inputs(vq, z).numpy()
    k = vq.codebook_size
    centres = KMeans(k, init="k-means++", n_init=1, max_iter=50, random_state=seed).fit(u)
    raw = torch.from_numpy(centres.cluster_centers_.astype(np.float32))[None]
    cb = vq._codebook
    cb.embed.data.copy_(F.normalize(raw, dim=-1) if vq.use_cosine_sim else raw)
    cb.embed_avg.data.copy_(raw)
    cb.cluster_size.data.fill_(1.0)


def train(cfg, seed, opts):
    data, model, tr = cfg["data"], cfg["model"], cfg["train"]
    torch.manual_seed(seed)
    means, x = torch_ref.mixture(data, np.random.default_rng(seed))
    n = len(x)
    encoder = torch_ref.network(data["dim"], model["latent_dim"], model)
    decoder = torch_ref.network(model["latent_dim"], data["dim"], model)
    vq = quantizer(cfg, opts)
    codebook = vq._codebook.embed
    nets = [*encoder.parameters(), *decoder.parameters(), *vq.project_in.parameters(),
            *vq.project_out.parameters()]
    adam = torch.optim.Adam(nets, lr=tr["lr"])
    learned = isinstance(codebook, torch.nn.Parameter)
    codebook_adam = torch.optim.Adam([codebook], lr=tr["lr"]) if learned else None
    shuffle = torch.Generator().manual_seed(seed)
    beta = cfg["quantizer"]["beta"]

    def epoch(quantized):
        for batch in torch.randperm(n, generator=shuffle).split(tr["batch_size"]):
            xb = x[batch]
            z = encoder(xb)
            if not quantized:
                loss = ((decoder(z) - xb) ** 2).mean()
            else:
                q, idx, vq_loss = vq(z)
                loss = ((decoder(q) - xb) ** 2).mean() + vq_loss
                if learned:
                    # VQ-VAE's codebook loss weight 1: the library's term gave the code β.
                    e = codebook[0][idx]
                    loss = loss + (1 - beta) * ((e - lookup_inputs(vq, z).detach()) ** 2).mean()
                    codebook_adam.zero_grad()
            adam.zero_grad()
            loss.backward()
            adam.step()
            if quantized and learned:
                codebook_adam.step()

    start = time.perf_counter()
    if opts.get("deferred"):
        for _ in range(cfg["schedule"]["continuous_epochs"]):
            epoch(False)
    if not opts.get("kmeans_init"):
        with torch.no_grad():
            kmeans_codebook(vq, encoder(x), seed)
    vq.train()
    for _ in range(tr["epochs"]):
        epoch(True)
    seconds = time.perf_counter() - start
    return means, x, encoder, decoder, vq, seconds, shuffle


def metrics(means, x, encoder, decoder, vq, rng):
    """vqsim's metrics: z in the latent space, codes as the decoder receives them."""
    vq.eval()
    with torch.no_grad():
        z = encoder(x)
        _, code, _ = vq(z)
        embed = vq._codebook.embed[0]
        decoded = vq.project_out(F.normalize(embed, dim=-1) if vq.use_cosine_sim else embed)
        recon = decoder(decoded[code])
        usage = np.bincount(code.numpy(), minlength=len(decoded))
        mode_of = lambda p: torch_ref.nearest(p, torch.from_numpy(means).float()).numpy()
        hit = np.bincount(mode_of(recon), minlength=len(means))
        code_modes = np.bincount(mode_of(decoder(decoded)), minlength=len(means))
        pairs = lambda a: float(torch.cdist(a, a).sum() / (len(a) * (len(a) - 1)))
        sub = z[torch.randperm(len(z), generator=rng)[:torch_ref.SUBSAMPLE]]
        codebook_dist, embed_dist = pairs(decoded), pairs(sub)
    return {
        "mse": float(((recon - x) ** 2).mean()),
        "quant_mse": float(((z - decoded[code]) ** 2).sum(dim=1).mean()),
        "perplexity": float(np.exp(torch_ref.entropy(usage))),
        "codes_used": int((usage > 0).sum()),
        "shrink_ratio": codebook_dist / embed_dist,
        "modes_hit": int((hit > 0).sum()),
        "token_mode_entropy": torch_ref.entropy(code_modes),
    }


def library_runs(seeds, opts):
    cfg = {s: dict(keys) for s, keys in torch_ref.DEFAULTS.items()}
    cfg["quantizer"]["restart_decay"] = 0.99
    rows = []
    for seed in seeds:
        means, x, encoder, decoder, vq, _, rng = train(cfg, seed, opts)
        rows.append(metrics(means, x, encoder, decoder, vq, rng))
    return rows


def interval(values):
    """Mean and 95% t-interval (0 wide for constant values)."""
    mean = statistics.mean(values)
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return mean, mean - half, mean + half


def show(v):
    return f"{v:.3g}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vqsim", default="target/release/vqsim")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    ap.add_argument("--arms", nargs="+", help="arm names to run (default: all)")
    ap.add_argument("--json", help="also write every run of both sides to this file")
    ap.add_argument("--table", nargs="+", metavar="JSON",
                    help="run nothing: print the table of runs written by earlier --json runs "
                         "(arms split over several processes)")
    a = ap.parse_args()
    if a.table:
        results = {}
        for path in a.table:
            results.update(json.loads(pathlib.Path(path).read_text()))
        results = {name: results[name] for name, _, _ in ARMS if name in results}
        return print_table(results, a.seeds)
    if len(a.seeds) < 2:
        sys.exit("--seeds: at least 2 seeds, for an interval")
    unknown = set(a.arms or []) - {name for name, _, _ in ARMS}
    if unknown:
        sys.exit(f"--arms: unknown {sorted(unknown)}; the arms are {[n for n, _, _ in ARMS]}")
    torch.set_num_threads(1)
    arms = [arm for arm in ARMS if a.arms is None or arm[0] in a.arms]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for i, (name, settings, opts) in enumerate(arms):
            print(f"[{i + 1}/{len(arms)}] {name}", file=sys.stderr, flush=True)
            results[name] = {"vqsim": vqsim_runs(a.vqsim, a.seeds, settings, tmp, f"arm{i}"),
                             "library": library_runs(a.seeds, opts)}
            if a.json:  # after every arm, so a crash keeps the arms done
                pathlib.Path(a.json).write_text(json.dumps(results, indent=1))
    print_table(results, a.seeds)


def print_table(results, seeds):
    print(f"Built-in defaults, early quantization from k-means on the untrained encoder unless the arm "
          f"says otherwise; mean [95% t-interval] over seeds {seeds}; overlap: do the two "
          f"intervals overlap\n")
    print("| arm | metric | vqsim | vector-quantize-pytorch | overlap |")
    print("|---|---|---|---|---|")
    apart = []
    for name, sides in results.items():
        for metric in METRICS:
            ours = interval([r[metric] for r in sides["vqsim"]])
            theirs = interval([r[metric] for r in sides["library"]])
            overlap = ours[1] <= theirs[2] and theirs[1] <= ours[2]
            cell = lambda t: f"{show(t[0])} [{show(t[1])}, {show(t[2])}]"
            print(f"| {name} | {metric} | {cell(ours)} | {cell(theirs)} | {'yes' if overlap else 'no'} |")
            if not overlap:
                apart.append(f"{name} {metric}: vqsim {cell(ours)}, library {cell(theirs)}")
    print("\nintervals that do not overlap:" + "".join(f"\n- {line}" for line in apart) if apart
          else "\nevery interval overlaps")


if __name__ == "__main__":
    main()

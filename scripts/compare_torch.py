#!/usr/bin/env python3
"""Compare vqsim with its PyTorch reference (scripts/torch_ref.py), arm by arm.

Both sides run the SPEC defaults, early and deferred, on the same seeds, one thread each. Their
random streams differ (different data draws, inits and shuffles), so runs are compared as
distributions over seeds, not run by run. Prints the mean of each metric per arm and side, and
the agreement checks of the core issue: deferred perplexity within 25% and the same number of
modes reconstructed.

    python3 scripts/compare_torch.py --python /tmp/refvenv/bin/python \
        --seeds 0 1 2
"""
import argparse, csv, json, pathlib, statistics, subprocess, tempfile

METRICS = ["perplexity", "codes_used", "codebook_dist", "shrink_ratio", "mse", "modes_hit", "seconds"]


def vqsim_runs(vqsim, seeds, tmp):
    scenario = tmp / "compare.toml"
    scenario.write_text(
        f'name = "compare"\nseeds = {list(seeds)}\n[sweep]\n"schedule.kind" = ["early", "deferred"]\n'
    )
    subprocess.run([vqsim, "run", str(scenario), "--out", str(tmp), "--threads", "1", "--no-report"],
                   check=True, stdout=subprocess.DEVNULL)
    with open(tmp / "compare" / "runs.csv") as f:
        return [{"kind": r["schedule.kind"], **{m: float(r[m]) for m in METRICS}} for r in csv.DictReader(f)]


def torch_runs(python, ref, seeds, tmp):
    rows = []
    for kind in ["early", "deferred"]:
        scenario = tmp / f"torch_{kind}.toml"
        scenario.write_text(f'[schedule]\nkind = "{kind}"\n')
        for seed in seeds:
            out = subprocess.run([python, ref, str(scenario), "--seed", str(seed), "--threads", "1"],
                                 check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    return rows


def means(rows, kind):
    chosen = [r for r in rows if r["kind"] == kind]
    return {m: statistics.mean(float(r[m]) for r in chosen) for m in METRICS}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", required=True, help="a Python with torch, numpy, scikit-learn")
    ap.add_argument("--torch-ref", default=str(pathlib.Path(__file__).with_name("torch_ref.py")),
                    help="the PyTorch reference (default: scripts/torch_ref.py beside this script)")
    ap.add_argument("--vqsim", default="target/release/vqsim")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        ours, theirs = vqsim_runs(a.vqsim, a.seeds, tmp), torch_runs(a.python, a.torch_ref, a.seeds, tmp)
    print(f"means over seeds {a.seeds}")
    print(f"{'arm':9} {'side':7} " + " ".join(f"{m:>13}" for m in METRICS))
    for kind in ["early", "deferred"]:
        for side, rows in [("vqsim", ours), ("torch", theirs)]:
            print(f"{kind:9} {side:7} " + " ".join(f"{v:13.4g}" for v in means(rows, kind).values()))
    ours_d, theirs_d = means(ours, "deferred"), means(theirs, "deferred")
    gap = abs(ours_d["perplexity"] / theirs_d["perplexity"] - 1)
    print(f"deferred perplexity: vqsim {ours_d['perplexity']:.2f} vs torch {theirs_d['perplexity']:.2f} "
          f"({gap:.1%} apart; {'within' if gap <= 0.25 else 'NOT within'} 25%)")
    print(f"deferred modes reconstructed: vqsim {ours_d['modes_hit']:.2f} vs torch {theirs_d['modes_hit']:.2f}")
    speed = means(theirs, "early")["seconds"] / means(ours, "early")["seconds"]
    print(f"early run, training seconds: vqsim {means(ours, 'early')['seconds']:.3f} vs "
          f"torch {means(theirs, 'early')['seconds']:.3f} ({speed:.1f}x)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Compare vqsim with its PyTorch reference (scripts/torch_ref.py), arm by arm.

Both sides run the same configuration (the built-in defaults, changed by `--set section.key=value`),
early and deferred, on the same seeds, one thread each. Their random streams differ (different
data draws, inits and shuffles), so runs are compared as distributions over seeds, not run by
run: per arm, metric and side the mean over seeds with its 95% t-interval, as a Markdown table
(the agreement table of docs/paper.md), and the metrics whose intervals do not overlap.

    /usr/bin/python3 scripts/compare_torch.py --python /usr/bin/python3 \
        --set data.dim=8 --seeds 0 1 2 3 4 5 6 7 8 9
"""
import argparse, csv, json, pathlib, statistics, subprocess, tempfile

from scipy import stats

METRICS = ["perplexity", "codes_used", "codebook_dist", "embed_dist", "shrink_ratio", "quant_mse",
           "mse", "modes_hit", "mode_entropy", "token_mode_entropy"]
ARMS = ["early", "deferred"]


def toml_sections(settings, kind=None):
    """TOML text of `section.key=value` settings (values as TOML literals), plus the arm."""
    sections = {}
    for setting in settings:
        key, value = setting.split("=", 1)
        section, name = key.split(".", 1)
        sections.setdefault(section, []).append(f"{name} = {value}")
    if kind is not None:
        sections.setdefault("schedule", []).append(f'kind = "{kind}"')
    return "".join(f"[{s}]\n" + "".join(f"{line}\n" for line in lines) for s, lines in sections.items())


def vqsim_runs(vqsim, seeds, settings, tmp):
    scenario = tmp / "compare.toml"
    scenario.write_text(f'name = "compare"\nseeds = {list(seeds)}\n' + toml_sections(settings)
                        + '[sweep]\n"schedule.kind" = ["early", "deferred"]\n')
    subprocess.run([vqsim, "run", str(scenario), "--out", str(tmp), "--threads", "1", "--no-report"],
                   check=True, stdout=subprocess.DEVNULL)
    with open(tmp / "compare" / "runs.csv") as f:
        return [{"kind": r["schedule.kind"], **{m: float(r[m]) for m in METRICS}} for r in csv.DictReader(f)]


def torch_runs(python, ref, seeds, settings, tmp):
    rows = []
    for kind in ARMS:
        scenario = tmp / f"torch_{kind}.toml"
        scenario.write_text(toml_sections(settings, kind))
        for seed in seeds:
            out = subprocess.run([python, ref, str(scenario), "--seed", str(seed), "--threads", "1"],
                                 check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    return rows


def interval(values):
    """Mean and 95% t-interval half-width (0 for constant values)."""
    mean = statistics.mean(values)
    if len(values) < 2:
        return mean, float("nan")
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return mean, half


def summary(rows, kind):
    chosen = [r for r in rows if r["kind"] == kind]
    return {m: interval([float(r[m]) for r in chosen]) for m in METRICS}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", required=True, help="a Python with torch, numpy, scikit-learn")
    ap.add_argument("--torch-ref", default=str(pathlib.Path(__file__).with_name("torch_ref.py")),
                    help="the PyTorch reference (default: scripts/torch_ref.py beside this script)")
    ap.add_argument("--vqsim", default="target/release/vqsim")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="a scenario key for both sides, value as TOML (repeatable), e.g. data.dim=8")
    ap.add_argument("--json", help="also write every run of both sides to this file")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        ours = vqsim_runs(a.vqsim, a.seeds, a.set, tmp)
        theirs = torch_runs(a.python, a.torch_ref, a.seeds, a.set, tmp)
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps({"vqsim": ours, "torch": theirs}, indent=1))
    settings = ", ".join(a.set) or "the built-in defaults"
    print(f"{settings}; mean ± 95% t-interval over seeds {a.seeds} (n = {len(a.seeds)} per arm and side)\n")
    print("| arm | side | " + " | ".join(METRICS) + " |")
    print("|---|---|" + "---|" * len(METRICS))
    apart = []
    for kind in ARMS:
        sides = {"vqsim": summary(ours, kind), "torch": summary(theirs, kind)}
        for side, s in sides.items():
            print(f"| {kind} | {side} | " + " | ".join(f"{m:.4g} ± {h:.2g}" for m, h in s.values()) + " |")
        for metric in METRICS:
            (m1, h1), (m2, h2) = sides["vqsim"][metric], sides["torch"][metric]
            if abs(m1 - m2) > h1 + h2:
                apart.append(f"{kind} {metric}: vqsim {m1:.4g} ± {h1:.2g}, torch {m2:.4g} ± {h2:.2g}")
    print("\nintervals that do not overlap:" + "".join(f"\n- {line}" for line in apart) if apart
          else "\nevery interval overlaps")


if __name__ == "__main__":
    main()

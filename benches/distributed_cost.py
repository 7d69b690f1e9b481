"""Cost model for labelwise.distributed at 10^8 and 10^9 items, from a measured run.

    python benches/distributed_cost.py benches/results/distributed_200k.json [--cores-per-node 16]
    python benches/distributed_cost.py 200K.json 1M.json 3M.json    # several sizes: measured exponents

With several measured runs (e.g. 200k, 1M and 3M), each stage's exponent between consecutive
sizes is printed next to the model's, and each stage is extrapolated from the largest run that
measured it (a stage a run estimated, such as ``distributed_stages.py``'s search, is marked),
once with the model's exponent and once with the exponent measured between the two largest
runs that have it.

Each stage's measured core-seconds (wall time x the cluster's CPUs: an upper bound on a shared
machine) and bytes are scaled from the measured n to the target n by the stage's complexity,
with sqrt(n) lists of sqrt(n) rows (p = probes, d = dimension, L = lists):

| stage | work | scales as |
| --- | --- | --- |
| normalise | decode + normalise every row | n |
| fit | Lloyd on a fixed 100k sample, L centroids | L = sqrt(n) |
| lloyd (each) | every row against L centroids | n * L = n^1.5 |
| assign | every row against L centroids, then the shuffle write | n^1.5 (bytes: n) |
| search | every row against p lists of n/L rows | n^1.5 (halo bytes: n, for a fixed halo ratio) |
| refine | every row against ~8 x k candidates | n |
| saturated | the saturated rows (a share s of n) against each other, exactly | (s n)^2 = n^2 |
| merge | the driver reads the graph, stores it | n |

Prints, per target size, the core-hours per stage, the bytes each stage moves, and the wall
hours on N nodes of C cores assuming the tasks spread evenly (they are independent within a
stage; the driver's fit and merge do not spread).
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

EXPONENT = {"normalise": 1.0, "fit": 0.5, "lloyd": 1.5, "assign": 1.5, "search": 1.5, "refine": 1.0,
            "saturated": 2.0, "merge": 1.0}
DRIVER = {"fit", "merge"}
#: Stages extrapolated by the model's exponent even in the "measured" column: the synthetic
#: pools keep a fixed number of clusters, so their share of saturated rows grows with n (1,236
#: at 200k, 76,741 at 1M) and the measured exponent (4.0) describes the generator, not the stage.
MODEL_ONLY = {"saturated"}


def per_stage(path: str, run: str, cpus: int) -> tuple[int, dict[str, tuple[float, float, float]], list[Any]]:
    """Rows, and per stage (Lloyd steps summed): core-seconds, bytes read, bytes written."""
    r = json.load(open(path))
    per: dict[str, tuple[float, float, float]] = {}
    for s in r[run]["stages"]:
        name = s["name"].rstrip("0123456789")
        if name not in EXPONENT:
            continue
        core_s = s["seconds"] * (1 if name in DRIVER else cpus)
        a, b, c = per.get(name, (0.0, 0.0, 0.0))
        per[name] = (a + core_s, b + s["bytes_read"], c + s["bytes_written"])
    return r["rows"], per, r[run]["stages"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="+", help="measured runs (any sizes; e.g. 200k, 1M and 3M)")
    ap.add_argument("--run", default="distributed")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the measured cluster")
    ap.add_argument("--cores-per-node", type=int, default=16)
    args = ap.parse_args()
    runs = sorted((per_stage(p, args.run, args.cpus) + (p,) for p in args.results), key=lambda x: x[0])
    for n0, _, stages, path in runs:
        print(f"measured: n = {n0:,}, {args.cpus} CPUs, {path}\n")
        print("| stage | measured s | core-s/row | bytes/row read | bytes/row written |")
        print("| --- | --- | --- | --- | --- |")
        for s in stages:
            name = s["name"].rstrip("0123456789")
            if name not in EXPONENT:
                continue
            core_s = s["seconds"] * (1 if name in DRIVER else args.cpus)
            est = " (estimated)" if s.get("estimated") else ""
            print(f"| {s['name']}{est} | {s['seconds']:.1f} | {core_s / n0 * 1e6:.1f} µs | "
                  f"{s['bytes_read'] / n0:.0f} | {s['bytes_written'] / n0:.0f} |")
        print()
    measured = exponents(runs)
    # Each stage starts from the largest run that has it.
    base: dict[str, tuple[int, tuple[float, float, float]]] = {}
    for n0, per, _, _ in runs:
        for name, v in per.items():
            base[name] = (n0, v)
    for n in (10**8, 10**9):
        print(f"\n**n = {n:.0e}** (lists ≈ {round(math.sqrt(n)):,} of ≈ {round(math.sqrt(n)):,} rows)\n")
        print("| stage | from n | core-hours (model exponent) | core-hours (measured exponent) | TB read | TB written |")
        print("| --- | --- | --- | --- | --- | --- |")
        totals = {"model": [0.0, 0.0], "measured": [0.0, 0.0]}
        for name, (n0, (core_s, rd, wr)) in base.items():
            f = n / n0
            e_meas = EXPONENT[name] if name in MODEL_ONLY else measured.get(name, EXPONENT[name])
            hours = {"model": core_s * f ** EXPONENT[name] / 3600, "measured": core_s * f ** e_meas / 3600}
            for kind, h in hours.items():
                totals[kind][1 if name in DRIVER else 0] += h
            fb = 1.0 if name == "fit" else f  # the fit's sample is a fixed 100k rows
            print(f"| {name} | {n0:,} | {hours['model']:,.0f} | {hours['measured']:,.0f} (e = {e_meas:.2f}) | "
                  f"{rd * fb / 1e12:.2f} | {wr * fb / 1e12:.2f} |")
        print(f"| **total** | | {sum(totals['model']):,.0f} | {sum(totals['measured']):,.0f} | | |")
        for nodes in (10, 50, 100):
            wall = {k: v[0] / (nodes * args.cores_per_node) + v[1] for k, v in totals.items()}
            print(f"\n- {nodes} nodes × {args.cores_per_node} cores: ≈ {wall['model']:,.1f} h wall by the model's "
                  f"exponents, ≈ {wall['measured']:,.1f} h by the measured ones", end="")
        print()


def exponents(runs: list[Any]) -> dict[str, float]:
    """Each stage's exponent in core-seconds between consecutive sizes (printed); returns the
    one between the two largest runs that have the stage."""
    last: dict[str, float] = {}
    for (m0, small, _, sp), (n0, large, _, lp) in zip(runs, runs[1:]):
        if not n0 > m0:
            continue
        print(f"exponents between n = {m0:,} ({sp}) and n = {n0:,} ({lp}) (core-seconds; bytes read):\n")
        print("| stage | model | measured (time) | measured (bytes read) |")
        print("| --- | --- | --- | --- |")
        for name, (core_s, rd, _) in large.items():
            if name not in small:
                print(f"| {name} | {EXPONENT[name]} | (not in the smaller run) | |")
                continue
            e_t = math.log(core_s / small[name][0]) / math.log(n0 / m0) if small[name][0] > 0 else float("nan")
            e_b = math.log(rd / small[name][1]) / math.log(n0 / m0) if small[name][1] > 0 and rd > 0 else float("nan")
            if math.isfinite(e_t):
                last[name] = e_t
            print(f"| {name} | {EXPONENT[name]} | {e_t:.2f} | {e_b:.2f} |")
        print()
    return last


if __name__ == "__main__":
    main()

"""Cost model for labelwise.distributed at 10^8 and 10^9 items, from a measured run.

    python benches/distributed_cost.py benches/results/distributed_200k.json [--cores-per-node 16]
    python benches/distributed_cost.py SMALL.json LARGE.json     # two sizes: measured exponents

With two measured runs (e.g. 200k and 1M), each stage's exponent between them is printed next
to the model's, and the extrapolation starts from the larger run.

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
    ap.add_argument("results", nargs="+", help="one measured run, or two of different sizes")
    ap.add_argument("--run", default="distributed")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the measured cluster")
    ap.add_argument("--cores-per-node", type=int, default=16)
    args = ap.parse_args()
    runs = sorted((per_stage(p, args.run, args.cpus) + (p,) for p in args.results), key=lambda x: x[0])
    n0, per, stages, path = runs[-1]
    print(f"measured: n = {n0:,}, {args.cpus} CPUs, {path}\n")
    print("| stage | measured s | core-s/row | bytes/row read | bytes/row written |")
    print("| --- | --- | --- | --- | --- |")
    for s in stages:
        name = s["name"].rstrip("0123456789")
        if name not in EXPONENT:
            continue
        core_s = s["seconds"] * (1 if name in DRIVER else args.cpus)
        print(f"| {s['name']} | {s['seconds']:.1f} | {core_s / n0 * 1e6:.1f} µs | {s['bytes_read'] / n0:.0f} | {s['bytes_written'] / n0:.0f} |")
    if len(runs) > 1 and runs[0][0] < n0:
        m0, small, _, small_path = runs[0]
        print(f"\nexponents between n = {m0:,} ({small_path}) and n = {n0:,} (core-seconds; bytes read):\n")
        print("| stage | model | measured (time) | measured (bytes read) |")
        print("| --- | --- | --- | --- |")
        for name, (core_s, rd, _) in per.items():
            if name not in small:
                print(f"| {name} | {EXPONENT[name]} | (not in the smaller run) | |")
                continue
            e_t = math.log(core_s / small[name][0]) / math.log(n0 / m0) if small[name][0] > 0 else float("nan")
            e_b = math.log(rd / small[name][1]) / math.log(n0 / m0) if small[name][1] > 0 and rd > 0 else float("nan")
            print(f"| {name} | {EXPONENT[name]} | {e_t:.2f} | {e_b:.2f} |")
    for n in (10**8, 10**9):
        f = n / n0
        print(f"\n**n = {n:.0e}** (lists ≈ {round(math.sqrt(n)):,} of ≈ {round(math.sqrt(n)):,} rows)\n")
        print("| stage | core-hours | TB read | TB written |")
        print("| --- | --- | --- | --- |")
        total_spread = total_driver = 0.0
        for name, (core_s, rd, wr) in per.items():
            ch = core_s * f ** EXPONENT[name] / 3600
            if name in DRIVER:
                total_driver += ch
            else:
                total_spread += ch
            fb = 1.0 if name == "fit" else f  # the fit's sample is a fixed 100k rows
            print(f"| {name} | {ch:,.0f} | {rd * fb / 1e12:.2f} | {wr * fb / 1e12:.2f} |")
        print(f"| **total** | {total_spread + total_driver:,.0f} | | |")
        for nodes in (10, 50, 100):
            hours = total_spread / (nodes * args.cores_per_node) + total_driver
            print(f"\n- {nodes} nodes × {args.cores_per_node} cores: ≈ {hours:,.1f} h wall (driver stages {total_driver:,.1f} h)", end="")
        print()


if __name__ == "__main__":
    main()

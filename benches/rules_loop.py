#!/usr/bin/env python3
"""Scores issue 18's loop check: `simulate` with and without `--rules`, per round, the done share
((human labels + auto-labels) / pool) and the realized precision of every auto-label source
(model, duplicate, rules) on the hidden labels.

Usage:
    python benches/rules_loop.py DATA.parquet WITHOUT_DIR WITH_DIR [--target 0.95] [--min 30]

Each DIR is the output of ``labelwise simulate`` (split.csv, curve.csv, autolabels.csv). Prints one
row per round and the round-10 (last round) comparison; exits 0 (the check's verdict is printed,
not enforced: it is a measurement).
"""
from __future__ import annotations

import argparse
import csv
import os
from collections import defaultdict

import pyarrow.parquet as pq


def truth_of(path: str) -> dict[str, str]:
    t = pq.read_table(path, columns=["id", "label"])
    return {str(i): str(l) for i, l in zip(t.column("id").to_pylist(), t.column("label").to_pylist())}


def pool_size(sim: str) -> int:
    with open(os.path.join(sim, "split.csv")) as f:
        return sum(1 for r in csv.DictReader(f) if r["split"] == "pool")


def labels_per_round(sim: str) -> dict[int, int]:
    with open(os.path.join(sim, "curve.csv")) as f:
        return {int(r["round"]): int(r["labels"]) for r in csv.DictReader(f)}


def autolabels(sim: str, truth: dict[str, str]) -> dict[int, dict[str, list[int]]]:
    """Per round, per source: [auto-labels, right]."""
    out: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    with open(os.path.join(sim, "autolabels.csv")) as f:
        for r in csv.DictReader(f):
            cell = out[int(r["round"])][r["source"]]
            cell[0] += 1
            cell[1] += int(truth[r["id"]] == r["label"])
    return out


def summarize(sim: str, truth: dict[str, str]) -> tuple[dict[int, float], list[tuple[int, str, int, float]]]:
    pool = pool_size(sim)
    labels = labels_per_round(sim)
    auto = autolabels(sim, truth)
    done = {r: (n + sum(c[0] for c in auto.get(r, {}).values())) / pool for r, n in labels.items()}
    cells = [(r, s, c[0], c[1] / c[0]) for r, by in sorted(auto.items()) for s, c in sorted(by.items())]
    return done, cells


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("without")
    ap.add_argument("with_rules")
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--min", type=int, default=30, help="cells with fewer auto-labels are not scored")
    a = ap.parse_args()
    truth = truth_of(a.data)
    d0, c0 = summarize(a.without, truth)
    d1, c1 = summarize(a.with_rules, truth)
    print("round  done_without  done_with_rules  gain")
    for r in sorted(d0):
        print(f"{r:5d}  {d0[r]:.3f}         {d1.get(r, float('nan')):.3f}            {d1.get(r, 0) - d0[r]:+.3f}")
    last = max(d0)
    print(f"last round {last}: done without {d0[last]:.3f}, with rules {d1[last]:.3f}, "
          f"gain {d1[last] - d0[last]:+.3f} (bar +0.05)")
    for name, cells in (("without", c0), ("with rules", c1)):
        scored = [c for c in cells if c[2] >= a.min]
        ok = sum(1 for c in scored if c[3] >= a.target)
        worst = min((c[3] for c in scored), default=float("nan"))
        by_source = defaultdict(list)
        for c in scored:
            by_source[c[1]].append(c[3])
        detail = ", ".join(f"{s}: {len(v)} cells, min {min(v):.3f}" for s, v in sorted(by_source.items()))
        print(f"{name}: (round, source) cells with >= {a.min} auto-labels at precision >= {a.target}: "
              f"{ok}/{len(scored)}, min {worst:.3f} [{detail}]")


if __name__ == "__main__":
    main()

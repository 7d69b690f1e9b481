#!/usr/bin/env python3
"""Oracle and scoring for the labeling loop (issue 19).

Given a dataset parquet (id, text, label, split, embedding) and the human-labeled ids of every
round, the oracle fits scikit-learn ``LogisticRegression(C=10)`` on exactly those human labels,
sorts the rest of the pool by the top-two probability margin and keeps the largest prefix whose
*realized* precision on the hidden labels is still >= the target (0.95). Its done share is
(human + auto) / pool. It is an upper reference no valid certificate can reach: it chooses the
threshold by looking at the hidden labels.

The ceiling is what a valid certificate could reach from an ideal validation set: ``m`` items
drawn uniformly at random from the oracle's own region, a one-sided Clopper-Pearson fixed-sequence
scan at the stated confidence (several pre-registered scan designs, the best on average kept:
see ``cp_scan``). ``m`` defaults to
the number of human labels (the issue's "validation set of the same size").

Usage:
    python benches/loop_oracle.py DATA.parquet SIM_DIR [SIM_DIR ...] [--target 0.95] [--ceiling]

SIM_DIR is the output of ``labelwise simulate`` (split.csv: id,split with pool/test/unused;
selections.csv: round,id; curve.csv: round,labels,...,auto_coverage,auto_precision; optionally
autolabels.csv: round,id,label,source). It prints, per round, labelwise's done share next to the
oracle's (and the ceiling's with --ceiling).
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from dataclasses import dataclass
from typing import Optional

import numpy as np
import numpy.typing as npt
import pyarrow.parquet as pq
from scipy.stats import beta as beta_dist
from sklearn.linear_model import LogisticRegression

FloatArr = npt.NDArray[np.float64]
IntArr = npt.NDArray[np.int64]


@dataclass
class Dataset:
    ids: list[str]
    index: dict[str, int]
    y: IntArr
    classes: list[str]
    emb: npt.NDArray[np.float32]
    split: list[str]


def load_dataset(path: str) -> Dataset:
    t = pq.read_table(path, columns=["id", "label", "split", "embedding"])
    ids = [str(v) for v in t.column("id").to_pylist()]
    labels = [str(v) for v in t.column("label").to_pylist()]
    classes = sorted(set(labels))
    cidx = {c: i for i, c in enumerate(classes)}
    y = np.array([cidx[v] for v in labels], dtype=np.int64)
    col = t.column("embedding").combine_chunks()
    dim = len(col[0])
    emb = np.asarray(col.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, dim)
    return Dataset(ids, {v: i for i, v in enumerate(ids)}, y, classes, emb,
                   [str(v) for v in t.column("split").to_pylist()])


def fit_lr(x: npt.NDArray[np.float32], y: IntArr, n_classes: int) -> "ProbaModel":
    """LogisticRegression(C=10) on the given labels; probabilities over all classes (classes never
    labeled get probability 0)."""
    present = np.unique(y)
    if len(present) == 1:
        return ProbaModel(None, present, n_classes)
    m = LogisticRegression(C=10.0, max_iter=1000)
    m.fit(x, y)
    return ProbaModel(m, present, n_classes)


class ProbaModel:
    def __init__(self, m: Optional[LogisticRegression], present: IntArr, n_classes: int) -> None:
        self.m, self.present, self.n_classes = m, present, n_classes

    def proba(self, x: npt.NDArray[np.float32]) -> FloatArr:
        out = np.zeros((x.shape[0], self.n_classes))
        if self.m is None:
            out[:, self.present[0]] = 1.0
        else:
            out[:, self.m.classes_] = self.m.predict_proba(x)
        return out


def margin_pred(p: FloatArr) -> tuple[FloatArr, IntArr, FloatArr]:
    """(top-two margin, argmax, top probability) per row."""
    part = np.partition(p, -2, axis=1)
    top1, top2 = part[:, -1], part[:, -2]
    return top1 - top2, np.argmax(p, axis=1), top1


def oracle_prefix(margin: FloatArr, correct: npt.NDArray[np.bool_], target: float) -> int:
    """Largest k such that the k most confident predictions have realized precision >= target."""
    order = np.argsort(-margin, kind="stable")
    c = np.cumsum(correct[order])
    k = np.arange(1, len(order) + 1)
    ok = np.nonzero(c >= target * k - 1e-9)[0]
    return int(ok[-1] + 1) if len(ok) else 0


def cp_lower(successes: int, n: int, confidence: float) -> float:
    """One-sided Clopper-Pearson lower bound on a success rate."""
    if n == 0 or successes == 0:
        return 0.0
    return float(beta_dist.ppf(1.0 - confidence, successes, n - successes + 1))


def cp_scan(margin_val: FloatArr, correct_val: npt.NDArray[np.bool_], target: float,
            confidence: float, design: str = "top") -> float:
    """A valid Clopper-Pearson threshold choice on a uniform validation sample; returns the
    lowest margin threshold certified (inf when none). Thresholds are the sample's own margins.
    Designs (all fixed before the labels are seen):
    - "top": fixed sequence from the most confident down, first test where a perfect record
      could pass, stop at the first failure;
    - "q25": the same fixed sequence, but starting at a quarter of the sample, steps of 1/40;
    - "bonf10" / "bonf20": G coverage levels of the sample, each tested at alpha/G, the largest
      passing one kept (a union bound, no stopping: survives errors among the top few)."""
    order = np.argsort(-margin_val, kind="stable")
    m, c = margin_val[order], correct_val[order]
    n = len(m)
    cum = np.cumsum(c)
    if design.startswith("bonf"):
        g = int(design[4:])
        best = np.inf
        for j in range(1, g + 1):
            k = int(n * j / g)
            if k > 0 and cp_lower(int(cum[k - 1]), k, 1 - (1 - confidence) / g) >= target:
                best = float(m[k - 1])
        return best
    if design == "top":
        ks = list(range(int(np.ceil(np.log(1 - confidence) / np.log(target))), n + 1))
    else:
        ks = list(range(max(1, n // 4), n + 1, max(1, n // 40)))
    best = np.inf
    for k in ks:
        if k > n:
            break
        if cp_lower(int(cum[k - 1]), k, confidence) >= target:
            best = float(m[k - 1])
        else:
            break
    return best


CEILING_DESIGNS = ("top", "q25", "bonf10", "bonf20")


@dataclass
class OracleResult:
    n_human: int
    n_pool: int
    n_auto: int
    done_share: float
    threshold: float
    ceiling_done: Optional[float] = None


def oracle_round(ds: Dataset, pool: IntArr, human: IntArr, target: float = 0.95,
                 ceiling_m: Optional[int] = None, confidence: float = 0.95,
                 ceiling_reps: int = 20, seed: int = 0) -> OracleResult:
    """Oracle (and optionally ceiling) done share for one round's human labels."""
    human_set = set(human.tolist())
    unl = np.array([i for i in pool if i not in human_set], dtype=np.int64)
    model = fit_lr(ds.emb[human], ds.y[human], len(ds.classes))
    p = model.proba(ds.emb[unl])
    mg, pred, _ = margin_pred(p)
    correct = pred == ds.y[unl]
    k = oracle_prefix(mg, correct, target)
    order = np.argsort(-mg, kind="stable")
    thr = float(mg[order[k - 1]]) if k else float("inf")
    res = OracleResult(len(human), len(pool), k, (len(human) + k) / len(pool), thr)
    if ceiling_m is not None and k > 0:
        rng = np.random.default_rng(seed)
        region = order[:k]
        # The best design by its mean over draws (each design alone is a valid certificate).
        dones: dict[str, list[float]] = {d: [] for d in CEILING_DESIGNS}
        for _ in range(ceiling_reps):
            val = rng.choice(region, size=min(ceiling_m, k), replace=False)
            for d in CEILING_DESIGNS:
                t = cp_scan(mg[val], correct[val], target, confidence, d)
                n_auto = int(np.sum(mg >= t)) if np.isfinite(t) else 0
                dones[d].append((len(human) + n_auto) / len(pool))
        res.ceiling_done = max(float(np.mean(v)) for v in dones.values())
    elif ceiling_m is not None:
        res.ceiling_done = len(human) / len(pool)
    return res


@dataclass
class SimRun:
    pool: IntArr
    rounds: list[IntArr]  # cumulative human-labeled rows after each round
    curve: list[dict[str, str]]
    autolabels: Optional[dict[int, list[tuple[int, str, str]]]]


def read_sim(ds: Dataset, sim_dir: str) -> SimRun:
    def rows(name: str) -> list[dict[str, str]]:
        with open(os.path.join(sim_dir, name), newline="") as f:
            return list(csv.DictReader(f))

    def row_of(idv: str, name: str, line: int) -> int:
        if idv not in ds.index:
            sys.exit(f"{os.path.join(sim_dir, name)} row {line}: id {idv!r} not in the data")
        return ds.index[idv]

    pool = np.array([row_of(r["id"], "split.csv", i + 2) for i, r in enumerate(rows("split.csv"))
                     if r["split"] == "pool"], dtype=np.int64)
    sel = rows("selections.csv")
    by_round: dict[int, list[int]] = {}
    for i, r in enumerate(sel):
        by_round.setdefault(int(r["round"]), []).append(row_of(r["id"], "selections.csv", i + 2))
    cum: list[int] = []
    rounds = []
    for rnd in sorted(by_round):
        cum += by_round[rnd]
        rounds.append(np.array(cum, dtype=np.int64))
    auto: Optional[dict[int, list[tuple[int, str, str]]]] = None
    if os.path.exists(os.path.join(sim_dir, "autolabels.csv")):
        auto = {}
        for i, r in enumerate(rows("autolabels.csv")):
            auto.setdefault(int(r["round"]), []).append(
                (row_of(r["id"], "autolabels.csv", i + 2), r["label"], r.get("source", "")))
    return SimRun(pool, rounds, rows("curve.csv"), auto)


def labelwise_done(ds: Dataset, run: SimRun, rnd: int) -> tuple[float, Optional[float], int]:
    """(done share, realized precision of the auto-labels, n auto) of labelwise at round rnd."""
    n_pool, n_h = len(run.pool), len(run.rounds[rnd - 1])
    if run.autolabels is not None:
        items = run.autolabels.get(rnd, [])
        ok = sum(ds.classes[ds.y[i]] == lab for i, lab, _ in items)
        return (n_h + len(items)) / n_pool, (ok / len(items) if items else None), len(items)
    row = next(r for r in run.curve if int(r["round"]) == rnd)
    cov = float(row["auto_coverage"])
    n_auto = int(round(cov * (n_pool - n_h)))
    prec = float(row["auto_precision"]) if row.get("auto_precision") else None
    return (n_h + n_auto) / n_pool, prec, n_auto


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("sim_dirs", nargs="+")
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--confidence", type=float, default=0.95)
    ap.add_argument("--ceiling", action="store_true", help="also the ideal-validation-set ceiling")
    ap.add_argument("--rounds", default="", help="comma-separated rounds to score (default: all)")
    a = ap.parse_args()
    ds = load_dataset(a.data)
    print("run,round,labels,labelwise_done,labelwise_auto,labelwise_precision,oracle_done,oracle_auto,"
          "ratio" + (",ceiling_done" if a.ceiling else ""))
    for d in a.sim_dirs:
        run = read_sim(ds, d)
        want = {int(v) for v in a.rounds.split(",") if v} or set(range(1, len(run.rounds) + 1))
        for rnd in sorted(want):
            human = run.rounds[rnd - 1]
            o = oracle_round(ds, run.pool, human, a.target,
                             ceiling_m=len(human) if a.ceiling else None, confidence=a.confidence)
            lw, prec, n_auto = labelwise_done(ds, run, rnd)
            line = (f"{os.path.basename(d.rstrip('/'))},{rnd},{len(human)},{lw:.3f},{n_auto},"
                    f"{'' if prec is None else f'{prec:.3f}'},{o.done_share:.3f},{o.n_auto},"
                    f"{lw / o.done_share:.2f}")
            if a.ceiling:
                line += f",{o.ceiling_done:.3f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()

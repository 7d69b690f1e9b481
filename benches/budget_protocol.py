#!/usr/bin/env python3
"""Issue 15's budget protocol: `budget`'s projections against what the simulated loop then did.

For each `simulate` run (default strategy, batch ≈ 1% of the pool, --rounds 60, seeds 0-2; see
benches/budget_protocol.sh) and each checkpoint round r, the state the simulation had after round
r is rebuilt from its outputs — the pool rows (split.csv role `pool`, in file order, as the
simulation's pool), the labels of every pick of rounds ≤ r (selections.csv, true labels from the
dataset) and the history `plan` would have kept (round-NNNN.csv picks with reasons and audit
propensities, round-NNNN.json with the coverage the simulation measured before that round's
picks, i.e. curve.csv's row r−1) — and `budget` is run on it. Its budget.csv and summary.json
are then compared with curve.csv rows r+1, r+2, r+5 and r+10 (holdout accuracy, auto-label
coverage), with the items the loop spent until it was done (cost to finish), and its stop advice
with the next 5 rounds and with small-text's stopping criteria on the same runs.

    python3 benches/budget_protocol.py run DATASETS_DIR SIM_DIR WORK_DIR      # budget runs
    python3 benches/budget_protocol.py kappa DATASETS_DIR SIM_DIR WORK_DIR    # small-text
    python3 benches/budget_protocol.py report WORK_DIR                        # tables
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

BATCH = {"banking77": 100, "clinc150": 182, "agnews": 61}
CHECKPOINTS = [3, 5, 8]
# Further rounds budget is asked at, for the stop advice only (the first "stop" ends the scan).
STOP_SCAN = [10, 15, 20, 30]
HORIZONS = [1, 2, 5, 10]


@dataclass
class Sim:
    """One simulate run's outputs."""

    name: str
    dataset: str
    seed: int
    batch: int
    curve: list[dict[str, float]]
    picks: list[tuple[int, str, str]]  # (round, id, reason)
    roles: list[str]  # per input row
    n_pool: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self, r: int) -> dict[str, float] | None:
        """curve.csv's row of round r (1-based), if the run got there."""
        return self.curve[r - 1] if 1 <= r <= len(self.curve) else None


def load_sim(sim_dir: Path) -> Sim:
    name = sim_dir.name
    dataset, seed = name.rsplit("-s", 1)
    with open(sim_dir / "curve.csv") as f:
        curve = [{k: float(v) if v else float("nan") for k, v in row.items()} for row in csv.DictReader(f)]
    with open(sim_dir / "selections.csv") as f:
        picks = [(int(r["round"]), r["id"], r["reason"]) for r in csv.DictReader(f)]
    with open(sim_dir / "split.csv") as f:
        roles = [r["split"] for r in csv.DictReader(f)]
    s = Sim(name, dataset, int(seed), BATCH[dataset], curve, picks, roles)
    s.n_pool = sum(1 for r in roles if r == "pool")
    return s


def pool_hash(ids: list[str]) -> str:
    """store::history::pool_fingerprint's hash: blake3 over the sorted ids, each length-prefixed."""
    import blake3

    h = blake3.blake3()
    for i in sorted(ids, key=lambda s: s.encode()):
        b = i.encode()
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def prepare_pool(data: Path, sim: Sim, work: Path) -> tuple[Path, list[str], dict[str, str]]:
    """The simulation's pool as its own Parquet file (ids and embeddings, no labels)."""
    table = pq.read_table(data / f"{sim.dataset}.parquet", columns=["id", "label", "embedding"])
    mask = pa.array([r == "pool" for r in sim.roles])
    pool = table.filter(mask)
    path = work / f"pool-{sim.name}.parquet"
    if not path.exists():
        pq.write_table(pool.select(["id", "embedding"]), path)
    ids = pool.column("id").to_pylist()
    truth = dict(zip(table.column("id").to_pylist(), table.column("label").to_pylist()))
    return path, ids, truth


def write_state(sim: Sim, r: int, ids: list[str], truth: dict[str, str], dest: Path, h: str) -> tuple[Path, Path]:
    """Labels and history after round r (see the module docs)."""
    dest.mkdir(parents=True, exist_ok=True)
    labels = dest / "labels.csv"
    with open(labels, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label"])
        for rd, i, _ in sim.picks:
            if rd <= r:
                w.writerow([i, truth[i]])
    hist = dest / "history"
    hist.mkdir(exist_ok=True)
    labeled_before = 0
    audits_before = 0
    for k in range(1, r + 1):
        rows = [(i, reason) for rd, i, reason in sim.picks if rd == k]
        n_aud = sum(1 for _, reason in rows if reason == "audit")
        frame = sim.n_pool - labeled_before - (len(rows) - n_aud)
        with open(hist / f"round-{k:04d}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "reason", "propensity"])
            for i, reason in rows:
                w.writerow([i, reason, f"{n_aud / frame:.12g}" if reason == "audit" else "1"])
        prev = sim.row(k - 1)
        figures = None
        if prev is not None:
            figures = {
                "coverage": prev["auto_coverage"],
                "model": "logistic",
                "n_evidence": audits_before,
                "n_labeled": int(prev["labels"]),
                "threshold": None,
                "above": None,
                "evidence_accuracy": None,
            }
        rec = {"round": k, "n_items": len(ids), "pool_hash": h, "figures": figures}
        (hist / f"round-{k:04d}.json").write_text(json.dumps(rec))
        labeled_before += len(rows)
        audits_before += n_aud
    return labels, hist


def run_budget(binary: str, pool: Path, sim: Sim, r: int, ids: list[str], truth: dict[str, str], work: Path, h: str) -> dict[str, Any]:
    dest = work / sim.name / f"r{r:02d}"
    out = dest / "out"
    if not (out / "summary.json").exists():
        labels, hist = write_state(sim, r, ids, truth, dest, h)
        t = time.time()
        subprocess.run(
            [binary, "budget", str(pool), "--labels", str(labels), "--history", str(hist),
             "--batch", str(sim.batch), "--seed", str(sim.seed), "--out", str(out),
             "--cache", str(work / "cache"), "--quiet"],
            check=True,
        )
        (dest / "seconds").write_text(f"{time.time() - t:.1f}")
    s = json.loads((out / "summary.json").read_text())
    return {"round": r, "budget": s["budget"], "seconds": float((dest / "seconds").read_text())}


def cmd_run(args: argparse.Namespace) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    for sim_dir in sorted(Path(args.sims).iterdir()):
        if not (sim_dir / "curve.csv").exists() or (args.only and sim_dir.name not in args.only):
            continue
        sim = load_sim(sim_dir)
        pool, ids, truth = prepare_pool(Path(args.data), sim, work)
        h = pool_hash(ids)
        results = []
        for r in CHECKPOINTS + (STOP_SCAN if args.stop_scan else []):
            if sim.row(r) is None:
                break
            res = run_budget(args.bin, pool, sim, r, ids, truth, work, h)
            results.append(res)
            print(f"{sim.name} r{r} {res['seconds']:.1f}s stop={res['budget']['advice']['stop']}", flush=True)
            if r > max(CHECKPOINTS) and res["budget"]["advice"]["stop"]:
                break
        (work / sim.name / "results.json").write_text(json.dumps(results))


def cmd_kappa(args: argparse.Namespace) -> None:
    """small-text's KappaAverage (Bloodgood & Vijay-Shanker's stabilizing predictions) and
    ClassificationChange on the same runs: the yardstick (LogisticRegression C=10) refitted on
    each round's labels, predicting a fixed random stop set of 1,000 pool rows."""
    from sklearn.linear_model import LogisticRegression
    from small_text.stopping_criteria import ClassificationChange, KappaAverage

    work = Path(args.work)
    for sim_dir in sorted(Path(args.sims).iterdir()):
        if not (sim_dir / "curve.csv").exists() or (work / sim_dir.name / "kappa.json").exists():
            continue
        sim = load_sim(sim_dir)
        table = pq.read_table(Path(args.data) / f"{sim.dataset}.parquet", columns=["id", "label", "embedding"])
        ids = table.column("id").to_pylist()
        emb = np.asarray(table.column("embedding").combine_chunks().flatten()).reshape(len(ids), -1)
        labels = table.column("label").to_pylist()
        classes = sorted(set(labels))
        y = np.array([classes.index(lab) for lab in labels])
        row = {i: k for k, i in enumerate(ids)}
        pool_rows = [k for k, r in enumerate(sim.roles) if r == "pool"]
        stop_set = np.random.default_rng(sim.seed).choice(pool_rows, size=min(1000, len(pool_rows)), replace=False)
        crit = {"kappa_average": KappaAverage(len(classes)), "classification_change": ClassificationChange(len(classes))}
        first: dict[str, int | None] = {k: None for k in crit}
        for r in range(1, min(len(sim.curve), args.max_rounds) + 1):
            train = [row[i] for rd, i, _ in sim.picks if rd <= r]
            model = LogisticRegression(C=10.0, max_iter=100).fit(emb[train], y[train])
            pred = model.predict(emb[stop_set])
            for k, c in crit.items():
                if c.stop(predictions=pred) and first[k] is None:
                    first[k] = r
            if all(v is not None for v in first.values()):
                break
        (work / sim.name).mkdir(parents=True, exist_ok=True)
        (work / sim.name / "kappa.json").write_text(json.dumps(first))
        print(sim.name, first, flush=True)


def realized_finish(sim: Sim, r: int) -> tuple[float, int | None]:
    """Items (labels + verifications) the loop spent after round r until what was left for humans
    fitted in one batch (that last batch counted as the items left), and the round; with no such
    round, the items spent through the last round plus what was left then (round None)."""
    start = sim.row(r)
    assert start is not None
    for k in range(r, len(sim.curve) + 1):
        row = sim.row(k)
        assert row is not None
        left = (sim.n_pool - row["labels"]) * (1.0 - row["auto_coverage"])
        if left <= sim.batch:
            return row["labels"] - start["labels"] + left, k + (1 if left > 0 else 0)
    last = sim.curve[-1]
    left = (sim.n_pool - last["labels"]) * (1.0 - last["auto_coverage"])
    return last["labels"] - start["labels"] + left, None


def pct(xs: list[bool]) -> str:
    return f"{sum(xs)}/{len(xs)} ({100.0 * sum(xs) / max(1, len(xs)):.0f}%)" if xs else "–"


def load_results(run_dir: Path) -> list[dict[str, Any]]:
    """Every budget run of one simulation, by round (also those of an interrupted scan)."""
    out = []
    for d in sorted(run_dir.glob("r*/out/summary.json")):
        r = int(d.parent.parent.name[1:])
        secs = d.parent.parent / "seconds"
        out.append({"round": r, "budget": json.loads(d.read_text())["budget"],
                    "seconds": float(secs.read_text()) if secs.exists() else float("nan")})
    return sorted(out, key=lambda x: x["round"])


def cmd_report(args: argparse.Namespace) -> None:
    work = Path(args.work)
    sims = {p.name: load_sim(Path(args.sims) / p.name) for p in sorted(work.iterdir()) if list(p.glob("r*/out/summary.json"))}
    cells: list[dict[str, Any]] = []
    for name, sim in sims.items():
        for res in load_results(work / name):
            r = res["round"]
            b = res["budget"]
            for row, m in zip(b["projection"], HORIZONS):
                real = sim.row(r + m)
                if real is None:
                    continue
                cells.append({
                    "sim": name, "dataset": sim.dataset, "r": r, "m": m,
                    "acc": row["projected_accuracy"], "acc_lo": row["accuracy_low"], "acc_hi": row["accuracy_high"],
                    "acc_real": real["holdout_accuracy"],
                    "cov": row["projected_auto_coverage"], "cov_lo": row["coverage_low"], "cov_hi": row["coverage_high"],
                    "cov_modes": row.get("coverage_by_mode"), "cov_real": real["auto_coverage"],
                    "cov_now": b["coverage_trend"]["points"][-1][1], "cov_sim_now": sim.row(r)["auto_coverage"],  # type: ignore[index]
                })
    (work / "cells.json").write_text(json.dumps(cells))
    main = [c for c in cells if c["r"] in CHECKPOINTS]
    out = []
    out.append("| horizon | cells | accuracy within ±0.03 | 80% interval holds | mean error | coverage within ±0.10 | coverage interval holds |")
    out.append("| --- | --- | --- | --- | --- | --- | --- |")
    for m in HORIZONS:
        cs = [c for c in main if c["m"] == m and c["acc"] is not None]
        out.append(
            f"| +{m}× | {len(cs)} | {pct([abs(c['acc'] - c['acc_real']) <= 0.03 for c in cs])} | "
            f"{pct([c['acc_lo'] <= c['acc_real'] <= c['acc_hi'] for c in cs])} | "
            f"{np.mean([c['acc'] - c['acc_real'] for c in cs]) if cs else float('nan'):+.3f} | "
            f"{pct([abs(c['cov'] - c['cov_real']) <= 0.10 for c in cs])} | "
            f"{pct([c['cov_lo'] <= c['cov_real'] <= c['cov_hi'] for c in cs])} |"
        )
    out.append("")
    out.append("Per dataset (all horizons +1/+2/+5, rounds 3/5/8): accuracy within ±0.03; coverage within ±0.10 at +2/+5")
    for ds in BATCH:
        a = [abs(c["acc"] - c["acc_real"]) <= 0.03 for c in main if c["dataset"] == ds and c["m"] in (1, 2, 5)]
        v = [abs(c["cov"] - c["cov_real"]) <= 0.10 for c in main if c["dataset"] == ds and c["m"] in (2, 5)]
        out.append(f"- {ds}: accuracy {pct(a)}, coverage {pct(v)}")
    modes = [c for c in main if c["m"] in (2, 5) and c["cov_modes"]]
    if modes:
        out.append("")
        out.append("Coverage within ±0.10 at +2/+5 by way of rising: " + ", ".join(
            f"{n} {pct([abs(c['cov_modes'][k] - c['cov_real']) <= 0.10 for c in modes])}"
            for k, n in enumerate(["law", "evidence", "both"])))
        out.append("Budget's coverage now vs the simulation's (rounds 3/5/8): mean |diff| "
                   f"{np.mean([abs(c['cov_now'] - c['cov_sim_now']) for c in main if c['m'] == 1]):.3f}")
    # Cost to finish after round 5.
    out.append("")
    out.append("| run | projected items to finish (80% interval) | rounds | realized items | realized round | within ±30% |")
    out.append("| --- | --- | --- | --- | --- | --- |")
    ok = []
    for name, sim in sims.items():
        res = [x for x in load_results(work / name) if x["round"] == 5]
        if not res:
            continue
        f = res[0]["budget"]["finish"]
        proj = f["human_labels"] + f["verifications"]
        real, rd = realized_finish(sim, 5)
        good = abs(proj - real) <= 0.3 * real
        ok.append(good)
        out.append(f"| {name} | {proj:.0f} ({f['low']:.0f}–{f['high']:.0f}) | {f['rounds']} | {real:.0f} | {rd if rd else '>' + str(len(sim.curve))} | {'yes' if good else 'no'} |")
    out.append(f"\nCost to finish within ±30%: {pct(ok)}")
    # Stop advice.
    out.append("")
    out.append("| run | budget first says stop (round, labels) | stated gain per 100 (accuracy, coverage, coverage's high end) | realized per 100 over the next 5 rounds | holds | KappaAverage stops | ClassificationChange stops |")
    out.append("| --- | --- | --- | --- | --- | --- | --- |")
    holds = []
    for name, sim in sims.items():
        kappa = {"kappa_average": "not run", "classification_change": "not run"}
        if (work / name / "kappa.json").exists():
            got = json.loads((work / name / "kappa.json").read_text())
            kappa = {k: (f"round {v}" if v is not None else f"not by round {args.max_rounds}") for k, v in got.items()}
        res = load_results(work / name)
        stop = next((x for x in res if x["budget"]["advice"]["stop"]), None)
        if stop is None:
            out.append(f"| {name} | never (asked up to round {res[-1]['round']}) | | | | {kappa.get('kappa_average')} | {kappa.get('classification_change')} |")
            continue
        r = stop["round"]
        a = stop["budget"]["advice"]
        now, later = sim.row(r), sim.row(r + 5)
        if later is None or now is None:
            out.append(f"| {name} | {r} | | beyond the run | | {kappa.get('kappa_average')} | {kappa.get('classification_change')} |")
            continue
        per = 100.0 / (later["labels"] - now["labels"]) if later["labels"] > now["labels"] else 0.0
        ga = (later["holdout_accuracy"] - now["holdout_accuracy"]) * per
        gc = (later["auto_coverage"] - now["auto_coverage"]) * per
        good = ga < a["accuracy_threshold"] and gc < a["coverage_threshold"]
        # Absent before session 14's advice (which stops on it too).
        high = f"{a['coverage_gain_high_per_100']:.4f}" if a.get("coverage_gain_high_per_100") is not None else "–"
        holds.append(good)
        out.append(f"| {name} | {r} ({int(now['labels'])}) | {a['accuracy_gain_per_100']:.4f}, {a['coverage_gain_per_100']:.4f}, {high} | {ga:.4f}, {gc:.4f} | {'yes' if good else 'no'} | {kappa.get('kappa_average')} | {kappa.get('classification_change')} |")
    out.append(f"\nStop advice holds: {pct(holds)}")
    secs = [x["seconds"] for name in sims for x in load_results(work / name)]
    out.append(f"\nbudget runs: {len(secs)}, median {np.median(secs):.1f} s, max {max(secs):.1f} s")
    text = "\n".join(out)
    (work / "report.md").write_text(text + "\n")
    print(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("run", "kappa"):
        s = sub.add_parser(name)
        s.add_argument("data")
        s.add_argument("sims")
        s.add_argument("work")
        s.add_argument("--bin", default=os.environ.get("BIN", "target/release/labelwise"))
        s.add_argument("--max-rounds", type=int, default=40)
        s.add_argument("--stop-scan", action="store_true", help="also ask budget at STOP_SCAN rounds until it says stop")
        s.add_argument("--only", nargs="*", help="only these runs (e.g. banking77-s0)")
    s = sub.add_parser("report")
    s.add_argument("sims")
    s.add_argument("work")
    s.add_argument("--max-rounds", type=int, default=40, help="the kappa run's --max-rounds")
    a = p.parse_args()
    {"run": cmd_run, "kappa": cmd_kappa, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Python peers and the yardstick check for the active-learning benchmark (issue 7).

Our `simulate` writes, per run, `split.csv` (every row's role: pool / test / unused),
`selections.csv` (round, id) and `curve.csv` (our yardstick's accuracy per round). This script
uses those files so the peers run on exactly our pool/test rows and are scored the same way.

Three modes:

  check   Refits scikit-learn's LogisticRegression(C=10) on each round's labeled set of our
          simulate runs and compares its test accuracy with our curve.csv (our own L-BFGS
          softmax, alpha = 0.1). Once with scikit-learn's defaults (max_iter=100) and once with
          max_iter=10000 (converged).

            python benches/peers/al_peer.py check DATA.parquet RUN_DIR [RUN_DIR ...]

  run     Runs scikit-activeml strategies (TypiClust with its defaults k=5 and k-means, random,
          margin with the same LogisticRegression(C=10)) on the pool/test split of our runs
          (one split.csv per seed), B items per round for R rounds from no labels, scoring every
          round with LogisticRegression(C=10) on the test rows. Reports AULC (mean accuracy over
          rounds 1..R) and selection seconds per round. --json writes every curve.

            python benches/peers/al_peer.py run DATA.parquet --splits '/tmp/q7/agnews-hybrid-s{seed}' \
                --seeds 0 1 2 --batch 20 --rounds 15 --strategies typiclust random margin \
                [--json out.json] [--max-iter 100] [--n-init 10] [--gamma 1]

          Strategies: typiclust, maxherding (RBF kernel, --gamma), random, margin, entropy.
          Margin/entropy pick at random in round 1 (no labels, no model). --n-init sets
          TypiClust's k-means restarts (scikit-learn >= 1.4 uses 1 for k-means++).

  sksplit Writes, per seed, the split the Python planners most likely used (scikit-learn's
          train_test_split(test_size=0.2, stratify=labels, random_state=seed)) as a copy of
          DATA with its `split` column set to train/test (simulate then uses it as the pool/test
          split) and as OUT/split-s{seed}/split.csv (for `run --splits`).

            python benches/peers/al_peer.py sksplit DATA.parquet OUT --seeds 0 1 2

Needs: scikit-learn, scikit-activeml, pyarrow, numpy (e.g. python3 -m venv /tmp/lw-al-venv &&
/tmp/lw-al-venv/bin/pip install scikit-learn scikit-activeml pyarrow). Single-threaded BLAS is
advised on a shared machine: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1.
"""

import argparse
import csv
import json
import os
import sys
import time
import warnings

import numpy as np
import pyarrow.parquet as pq
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

warnings.filterwarnings("ignore", category=ConvergenceWarning)


def load(data_path):
    """Ids, integer labels (classes sorted by name) and float32 embeddings of every row."""
    t = pq.read_table(data_path, columns=["id", "label", "embedding"])
    ids = t.column("id").to_pylist()
    names = t.column("label").to_pylist()
    classes = sorted(set(names))
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[n] for n in names], dtype=np.int64)
    emb = t.column("embedding").combine_chunks()
    x = np.asarray(emb.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    x = x.reshape(len(ids), -1)
    return ids, y, x, classes


def read_split(run_dir, id_index):
    """Pool and test row indices (input order) from a run's split.csv."""
    pool, test = [], []
    with open(os.path.join(run_dir, "split.csv"), newline="") as f:
        for row in csv.DictReader(f):
            i = id_index[row["id"]]
            if row["split"] == "pool":
                pool.append(i)
            elif row["split"] == "test":
                test.append(i)
    return np.array(sorted(pool)), np.array(sorted(test))


def yardstick_accuracy(x, y, train, test, max_iter=100):
    """Test accuracy of LogisticRegression(C=10) fitted on `train` rows (one class: predict it)."""
    ytr = y[train]
    if len(np.unique(ytr)) < 2:
        pred = np.full(len(test), ytr[0] if len(ytr) else 0)
    else:
        model = LogisticRegression(C=10, max_iter=max_iter).fit(x[train], ytr)
        pred = model.predict(x[test])
    return float(np.mean(pred == y[test]))


def check(args):
    ids, y, x, _ = load(args.data)
    id_index = {s: i for i, s in enumerate(ids)}
    print("| run | rounds | AULC ours | AULC sklearn max_iter=100 | AULC sklearn max_iter=10000 "
          "| max abs round diff (100 / 10000) |")
    print("|---|---|---|---|---|---|")
    totals = {"ours": [], "sk100": [], "sk10k": []}
    for run in args.runs:
        pool, test = read_split(run, id_index)
        with open(os.path.join(run, "selections.csv"), newline="") as f:
            sel = [(int(r["round"]), id_index[r["id"]]) for r in csv.DictReader(f)]
        with open(os.path.join(run, "curve.csv"), newline="") as f:
            curve = [(int(r["round"]), float(r["accuracy"])) for r in csv.DictReader(f)]
        assert set(i for _, i in sel) <= set(pool.tolist()), f"{run}: a pick outside the pool"
        ours, sk100, sk10k = [], [], []
        for rnd, acc in curve:
            train = np.array([i for r, i in sel if r <= rnd])
            ours.append(acc)
            sk100.append(yardstick_accuracy(x, y, train, test, 100))
            sk10k.append(yardstick_accuracy(x, y, train, test, 10000))
        d100 = max(abs(a - b) for a, b in zip(ours, sk100))
        d10k = max(abs(a - b) for a, b in zip(ours, sk10k))
        print(f"| {os.path.basename(run.rstrip('/'))} | {len(curve)} | {np.mean(ours):.4f} | "
              f"{np.mean(sk100):.4f} | {np.mean(sk10k):.4f} | {d100:.4f} / {d10k:.4f} |")
        if args.verbose:
            for (rnd, _), a, b, c in zip(curve, ours, sk100, sk10k):
                print(f"    round {rnd}: ours {a:.4f} sk100 {b:.4f} sk10k {c:.4f}")
        totals["ours"].append(np.mean(ours))
        totals["sk100"].append(np.mean(sk100))
        totals["sk10k"].append(np.mean(sk10k))
    print(f"| mean | | {np.mean(totals['ours']):.4f} | {np.mean(totals['sk100']):.4f} | "
          f"{np.mean(totals['sk10k']):.4f} | |")


def make_strategy(name, seed, n_classes, max_iter, n_init=None, gamma=None):
    """A scikit-activeml query strategy and its classifier (None when it needs none)."""
    from skactiveml.classifier import SklearnClassifier
    from skactiveml.pool import MaxHerding, RandomSampling, TypiClust, UncertaintySampling

    if name == "typiclust":
        algo = None if n_init is None else {"n_init": n_init}
        return TypiClust(random_state=seed, cluster_algo_dict=algo), None
    if name == "maxherding":
        params = None if gamma is None else {"gamma": gamma}
        return MaxHerding(random_state=seed, metric_dict=params), None
    if name == "random":
        return RandomSampling(random_state=seed), None
    if name in ("margin", "entropy"):
        method = "margin_sampling" if name == "margin" else "entropy"
        clf = SklearnClassifier(
            LogisticRegression(C=10, max_iter=max_iter),
            classes=np.arange(n_classes),
            random_state=seed,
        )
        return UncertaintySampling(method=method, random_state=seed), clf
    raise SystemExit(f"unknown strategy '{name}' (typiclust, maxherding, random, margin, entropy)")


def run(args):
    ids, y, x, classes = load(args.data)
    id_index = {s: i for i, s in enumerate(ids)}
    results = []
    for seed in args.seeds:
        split_dir = args.splits.format(seed=seed)
        pool, test = read_split(split_dir, id_index)
        xp, yp = x[pool], y[pool]
        for name in args.strategies:
            qs, clf = make_strategy(name, seed, len(classes), args.max_iter, args.n_init, args.gamma)
            y_obs = np.full(len(pool), np.nan)
            curve, seconds = [], []
            for rnd in range(1, args.rounds + 1):
                start = time.perf_counter()
                if clf is None:
                    picked = qs.query(xp, y_obs, batch_size=args.batch)
                elif np.all(np.isnan(y_obs)):
                    # No labels yet: an uncertainty strategy has nothing to be uncertain about.
                    rng = np.random.default_rng(seed)
                    picked = rng.choice(len(pool), size=args.batch, replace=False)
                else:
                    picked = qs.query(xp, y_obs, clf=clf, batch_size=args.batch)
                seconds.append(time.perf_counter() - start)
                y_obs[picked] = yp[picked]
                train = pool[~np.isnan(y_obs)]
                acc = yardstick_accuracy(x, y, train, test, args.max_iter)
                found = len(np.unique(y[train]))
                curve.append({"round": rnd, "labels": int(len(train)), "accuracy": acc,
                              "classes_found": int(found)})
            aulc = float(np.mean([c["accuracy"] for c in curve]))
            results.append({"seed": seed, "strategy": name, "aulc": aulc,
                            "select_seconds_per_round": float(np.mean(seconds)),
                            "curve": curve, "pool": int(len(pool)), "test": int(len(test))})
            print(f"seed {seed} {name}: AULC {aulc:.4f}, "
                  f"select {np.mean(seconds):.2f} s/round, "
                  f"round 1 {curve[0]['accuracy']:.4f}", file=sys.stderr, flush=True)
    print(f"Splits: {args.splits}, seeds {args.seeds}, B = {args.batch}, R = {args.rounds}, "
          f"yardstick LogisticRegression(C=10, max_iter={args.max_iter})")
    print(f"| strategy | seeds | AULC (mean ± sd) | per seed | select s/round |")
    print("|---|---|---|---|---|")
    for name in args.strategies:
        rs = [r for r in results if r["strategy"] == name]
        a = np.array([r["aulc"] for r in rs])
        sd = a.std(ddof=1) if len(a) > 1 else 0.0
        per = " / ".join(f"{v:.3f}" for v in a)
        sec = np.mean([r["select_seconds_per_round"] for r in rs])
        print(f"| {name} (scikit-activeml) | {len(rs)} | {a.mean():.3f} ± {sd:.3f} "
              f"| {per} | {sec:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


def sksplit(args):
    import pyarrow as pa
    from sklearn.model_selection import train_test_split

    table = pq.read_table(args.data)
    ids, y, _, _ = load(args.data)
    for seed in args.seeds:
        _, test = train_test_split(np.arange(len(ids)), test_size=0.2, stratify=y,
                                   random_state=seed)
        is_test = np.zeros(len(ids), dtype=bool)
        is_test[test] = True
        roles = np.where(is_test, "test", "train")
        out = table.set_column(table.schema.get_field_index("split"), "split",
                               pa.array(roles.tolist(), type=pa.string()))
        stem = os.path.splitext(os.path.basename(args.data))[0]
        pq.write_table(out, os.path.join(args.out, f"{stem}-sksplit-s{seed}.parquet"))
        d = os.path.join(args.out, f"split-s{seed}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "split.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "split"])
            for i, r in zip(ids, roles):
                w.writerow([i, "test" if r == "test" else "pool"])
        print(f"seed {seed}: pool {int((~is_test).sum())}, test {int(is_test.sum())}",
              file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("check", help="refit scikit-learn's yardstick on our simulate runs")
    c.add_argument("data")
    c.add_argument("runs", nargs="+")
    c.add_argument("--verbose", action="store_true")
    r = sub.add_parser("run", help="run scikit-activeml strategies on our splits")
    r.add_argument("data")
    r.add_argument("--splits", required=True,
                   help="a simulate run directory holding split.csv, with {seed} in it")
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    r.add_argument("--batch", type=int, default=20)
    r.add_argument("--rounds", type=int, default=15)
    r.add_argument("--strategies", nargs="+", default=["typiclust", "random", "margin"])
    r.add_argument("--max-iter", type=int, default=100,
                   help="LogisticRegression max_iter of the yardstick and of margin's model")
    r.add_argument("--n-init", type=int,
                   help="TypiClust's k-means restarts (default: scikit-learn's, 1 for k-means++ "
                        "since 1.4; older versions used 10)")
    r.add_argument("--gamma", type=float,
                   help="MaxHerding's RBF gamma (default: scikit-learn's 1 / n_features)")
    r.add_argument("--json")
    k = sub.add_parser("sksplit", help="write scikit-learn's stratified 80/20 split per seed")
    k.add_argument("data")
    k.add_argument("out")
    k.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args()
    {"check": check, "run": run, "sksplit": sksplit}[args.mode](args)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Exact near-duplicate ground truth for `labelwise dedup`, and the scorer that compares a tool's
pairs against it.

    # all pairs i<j with cosine >= min(T) (default T = 0.90, 0.95, 0.98), exact:
    python3 benches/peers/exact_pairs.py all DATA.parquet --out DATA.exact.parquet [--check-readme]

    # large N: the exact partner sets of a random sample of items (each sampled item against all
    # items), plus the injected pairs from <stem>.dups.csv:
    python3 benches/peers/exact_pairs.py sample DATA.parquet --n 2000 --seed 0 --out S.parquet

    # recall / precision of a tool's pairs (Parquet with id_a, id_b), the tool run at threshold T:
    python3 benches/peers/exact_pairs.py score DATA.parquet TRUTH.parquet PAIRS.parquet --t T --tool NAME

Method (as the datasets README describes): float32 blocked matrix products find every candidate
with cosine >= min(T) - 1e-4; every candidate (a superset of "within 1e-4 of a threshold") is
re-scored in float64 from the stored float32 vectors, and the float64 cosine decides. Output
columns: i, j (row indices, i<j), id_a, id_b, cosine (float64).

`sample` output: the same columns for every exact pair with one end in the sample, plus a
second file <out>.items.npy with the sampled row indices. Recall on a sample = the share of those
pairs a tool found; precision is computed over ALL of a tool's pairs, by re-scoring each in
float64 (cheap: one dot product per pair), so it needs no ground-truth file.
"""
import argparse
import os
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

THRESHOLDS = (0.90, 0.95, 0.98)
EPS = 1e-4
README_COUNTS = {  # /work/shared/datasets/README.md, "pairs cos >= t"
    "banking77": {0.95: 6192, 0.98: 1002},
    "clinc150": {0.95: 7122, 0.98: 1360},
}


def load(path, id_col="id", emb_col="embedding"):
    t = pq.read_table(path, columns=[id_col, emb_col])
    ids = t.column(id_col).to_pylist()
    col = t.column(emb_col).combine_chunks()
    d = col.type.list_size if pa.types.is_fixed_size_list(col.type) else None
    flat = col.flatten().to_numpy(zero_copy_only=False)
    if d is None:
        d = len(flat) // len(ids)
    x = np.ascontiguousarray(flat.reshape(len(ids), d), dtype=np.float32)
    return ids, x


def rescore(x, i, j):
    """float64 cosine of rows i, j (vectors are L2-normalised; renormalise in float64 anyway)."""
    out = np.empty(len(i), dtype=np.float64)
    for s in range(0, len(i), 200_000):
        a = x[i[s:s + 200_000]].astype(np.float64)
        b = x[j[s:s + 200_000]].astype(np.float64)
        out[s:s + 200_000] = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return out


def all_pairs(x, tmin, block=2048):
    n = len(x)
    ii, jj = [], []
    for s in range(0, n, block):
        e = min(n, s + block)
        sims = x[s:e] @ x[s:].T  # only the upper part: columns j >= s
        r, c = np.nonzero(sims >= tmin - EPS)
        c = c + s
        keep = c > r + s
        ii.append((r + s)[keep].astype(np.int64))
        jj.append(c[keep].astype(np.int64))
    i = np.concatenate(ii)
    j = np.concatenate(jj)
    cos = rescore(x, i, j)
    keep = cos >= tmin
    return i[keep], j[keep], cos[keep]


def sample_pairs(x, items, tmin, block=512):
    """Every exact pair (a<b) with at least one end in `items`."""
    ii, jj = [], []
    for s in range(0, len(items), block):
        q = items[s:s + block]
        sims = x[q] @ x.T
        r, c = np.nonzero(sims >= tmin - EPS)
        a = q[r]
        keep = c != a
        a, c = a[keep], c[keep]
        ii.append(np.minimum(a, c))
        jj.append(np.maximum(a, c))
    i = np.concatenate(ii).astype(np.int64)
    j = np.concatenate(jj).astype(np.int64)
    if len(i):
        key = np.unique(i * len(x) + j)
        i, j = key // len(x), key % len(x)
    cos = rescore(x, i, j)
    keep = cos >= tmin
    return i[keep], j[keep], cos[keep]


def write(path, ids, i, j, cos):
    t = pa.table({
        "i": pa.array(i, pa.int64()), "j": pa.array(j, pa.int64()),
        "id_a": pa.array([ids[k] for k in i], pa.string()),
        "id_b": pa.array([ids[k] for k in j], pa.string()),
        "cosine": pa.array(cos, pa.float64()),
    })
    tmp = path + ".tmp"
    pq.write_table(t, tmp)
    os.replace(tmp, path)


def read_pairs(path, index):
    """A tool's pairs as a set of (min,max) row-index keys; ids are mapped through `index`."""
    t = pq.read_table(path, columns=["id_a", "id_b"])
    a = np.fromiter((index[v] for v in t.column("id_a").to_pylist()), np.int64, t.num_rows)
    b = np.fromiter((index[v] for v in t.column("id_b").to_pylist()), np.int64, t.num_rows)
    return np.minimum(a, b), np.maximum(a, b)


def cmd_all(a):
    t0 = time.time()
    ids, x = load(a.data)
    ts = sorted(a.thresholds)
    i, j, cos = all_pairs(x, ts[0])
    write(a.out, ids, i, j, cos)
    print(f"exact_pairs all: {a.data} n={len(ids)} d={x.shape[1]} in {time.time() - t0:.1f} s -> {a.out}")
    ok = True
    name = os.path.basename(a.data).split(".")[0]
    for t in ts:
        c = int((cos >= t).sum())
        exp = README_COUNTS.get(name, {}).get(t)
        note = ""
        if a.check_readme and exp is not None:
            note = f" README {exp}: {'OK' if c == exp else 'MISMATCH'}"
            ok &= c == exp
        print(f"  T={t:.2f}: {c} pairs{note}")
    return 0 if ok else 1


def cmd_sample(a):
    t0 = time.time()
    ids, x = load(a.data)
    rng = np.random.default_rng(a.seed)
    items = np.sort(rng.choice(len(ids), size=min(a.n, len(ids)), replace=False))
    ts = sorted(a.thresholds)
    i, j, cos = sample_pairs(x, items, ts[0])
    write(a.out, ids, i, j, cos)
    np.save(a.out + ".items.npy", items)
    print(f"exact_pairs sample: {a.data} n={len(ids)} sample={len(items)} seed={a.seed} "
          f"in {time.time() - t0:.1f} s -> {a.out}")
    for t in ts:
        print(f"  T={t:.2f}: {int((cos >= t).sum())} pairs touching the sample")
    return 0


def cmd_score(a):
    ids, x = load(a.data)
    index = {v: k for k, v in enumerate(ids)}
    n = len(ids)
    truth = pq.read_table(a.truth)
    ti = truth.column("i").to_numpy()
    tj = truth.column("j").to_numpy()
    tc = truth.column("cosine").to_numpy()
    items = None
    if os.path.exists(a.truth + ".items.npy"):
        items = np.load(a.truth + ".items.npy")
    pi, pj = read_pairs(a.pairs, index)
    pkey = np.unique(pi * n + pj)
    ndup = len(pi) - len(pkey)
    pi, pj = pkey // n, pkey % n
    pcos = rescore(x, pi, pj)  # exact float64 cosine of every reported pair
    inj = None
    if a.dups_csv:
        import csv
        with open(a.dups_csv) as f:
            r = csv.reader(f)
            next(r)
            rows = [(index[p], index[q]) for p, q in r]
        inj = np.unique(np.array([min(p, q) * n + max(p, q) for p, q in rows], np.int64))
    t = a.t
    sel = tc >= t
    tkey = ti[sel] * n + tj[sel]  # exact pairs at T (all of them, or those touching the sample)
    rec = float(np.isin(tkey, pkey).mean()) if len(tkey) else 1.0
    tp = int((pcos >= t).sum())
    prec = tp / len(pkey) if len(pkey) else 1.0
    worst = float(pcos.min()) if len(pcos) else float("nan")
    s = (f"{a.tool}\tT={t:.2f}\tpairs={len(pkey)}\texact={len(tkey)}\trecall={rec:.4f}"
         f"\tprecision={prec:.6f}\tfalse_pos={len(pkey) - tp}\tmin_exact_cos={worst:.7f}")
    if items is not None:
        s += f"\t(recall over the exact pairs touching {len(items)} sampled items)"
    if inj is not None:
        s += f"\tinjected_found={int(np.isin(inj, pkey).sum())}/{len(inj)}"
    if ndup:
        s += f"\tduplicate_rows={ndup}"
    lines = [s]
    print("\n".join(lines))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = ap.add_subparsers(dest="cmd", required=True)
    p = sp.add_parser("all")
    p.add_argument("data")
    p.add_argument("--out", required=True)
    p.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS))
    p.add_argument("--check-readme", action="store_true",
                   help="exit 1 if the counts differ from the datasets README (banking77, clinc150)")
    p.set_defaults(f=cmd_all)
    p = sp.add_parser("sample")
    p.add_argument("data")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS))
    p.set_defaults(f=cmd_sample)
    p = sp.add_parser("score")
    p.add_argument("data")
    p.add_argument("truth")
    p.add_argument("pairs")
    p.add_argument("--tool", default="tool")
    p.add_argument("--t", type=float, required=True, help="the threshold the tool was run at")
    p.add_argument("--dups-csv", help="injected pairs (examples/synth): also report how many were found")
    p.set_defaults(f=cmd_score)
    a = ap.parse_args()
    sys.exit(a.f(a))


if __name__ == "__main__":
    main()

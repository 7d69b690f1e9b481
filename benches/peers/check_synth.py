#!/usr/bin/env python3
"""Checks a file written by `cargo run --release --example synth` with pyarrow + numpy.

    python3 benches/peers/check_synth.py FILE [--expect-rows N] [--exact-pairs]

Asserts: the schema, unique ids, L2 norms ~ 1, every pair in <FILE stem>.dups.csv has cosine
>= 0.98, labels equal true_label where set, rows not sorted by cluster. Prints the cluster size
profile, label/split shares, cosine statistics within / between clusters and for rare clusters.
--exact-pairs also counts all pairs with cosine >= 0.95 (blockwise, O(N^2); fine up to ~50k rows).
"""
import argparse
import csv
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--expect-rows", type=int)
    ap.add_argument("--exact-pairs", action="store_true")
    a = ap.parse_args()

    pf = pq.ParquetFile(a.file)
    print("schema:", pf.schema_arrow)
    print("row groups:", pf.num_row_groups, "| compression:", pf.metadata.row_group(0).column(0).compression)
    t = pf.read()
    n = t.num_rows
    if a.expect_rows is not None:
        assert n == a.expect_rows, (n, a.expect_rows)
    s = t.schema
    assert s.field("id").type == pa.string()
    assert pa.types.is_fixed_size_list(s.field("embedding").type)
    assert s.field("embedding").type.value_type == pa.float32()
    for c in ("label", "true_label", "split", "text"):
        assert s.field(c).type == pa.string(), c
    dim = s.field("embedding").type.list_size
    ids = t.column("id").to_pylist()
    assert len(set(ids)) == n, "duplicate ids"
    x = t.column("embedding").combine_chunks().flatten().to_numpy().reshape(n, dim)
    norms = np.concatenate([np.linalg.norm(x[i:i + 65536].astype(np.float64), axis=1) for i in range(0, n, 65536)])
    print(f"rows {n}, dim {dim}, |norm-1| max {np.abs(norms - 1).max():.2e}")
    assert np.abs(norms - 1).max() < 1e-5
    assert np.isfinite(x).all()

    label = t.column("label").to_pylist()
    true = t.column("true_label").to_pylist()
    assert all(l is None or l == g for l, g in zip(label, true))
    n_lab = sum(l is not None for l in label)
    split = np.array(t.column("split").to_pylist())
    print(f"labeled {n_lab} ({100 * n_lab / n:.2f}%), test split {100 * (split == 'test').mean():.1f}%,"
          f" classes {len(set(true))}, labeled classes {len(set(l for l in label if l))}")

    cl = t.column("true_cluster").to_numpy()
    rare = t.column("true_rare").to_numpy(zero_copy_only=False)
    sizes = np.bincount(cl)
    main_sizes = np.sort(sizes[~np.isin(np.arange(len(sizes)), np.unique(cl[rare]))])[::-1]
    print(f"clusters {len(sizes)} ({len(np.unique(cl[rare]))} rare, {rare.sum()} rare rows);"
          f" main sizes: largest {main_sizes[0]} ({100 * main_sizes[0] / n:.1f}%), median {int(np.median(main_sizes))},"
          f" smallest {main_sizes[-1]}")
    assert (np.diff(cl) != 0).mean() > 0.5, "rows look sorted by cluster"

    # Duplicates.
    stem = os.path.splitext(a.file)[0]
    with open(stem + ".dups.csv") as f:
        rows = list(csv.DictReader(f))
    pos = {i: k for k, i in enumerate(ids)}
    ia = np.array([pos[r["id_a"]] for r in rows], dtype=np.int64)
    ib = np.array([pos[r["id_b"]] for r in rows], dtype=np.int64)
    assert (ia < ib).all(), "id_a must come before id_b"
    assert len(set(zip(ia.tolist(), ib.tolist()))) == len(rows), "repeated pair"
    if len(rows):
        cos = np.einsum("ij,ij->i", x[ia].astype(np.float64), x[ib].astype(np.float64))
        print(f"dup pairs {len(rows)}: cosine min {cos.min():.5f} mean {cos.mean():.5f}")
        assert cos.min() >= 0.98
        assert (cl[ia] == cl[ib]).all()

    # Cosine profile on a sample.
    rng = np.random.default_rng(0)
    m = min(n, 4000)
    idx = rng.choice(n, size=m, replace=False)
    g = x[idx] @ x[idx].T
    same = cl[idx][:, None] == cl[idx][None, :]
    off = ~np.eye(m, dtype=bool)
    print(f"sample cosine: same cluster mean {g[same & off].mean():.3f}, different clusters mean {g[~same].mean():.3f}")
    rr = rare[idx]
    if rr.any() and (~rr).any():
        print(f"  rare vs main mean {g[np.ix_(rr, ~rr)].mean():.3f}, rare vs main max {g[np.ix_(rr, ~rr)].max():.3f}")
    # Nearest other-cluster neighbour for main and rare rows.
    gg = np.where(same, -2, g)
    best = gg.max(axis=1)
    print(f"  nearest other-cluster cosine: main median {np.median(best[~rr]):.3f}"
          + (f", rare median {np.median(best[rr]):.3f}" if rr.any() else ""))

    if a.exact_pairs:
        count = 0
        known = set(zip(ia.tolist(), ib.tolist()))
        found_known = 0
        for s0 in range(0, n, 2048):
            blk = x[s0:s0 + 2048] @ x.T
            r, c = np.nonzero(blk >= 0.95)
            r = r + s0
            keep = r < c
            count += int(keep.sum())
            found_known += sum((int(p), int(q)) in known for p, q in zip(r[keep], c[keep]))
        print(f"all pairs cos >= 0.95: {count} ({found_known} of them injected, {count - found_known} natural)")
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())

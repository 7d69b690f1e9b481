#!/usr/bin/env python3
"""Cut the small banking77 sample that ships in datasets/ (see datasets/README.md).

    pip install pyarrow numpy
    python3 datasets/make_sample.py \
        --src /work/shared/datasets/banking77.parquet \
        --out datasets/banking77_sample.parquet

Takes 3,000 rows of banking77 (train and test splits together), stratified by class with
proportional allocation (largest remainder), chosen with numpy's PCG64 seeded by --seed.
The sampled rows are shuffled with the same generator (the source is grouped by class).
The gold label is copied to `true_label`; `label` keeps it on exactly 10% of the rows
(chosen uniformly with the same generator) and is null elsewhere.
Output: zstd, embedding as fixed_size_list<float32, 384>; deterministic for a given source
file and seed.
"""
import argparse
import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default="/work/shared/datasets/banking77.parquet")
    ap.add_argument("--out", default="datasets/banking77_sample.parquet")
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--labeled-share", type=float, default=0.10)
    ap.add_argument("--seed", type=int, default=77)
    a = ap.parse_args()

    src = pq.read_table(a.src)
    n = src.num_rows
    if a.rows > n:
        sys.exit(f"--rows {a.rows} exceeds the {n} rows of {a.src}")
    rng = np.random.Generator(np.random.PCG64(a.seed))

    # Stratified by class, proportional allocation with largest remainder (ties: class name).
    labels = np.asarray(src.column("label").to_pylist(), dtype=object)
    classes = sorted(set(labels))
    counts = np.array([(labels == c).sum() for c in classes])
    quota = counts * a.rows / n
    take = np.floor(quota).astype(int)
    rest = a.rows - take.sum()
    order = sorted(range(len(classes)), key=lambda i: (-(quota[i] - take[i]), classes[i]))
    for i in order[:rest]:
        take[i] += 1
    picked = []
    for c, k in zip(classes, take):
        idx = np.flatnonzero(labels == c)
        picked.append(rng.choice(idx, size=k, replace=False))
    picked = np.concatenate(picked)
    picked = picked[rng.permutation(len(picked))]  # shuffled order

    t = src.take(pa.array(picked))
    n_lab = int(round(a.rows * a.labeled_share))
    keep = np.zeros(a.rows, dtype=bool)
    keep[rng.choice(a.rows, size=n_lab, replace=False)] = True
    gold = t.column("label").combine_chunks()
    masked = pc.if_else(pa.array(keep), gold, pa.scalar(None, pa.string()))

    dim = t.schema.field("embedding").type.list_size
    emb_values = t.column("embedding").combine_chunks().flatten().cast(pa.float32())
    emb = pa.FixedSizeListArray.from_arrays(emb_values, dim)

    out = pa.table(
        {
            "id": t.column("id").combine_chunks(),
            "text": t.column("text").combine_chunks(),
            "label": masked,
            "true_label": gold,
            "split": t.column("split").combine_chunks(),
            "embedding": emb,
        }
    )
    meta = {k.decode(): v.decode() for k, v in (src.schema.metadata or {}).items() if k != b"ARROW:schema"}
    meta["sample"] = json.dumps(
        {
            "from": "banking77.parquet (13,083 rows, train + test)",
            "rows": a.rows,
            "method": "stratified by class (proportional, largest remainder), then shuffled",
            "labeled_share": a.labeled_share,
            "labeled_rows": n_lab,
            "seed": a.seed,
            "rng": "numpy PCG64",
            "script": "datasets/make_sample.py",
        }
    )
    out = out.replace_schema_metadata(meta)
    pq.write_table(
        out,
        a.out,
        compression="zstd",
        use_dictionary=["label", "true_label", "split"],
        row_group_size=8192,
    )

    n_classes = len(set(gold.to_pylist()))
    lab_classes = len(set(x for x in masked.to_pylist() if x is not None))
    splits = {str(s): int(c) for s, c in zip(*np.unique(t.column("split").to_pylist(), return_counts=True))}
    print(
        f"wrote {a.out}: {out.num_rows} rows, dim {dim}, {n_classes} classes, "
        f"{n_lab} labeled covering {lab_classes} classes, splits {splits}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

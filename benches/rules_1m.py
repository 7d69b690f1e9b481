#!/usr/bin/env python3
"""Writes the 1,000,000-row pool for the `labelwise rules` timing (benches/rules_1m.sh).

agnews' texts repeated to N rows (default 1,000,000) with ids `r0000000`…, an 8-d random
float32 embedding (seeded), and the agnews label kept on a seeded random 5% of rows.

    python3 benches/rules_1m.py OUT.parquet [--rows N] [--data agnews.parquet] [--seed 0]
"""

import argparse

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--rows", type=int, default=1_000_000)
ap.add_argument("--data", default="/work/shared/datasets/agnews.parquet")
ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()

src = pq.read_table(a.data, columns=["text", "label"])
n, m = a.rows, src.num_rows
rng = np.random.default_rng(a.seed)
take = pa.array(np.arange(n) % m)
text = src.column("text").take(take)
label = src.column("label").take(take).to_numpy(zero_copy_only=False)
keep = rng.random(n) < 0.05
label = pa.array(np.where(keep, label, None), type=pa.string())
d = 8
flat = rng.standard_normal(n * d).astype(np.float32)
emb = pa.FixedSizeListArray.from_arrays(pa.array(flat), d)
ids = pa.array([f"r{i:07d}" for i in range(n)])
table = pa.table({"id": ids, "text": text, "label": label, "embedding": emb})
pq.write_table(table, a.out, row_group_size=65536, compression="zstd")
print(f"{a.out}: {n} rows, {int(keep.sum())} labeled")

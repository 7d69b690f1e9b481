#!/usr/bin/env python3
"""Writes small valid seed inputs for the fuzz corpora (fuzz/corpus/<target>/)."""
import io, os, sys
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

root = os.path.dirname(os.path.abspath(__file__))
pq_dir = os.path.join(root, "corpus", "load_parquet")
lb_dir = os.path.join(root, "corpus", "labels_csv")
os.makedirs(pq_dir, exist_ok=True)
os.makedirs(lb_dir, exist_ok=True)

def write(table, name, **kw):
    pq.write_table(table, os.path.join(pq_dir, name), **kw)

rng = np.random.default_rng(0)
def emb(n, d, dt=np.float32):
    return rng.standard_normal((n, d)).astype(dt)

# 1. fixed-size list f32, string ids, string labels, an extra column
e = emb(5, 4)
t = pa.table({
    "id": pa.array(["a", "b", "c", "d", "e"]),
    "embedding": pa.FixedSizeListArray.from_arrays(pa.array(e.ravel()), 4),
    "label": pa.array(["x", None, "y", "x", None]),
    "text": pa.array(["t1", "t2", None, "t4", "t5"]),
})
write(t, "fsl_f32.parquet", compression="none")
write(t, "fsl_f32_zstd.parquet", compression="zstd")
write(t, "fsl_f32_snappy_rg2.parquet", compression="snappy", row_group_size=2)
# 2. list<f64>, int ids, no label
e = emb(3, 3, np.float64)
t = pa.table({
    "id": pa.array([1, 2, 3], pa.int64()),
    "embedding": pa.array([list(r) for r in e], pa.list_(pa.float64())),
})
write(t, "list_f64_int.parquet", compression="none")
# 3. large_list<f16>, dictionary labels, uint ids
e = emb(4, 2, np.float16)
t = pa.table({
    "id": pa.array([10, 11, 12, 13], pa.uint32()),
    "embedding": pa.array([list(map(float, r)) for r in e], pa.large_list(pa.float16())),
    "label": pa.array(["p", "q", "p", None]).dictionary_encode(),
    "score": pa.array([0.5, 1.5, None, 2.0]),
})
write(t, "largelist_f16_dict.parquet", compression="none", use_dictionary=True)
# 4. invalid-but-parseable: null embedding, zero vector, nan
t = pa.table({
    "id": pa.array(["a", "b"]),
    "embedding": pa.array([[0.0, 0.0], None], pa.list_(pa.float32())),
})
write(t, "bad_values.parquet", compression="none")
# 5. v1 data pages, statistics off
e = emb(3, 8)
t = pa.table({
    "id": pa.array(["a", "b", "c"]),
    "embedding": pa.FixedSizeListArray.from_arrays(pa.array(e.ravel()), 8),
})
write(t, "v1_pages.parquet", compression="none", data_page_version="1.0", write_statistics=False)

# labels seeds: CSV and a Parquet labels file
seeds = {
    "basic.csv": b"id,label\na,cat\nb,dog\nzz,cat\nc,\n",
    "reordered.csv": b"label,id,extra\ncat,a,1\n,b,2\n",
    "quoted.csv": b'id,label\n"a","c,a,t"\n"x y","dog"\n',
    "no_header.csv": b"a,cat\n",
    "ragged.csv": b"id,label\na\nb,cat,extra\n",
    "bom.csv": b"\xef\xbb\xbfid,label\r\na,cat\r\n",
}
for name, data in seeds.items():
    with open(os.path.join(lb_dir, name), "wb") as f:
        f.write(data)
buf = io.BytesIO()
pq.write_table(pa.table({"id": ["a", "b", "nope"], "label": ["cat", None, "dog"]}), buf, compression="none")
with open(os.path.join(lb_dir, "labels.parquet"), "wb") as f:
    f.write(buf.getvalue())
buf = io.BytesIO()
pq.write_table(pa.table({"id": pa.array([1, 2], pa.int32()), "label": pa.array([True, False])}), buf, compression="none")
with open(os.path.join(lb_dir, "labels_int_bool.parquet"), "wb") as f:
    f.write(buf.getvalue())
print("seeds written to", pq_dir, "and", lb_dir)

#!/usr/bin/env python3
"""Peer baseline for labelwise's Parquet load: pyarrow read_table + embedding -> numpy float32.

    python3 benches/peers/pyarrow_read.py FILE [--embedding-col embedding] [--columns id,embedding,label]

Prints one line: rows, dim, wall time (read, convert, total), MB/s of embedding data
(rows x dim x 4 bytes / total seconds) and peak RSS (ru_maxrss). By default it reads only the
columns labelwise needs (id, embedding, label, where present); --columns all reads every column.
"""
import argparse
import resource
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--embedding-col", default="embedding")
    ap.add_argument("--columns", default="id,embedding,label",
                    help="comma-separated projection (missing ones are skipped), or 'all'")
    a = ap.parse_args()

    if a.columns == "all":
        columns = None
    else:
        names = set(pq.read_schema(a.file).names)
        columns = [c for c in a.columns.split(",") if c in names]
        if a.embedding_col not in columns:
            columns.append(a.embedding_col)

    t0 = time.perf_counter()
    table = pq.read_table(a.file, columns=columns)
    t1 = time.perf_counter()
    col = table.column(a.embedding_col).combine_chunks()
    if pa.types.is_fixed_size_list(col.type):
        dim = col.type.list_size
    else:  # List / LargeList with uniform lengths
        dim = len(col[0]) if len(col) else 0
    values = col.flatten()
    if values.type != pa.float32():
        values = values.cast(pa.float32())
    matrix = values.to_numpy(zero_copy_only=False).reshape(table.num_rows, dim)
    t2 = time.perf_counter()

    # Touch the matrix so a lazy copy could not hide cost.
    checksum = float(matrix[:: max(1, len(matrix) // 1000)].sum(dtype=np.float64))
    rows = matrix.shape[0]
    mb = rows * dim * 4 / 1e6
    total = t2 - t0
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        f"pyarrow {pa.__version__}: {rows} rows x {dim} dim | read {t1 - t0:.3f} s + to_numpy {t2 - t1:.3f} s "
        f"= {total:.3f} s | {mb / total:.1f} MB/s of embeddings ({mb:.1f} MB) | peak RSS {rss_kb / 1024:.1f} MiB "
        f"| checksum {checksum:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

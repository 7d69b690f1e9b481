"""What runs on the Ray workers: each function reads its inputs from the stage store
(``_store``: a shared folder, or object storage), calls the wheel's Rust kernels, and writes its
output atomically, so a retried task overwrites nothing half-written and a rerun finds finished
outputs whole.

Every output name carries the hash of everything it depends on (see ``_stages``), so a file
that exists is a finished, valid result of the same inputs.
"""

from __future__ import annotations

import hashlib
import os
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import _labelwise
from . import _inputs
from ._store import Matrix, Store

#: Test hook: ``<stage>:<index>:<marker file>`` makes the task of that stage and index kill its
#: own worker process (SIGKILL) the first time it runs, as a crashed node would; the marker
#: file records that it happened, so Ray's retry then runs normally. Several such faults are
#: separated by ``;``.
FAULT_ENV = "LABELWISE_DISTRIBUTED_FAULT"


@dataclass(frozen=True)
class Shard:
    """A slice of one input file: whole row groups, and where its rows start in the pool."""

    index: int
    path: str
    row_groups: tuple[int, ...]
    start: int
    rows: int
    #: The ``pyarrow.fs.FileSystem`` holding ``path`` (``None``: a local path), and its scheme.
    filesystem: Any = None
    scheme: str = ""

    def open(self) -> pq.ParquetFile:
        """The input file this shard slices, read where it lives (a local disk, object storage)."""
        return _inputs.open_parquet(self.filesystem, self.path, self.name)

    @property
    def name(self) -> str:
        """The file as messages name it (its URI when it is not local)."""
        return _inputs.uri(self.scheme, self.path)


def maybe_fail(stage: str, index: int) -> None:
    """Kills this worker process when the fault hook names this task (tests only)."""
    for spec in os.environ.get(FAULT_ENV, "").split(";"):
        parts = spec.split(":", 2)
        if len(parts) == 3 and parts[0] == stage and parts[1] == str(index):
            kill_once(stage, index, Path(parts[2]))


def kill_once(stage: str, index: int, marker: Path) -> None:
    """SIGKILLs this worker unless ``marker`` exists, which it creates first."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, f"{stage} {index} pid {os.getpid()}\n".encode())
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)


def threads() -> int:
    """CPUs Ray gave this task (the Rust kernels use that many threads)."""
    try:
        import ray

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
        return max(1, int(cpus))
    except Exception:  # noqa: BLE001 - outside a Ray task
        return 1


@dataclass(frozen=True)
class Lists:
    """The shuffle's output: for each list, its Parquet files in the store (path, rows, bytes),
    as the write's tasks reported them (files a failed write attempt left are not listed)."""

    store: Store
    #: Names the shuffle in later stages' keys (``lists-<hash>``).
    name: str
    files: dict[int, list[tuple[str, int, int]]]

    @staticmethod
    def from_manifest(store: Store, name: str, folder: str, manifest: list[list[Any]]) -> Lists:
        """The manifest ``_SUCCESS`` carries (``[home, path under folder, rows, bytes]`` per
        file), each list's files in path order."""
        files: dict[int, list[tuple[str, int, int]]] = {}
        for home, rel, rows, size in sorted(manifest, key=lambda f: (f[0], f[1])):
            files.setdefault(int(home), []).append((f"{folder}/{rel}", int(rows), int(size)))
        return Lists(store, name, files)

    def sizes(self, nlist: int) -> np.ndarray:
        """Rows in each of the ``nlist`` lists."""
        sizes = np.zeros(nlist, dtype=np.int64)
        for l, fs in self.files.items():
            sizes[l] = sum(rows for _, rows, _ in fs)
        return sizes

    def nbytes(self) -> int:
        return sum(b for fs in self.files.values() for _, _, b in fs)

    def read(self, lists: Any, columns: tuple[str, ...] = ("row", "probes", "embedding")) -> tuple[pa.Table, int]:
        """The rows of the given lists, with their ``home`` list, and the bytes read."""
        parts = []
        nbytes = 0
        for l in lists:
            for path, _, size in self.files.get(int(l), []):
                nbytes += size
                t = self.store.read_table(path, list(columns))
                parts.append(t.append_column("home", pa.array(np.full(t.num_rows, l, dtype=np.int32))))
        return pa.concat_tables(parts), nbytes


def normalise_shard(shard: Shard, id_col: str, embedding_col: str, out: Matrix) -> dict[str, Any]:
    """Stage 0: reads one shard's ids and embeddings, validates and normalises them exactly as
    the loader does (in Rust), and saves the f32 matrix. Returns its content hash and bytes."""
    maybe_fail("normalise", shard.index)
    if out.exists():  # a finished output: read back to hash it
        m, size = out.load(), out.nbytes()
    else:  # hashed as written, not read back (a whole download from object storage)
        table = shard.open().read_row_groups(list(shard.row_groups), columns=[id_col, embedding_col])
        raw, n, d = _labelwise.normalized_embeddings(table, source_name(shard), id_col, embedding_col)
        m = np.frombuffer(raw, dtype="<f4").reshape(n, d)
        size = out.store.save_npy(out.path, m)
    digest = hashlib.sha256(np.ascontiguousarray(m).data).hexdigest()
    return {"rows": m.shape[0], "dim": m.shape[1], "sha": digest, "bytes": size}


def sample_rows(matrix: Matrix, local: np.ndarray) -> np.ndarray:
    """Stage 1 (map): the rows ``local`` of one normalised shard (the driver's seeded sample)."""
    return matrix.rows(local)


def lloyd_map(matrix: Matrix, centroids: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Stage 2 (map): one shard's per-centroid sums and counts for a Lloyd step (in Rust)."""
    maybe_fail("lloyd", index)
    m = matrix.load()
    d = m.shape[1]
    sums, counts = _labelwise.centroid_sums(
        m.tobytes(), centroids.astype("<f4").tobytes(), d, threads()
    )
    return np.frombuffer(sums, dtype="<i8").copy(), np.frombuffer(counts, dtype="<u8").copy()


def assign_batch(batch: pa.Table, matrices: list[Matrix], starts: list[int], centroids: np.ndarray, p: int) -> pa.Table:
    """Stage 3 (Ray Data map): each row of the shards named in ``batch`` with its home list and
    its ``p`` probed lists, ready for the Parquet write partitioned by home list."""
    tables = []
    for i in batch.column("shard").to_pylist():
        maybe_fail("assign", i)
        m = matrices[i].load()
        n, d = m.shape
        ids, pp = _labelwise.assign_top(m.tobytes(), centroids.astype("<f4").tobytes(), d, p, threads())
        top = np.frombuffer(ids, dtype="<u4").reshape(n, pp).astype(np.int32)
        emb = pa.FixedSizeListArray.from_arrays(pa.array(m.reshape(-1)), d)
        probes = pa.FixedSizeListArray.from_arrays(pa.array(top.reshape(-1)), pp)
        tables.append(
            pa.table(
                {
                    "row": pa.array(np.arange(starts[i], starts[i] + n, dtype=np.int64)),
                    "home": pa.array(top[:, 0]),
                    "probes": probes,
                    "embedding": emb,
                }
            )
        )
    return pa.concat_tables(tables)


def read_graph(store: Store, path: str, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, neighbours (rows × k) and cosines of one group's graph file."""
    t = store.read_table(path)
    rows = np.asarray(t.column("row")).astype(np.uint32)
    nb = np.asarray(t.column("neighbors").combine_chunks().flatten()).reshape(-1, k)
    cs = np.asarray(t.column("cosines").combine_chunks().flatten()).reshape(-1, k)
    return rows, nb, cs


def write_graph(
    store: Store, out: str, rows: np.ndarray, nb: np.ndarray, cs: np.ndarray, k: int, stats: dict[str, int],
    home: np.ndarray | None = None,
) -> int:
    """Writes one group's graph file atomically, its stats in the Parquet metadata (and, from
    the search, each row's ``home`` list, which the refinement's driver reads instead of the
    shuffle's files)."""
    columns = {
        "row": pa.array(rows.astype(np.uint32)),
        "neighbors": pa.FixedSizeListArray.from_arrays(pa.array(nb.reshape(-1).astype(np.uint32)), k),
        "cosines": pa.FixedSizeListArray.from_arrays(pa.array(cs.reshape(-1).astype(np.float32)), k),
    }
    if home is not None:
        columns["home"] = pa.array(home.astype(np.uint32))
    table = pa.table(columns)
    meta = {k_.encode(): str(v).encode() for k_, v in stats.items()}
    return store.write(out, lambda f: pq.write_table(table.replace_schema_metadata(meta), f))


def stats_of(store: Store, out: str) -> dict[str, int]:
    """The stats a finished group file carries."""
    meta = store.parquet(out).metadata.metadata or {}
    return {k_.decode(): int(v) for k_, v in meta.items() if k_.startswith(b"lw_")}


def sibling(path: str, suffix: str) -> str:
    """``group-00003.parquet`` → ``group-00003<suffix>`` beside it."""
    return path.removesuffix(".parquet") + suffix


#: Neighbours whose lists the refinement scans (the single-process `REFINE_EXPAND`).
REFINE_EXPAND = 8


def refine_group(
    index: int,
    home: np.ndarray,
    group_of_list: np.ndarray,
    lists: Lists,
    searched: list[str],
    k: int,
    threshold: float,
    out: str,
) -> dict[str, int]:
    """Stage 5: the neighbour-of-neighbour pass for one group's rows. Reads the searched lists
    of its rows and of their first neighbours (the groups holding them, ``searched``: every
    group's file), and the rows of every candidate and of every row's own neighbours (the lists
    holding them), then refines in Rust as the single process does; writes the refined lists,
    the pairs >= ``threshold`` they link and the rows still saturated (k-th neighbour >=
    ``threshold``)."""
    maybe_fail("refine", index)
    store = lists.store
    if store.exists(out):
        return stats_of(store, out)
    owners, own_nb, _ = read_graph(store, searched[index], k)
    first = np.unique(own_nb[:, :REFINE_EXPAND])
    groups = np.unique(np.concatenate([[index], group_of_list[home[first]]]))
    parts = []
    graph_bytes = 0
    for g in groups.tolist():
        graph_bytes += store.size(searched[g])
        parts.append(read_graph(store, searched[g], k))
    rows = np.concatenate([p[0] for p in parts])
    nb = np.concatenate([p[1] for p in parts])
    cs = np.concatenate([p[2] for p in parts])
    order = np.argsort(rows, kind="stable")
    rows, nb, cs = rows[order], nb[order], cs[order]
    firsts = np.isin(rows, first)
    cand = np.unique(np.concatenate([nb[firsts].reshape(-1), own_nb.reshape(-1), owners]))
    t, emb_bytes = lists.read(np.unique(home[cand]).tolist(), ("row", "embedding"))
    keep = np.isin(np.asarray(t.column("row")), cand)
    t = t.filter(pa.array(keep))
    t = t.take(pa.array(np.argsort(np.asarray(t.column("row")), kind="stable")))
    d = t.column("embedding").type.list_size
    emb = np.asarray(t.column("embedding").combine_chunks().flatten(), dtype="<f4")
    ids = np.asarray(t.column("row")).astype("<u4")
    del t
    r = _labelwise.refine_group(
        emb.tobytes(), d, ids.tobytes(), rows.astype("<u4").tobytes(), nb.astype("<u4").tobytes(),
        cs.astype("<f4").tobytes(), k, owners.astype("<u4").tobytes(), threshold, threads(),
    )
    rnb, rcs = r[0], r[1]
    saturated = np.frombuffer(r[5], dtype="<u4")
    stats = {"lw_owners": int(owners.size), "lw_graph_bytes": graph_bytes, "lw_halo_bytes": emb_bytes,
             "lw_candidates": int(cand.size), "lw_pairs": len(r[2]) // 4, "lw_saturated": int(saturated.size)}
    write_pairs(store, sibling(out, ".pairs.parquet"), r[2], r[3], r[4])
    store.save_npy(sibling(out, ".saturated.npy"), saturated)
    stats["lw_out_bytes"] = write_graph(
        store, out, owners, np.frombuffer(rnb, dtype="<u4"), np.frombuffer(rcs, dtype="<f4"), k, stats
    )
    return stats


def search_group(
    index: int,
    own_lists: list[int],
    lists: Lists,
    nlist: int,
    k: int,
    out: str,
) -> dict[str, Any]:
    """Stage 4: one group of lists. Reads its lists, then the halo (the other lists its rows
    probe), searches its rows' neighbours in Rust, and writes them."""
    maybe_fail("search", index)
    store = lists.store
    if store.exists(out):
        return stats_of(store, out)
    own, own_bytes = lists.read(own_lists)
    p = own.column("probes").type.list_size
    probed = np.asarray(own.column("probes").combine_chunks().flatten()).reshape(-1, p)
    halo = sorted(set(np.unique(probed).tolist()) - set(own_lists))
    del probed
    own_rows = np.asarray(own.column("row"))
    by_row = np.argsort(own_rows, kind="stable")
    own_rows, own_home = own_rows[by_row], np.asarray(own.column("home"))[by_row]
    # No halo when the group holds every list its rows probe (one group for the whole pool).
    halo_t, halo_bytes = lists.read(halo) if halo else (own.slice(0, 0), 0)
    loaded = own.num_rows + halo_t.num_rows
    # A reader over the two tables, and no other reference: Rust copies each row once into its
    # matrix (in global row order) and the Arrow buffers go when it is done with the stream.
    rows = pa.concat_tables([own, halo_t]).to_reader()
    del own, halo_t
    r = _labelwise.search_group(rows, [int(l) for l in own_lists], nlist, k, threads())
    del rows
    owners = np.frombuffer(r[0], dtype="<u4")
    stats = {
        "lw_owners": int(owners.size),
        "lw_rows_loaded": int(loaded),
        "lw_own_bytes": own_bytes,
        "lw_halo_bytes": halo_bytes,
    }
    nb = np.frombuffer(r[1], dtype="<u4")
    cs = np.frombuffer(r[2], dtype="<f4")
    home = own_home[np.searchsorted(own_rows, owners)]
    stats["lw_out_bytes"] = write_graph(store, out, owners, nb, cs, k, stats, home)
    return stats


def write_pairs(store: Store, out: str, a: bytes, b: bytes, cosine: bytes) -> int:
    """Writes pairs given as the wheel's little-endian bytes, atomically."""
    pairs = pa.table(
        {
            "a": pa.array(np.frombuffer(a, dtype="<u4")),
            "b": pa.array(np.frombuffer(b, dtype="<u4")),
            "cosine": pa.array(np.frombuffer(cosine, dtype="<f8")),
        }
    )
    return store.write(out, lambda f: pq.write_table(pairs, f))


def rows_of(matrices: list[Matrix], starts: list[int], ids: np.ndarray) -> np.ndarray:
    """The normalised rows of the global (increasing) ``ids``, read from the shards that hold
    them (only those rows are read)."""
    parts = []
    bounds = np.searchsorted(ids, np.asarray(starts[1:]), side="left")
    for matrix, start, chunk in zip(matrices, starts, np.split(ids, bounds)):
        if chunk.size:
            parts.append(matrix.rows(chunk.astype(np.int64) - start))
    return np.concatenate(parts)


def saturated_tile(
    index: int,
    first: np.ndarray,
    second: np.ndarray,
    matrices: list[Matrix],
    starts: list[int],
    threshold: float,
    out: str,
) -> dict[str, int]:
    """Stage 6: one tile of the exact search among the saturated rows (the single process
    compares them all with each other): the pairs >= ``threshold`` between the blocks ``first``
    and ``second`` (global rows, increasing; the same block for a diagonal tile)."""
    maybe_fail("saturated", index)
    store = matrices[0].store
    if not store.exists(out):
        xa = rows_of(matrices, starts, first)
        xb = xa if second is first or np.array_equal(first, second) else rows_of(matrices, starts, second)
        a, b, c = _labelwise.tile_pairs(
            xa.tobytes(), first.astype("<u4").tobytes(), xb.tobytes(), second.astype("<u4").tobytes(),
            xa.shape[1], threshold, threads(),
        )
        write_pairs(store, out, a, b, c)
    rows = first.size + (0 if np.array_equal(first, second) else second.size)
    return {"lw_rows_read": int(rows), "lw_pairs": store.parquet(out).metadata.num_rows}


# The label-dependent half's map tasks (``label_half="map"``): each reads one normalised shard
# and runs the library's per-row code on it (``labelwise.round.rows``), so the driver never holds
# the matrix and the answers are one machine's bit for bit.


def shard_rows(index: int, matrix: Matrix, local: np.ndarray) -> np.ndarray:
    """The rows ``local`` (increasing) of shard ``index``, reading only those."""
    maybe_fail("gather", index)
    return np.ascontiguousarray(matrix.rows(local.astype(np.int64)), dtype="<f4")


def shard_predict(
    index: int, matrix: Matrix, local: np.ndarray, spec: str, train: bytes, y: bytes, n_classes: int
) -> bytes:
    """Class probabilities of the rows ``local`` under the model ``spec`` fits on ``train``
    (every task fits the same model: fitting is deterministic)."""
    maybe_fail("predict", index)
    x = shard_rows(index, matrix, local)
    return bytes(_labelwise.rows_predict(spec, train, y, n_classes, x.tobytes(), x.shape[1], threads()))


def shard_nearest(matrix: Matrix, centroids: bytes, d: int) -> bytes:
    """Every row's nearest centroid (u32 bytes)."""
    m = matrix.load()
    return bytes(_labelwise.rows_nearest_centroids(m.tobytes(), centroids, d, threads()))


def shard_sums(matrix: Matrix, assignment: bytes, k: int, start: bytes | None) -> bytes:
    """The cluster sums carried in from the shards before, plus this shard's rows in order."""
    m = matrix.load()
    return bytes(_labelwise.rows_cluster_sums(m.tobytes(), assignment, k, start, m.shape[1]))


def shard_distance(matrix: Matrix, assignment: bytes, centroids: bytes, sizes: bytes, sums: bytes) -> bytes:
    """Rarity's centroid component of this shard's rows, from the whole pool's sums."""
    m = matrix.load()
    return bytes(_labelwise.rows_centroid_distance(m.tobytes(), assignment, centroids, sizes, sums, m.shape[1]))


def shard_top_k(matrix: Matrix, queries: bytes, self_local: bytes, k: int) -> tuple[bytes, bytes]:
    """Each query's ``k`` nearest rows of this shard (local indices)."""
    m = matrix.load()
    nb, cs = _labelwise.rows_top_k(m.tobytes(), queries, self_local, k, m.shape[1], threads())
    return bytes(nb), bytes(cs)


def shard_source(shard: Shard, embedding_col: str) -> pa.Table:
    """The input rows of one shard as the user wrote them, every column but the embeddings
    (the normalise stage read those)."""
    f = shard.open()
    columns = [c for c in f.schema_arrow.names if c != embedding_col]
    return f.read_row_groups(list(shard.row_groups), columns=columns)


def source_name(shard: Shard) -> str:
    """How messages name a shard of the input."""
    return f"{shard.name} (row groups {shard.row_groups[0]}..{shard.row_groups[-1]})"


def shard_items(shard: Shard, argv: list[str], embedding_col: str, own: pa.RecordBatch, store: Store, out: str) -> int:
    """One part of items.parquet: the driver's columns for this shard's rows joined with the
    shard's carried columns (read here, so they never reach the driver), written atomically
    into the store (the driver moves it into the output folder)."""
    maybe_fail("items", shard.index)
    table = shard_source(shard, embedding_col)
    if store.local:
        store.filesystem.create_dir(out.rsplit("/", 1)[0], recursive=True)
        return int(_labelwise.items_part(argv, table.to_reader(), source_name(shard), own, Path(out)))
    with tempfile.TemporaryDirectory() as tmp:
        part = os.path.join(tmp, "part.parquet")
        rows = int(_labelwise.items_part(argv, table.to_reader(), source_name(shard), own, Path(part)))
        store.upload(part, out)
    return rows


def shard_carried(shard: Shard, argv: list[str], embedding_col: str, local: np.ndarray) -> pa.RecordBatch:
    """The carried columns of this shard's rows ``local`` (in that order), read from the row
    groups holding them only: a batch's picks touch a few row groups of each shard, and from
    object storage every row group skipped is a ranged read saved."""
    f = shard.open()
    sizes = np.array([f.metadata.row_group(g).num_rows for g in shard.row_groups], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    local = local.astype(np.int64)
    if local.size and not 0 <= local.min() <= local.max() < starts[-1]:
        raise RuntimeError(f"carried rows {local.min()}..{local.max()} of a shard of {starts[-1]}")
    group = np.searchsorted(starts, local, side="right") - 1  # position in shard.row_groups
    # No rows: the first row group still gives the columns' schema (the loader refuses none).
    needed = np.unique(group) if local.size else np.zeros(1, dtype=np.int64)
    # Where each needed row group starts once the others are left out.
    kept_start = np.zeros(sizes.size, dtype=np.int64)
    kept_start[needed] = np.cumsum(sizes[needed]) - sizes[needed]
    rows = kept_start[group] + (local - starts[group])
    columns = [c for c in f.schema_arrow.names if c != embedding_col]
    table = f.read_row_groups([shard.row_groups[i] for i in needed], columns=columns)
    name = f"{shard.name} (row groups {', '.join(str(shard.row_groups[i]) for i in needed)})"
    return _labelwise.carried_rows(argv, table.to_reader(), name, rows.astype("<u4").tobytes())

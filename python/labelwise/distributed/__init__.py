"""``labelwise.distributed``: the label-independent half of ``plan`` on a Ray cluster.

The neighbour graph and the near-duplicate pairs are what does not fit one machine at 10^8
items; they are built here as Ray tasks over Parquet shards, with the library's own Rust
kernels (the wheel runs on every worker):

1. **normalise**: each shard's embeddings validated and L2-normalised as the loader does;
2. **fit**: spherical k-means into ~sqrt(n) lists on a seeded sample (on the driver);
3. **lloyd**: Lloyd steps over all the data, per-shard sums (map) added on the driver (reduce);
4. **assign**: each row's home list and its ``probes`` nearest lists, written as Parquet
   partitioned by home list with Ray Data (the one shuffle);
5. **search**: per group of adjacent lists, a task reads its lists plus the *halo* (the lists
   its rows probe) and computes its rows' top-k neighbours;
6. **refine**: per group, the single-process route's neighbour-of-neighbour pass, reading the
   searched lists of its rows' first neighbours and the rows of their candidates; it also
   emits the pairs >= T its rows' refined lists link, and its *saturated* rows (whose k-th
   neighbour is still >= T);
7. **saturated**: the saturated rows compared exactly with each other in tiles (as the single
   process compares them), so the cluster's pairs are the single process's given the graph;
8. **merge**: the driver assembles the graph and stores it in the single-machine cache under
   the key ``plan --index partitioned`` looks up, then runs ``labelwise.plan`` on the driver:
   duplicates, auto-labels, rarity, the batch and the budget are the single-machine code on
   that graph, and the output files are the single-machine ones. With ``label_half="map"`` the
   driver loads no embeddings instead: the round reads rows through :class:`_ClusterRows`
   (Ray tasks over the normalised shards) and writes the same files.

Every stage's output is named by a hash of its inputs (shard contents, centroids, parameters),
under ``work_dir`` (a shared folder, or object storage: ``_store``): a rerun after the driver
died resumes from the finished stages (and the finished groups of an unfinished search), and a
retried task rewrites the same bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import InputError, Result, _argv, _labelwise, parameters
from .. import _run as _run_command
from . import _inputs
from ._store import Matrix, Store, open_store
from ._tasks import FAULT_ENV, Lists, Shard

__all__ = ["DistributedPlan", "StageRecord", "plan", "FAULT_ENV"]

#: Rows per shard of the input (whole row groups are packed up to this).
SHARD_ROWS = 65_536
#: Lloyd iterations on the sample (the partitioned route's `PARTITION_ITERS`).
FIT_ITERS = 10
#: Saturated rows per block of the exact search among them (a tile holds two blocks).
SATURATED_BLOCK = 16_384
#: In object storage, where every object is a request to write and to read, the shuffle goes
#: through Ray's hash shuffle first so that it writes one file per list; on a shared disk it
#: writes straight from the map, a file per (write task, list), which measured 3× faster at
#: 200k (BENCHMARKS.md, "No shared disk").
LIST_FILES_IN_OBJECT_STORAGE = True
#: Version of the stage layout: bump to invalidate every stage output.
STAGE_VERSION = "labelwise-distributed-v3"


@dataclasses.dataclass
class StageRecord:
    """One stage of a run: wall time, whether it was resumed, and what it moved."""

    name: str
    seconds: float
    resumed: bool
    tasks: int
    bytes_read: int = 0
    bytes_written: int = 0
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class DistributedPlan:
    """What :func:`plan` did: the single-machine plan's result on the distributed graph, the
    stages, the near-duplicate pairs the cluster found (row indices ``a``, ``b`` and
    ``cosine``; ``None`` with ``label_half="map"``, whose driver hands them to the round and
    keeps no copy: read duplicate_pairs.parquet), and where the stage outputs live."""

    result: Result
    stages: list[StageRecord]
    pairs: Any
    #: The stage outputs: a local folder, or their URI in object storage.
    work_dir: Path | str
    graph_recall_at_10: float

    def stage(self, name: str) -> StageRecord:
        """The record of stage ``name``."""
        return next(s for s in self.stages if s.name == name)


def _sha(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def _cache_dir(inputs: _inputs.Inputs, paths: list[str], cache: Any) -> Path:
    """The cache the single-machine run would use (``CacheChoice::from_flags``); for files in
    object storage, ``.labelwise-cache`` in the working directory."""
    if cache is not None:
        return Path(cache)
    if inputs.remote:
        return Path(".labelwise-cache")
    first = Path(paths[0])
    base = first if first.is_dir() else (first.parent if str(first.parent) else Path("."))
    return base / ".labelwise-cache"


def _shards(inputs: _inputs.Inputs, shard_rows: int) -> list[Shard]:
    """Whole row groups of each file packed into shards of about ``shard_rows`` rows."""
    shards: list[Shard] = []
    start = 0
    fs, scheme = inputs.filesystem, inputs.scheme
    for path in inputs.files:
        md = inputs.open(path).metadata
        groups: list[int] = []
        rows = 0
        for g in range(md.num_row_groups):
            groups.append(g)
            rows += md.row_group(g).num_rows
            if rows >= shard_rows:
                shards.append(Shard(len(shards), path, tuple(groups), start, rows, fs, scheme))
                start += rows
                groups, rows = [], 0
        if groups:
            shards.append(Shard(len(shards), path, tuple(groups), start, rows, fs, scheme))
            start += rows
    return shards


def _source_key(inputs: _inputs.Inputs, s: Shard, stat: tuple[int, int], id_col: str, emb_col: str) -> str:
    """The key of shard ``s``'s normalised rows: its file (``stat``: size and mtime), row
    groups and columns."""
    return _sha("source", inputs.identity(s.path), *stat, s.row_groups, id_col, emb_col)


def _chain(centroids: np.ndarray) -> list[int]:
    """Lists in a greedy nearest-neighbour chain through the centroids, so that cutting the
    chain gives groups of adjacent lists (whose halos overlap)."""
    n = centroids.shape[0]
    sims = centroids @ centroids.T
    seen = np.zeros(n, dtype=bool)
    order = [0]
    seen[0] = True
    for _ in range(n - 1):
        s = np.where(seen, -np.inf, sims[order[-1]])
        nxt = int(np.argmax(s))
        order.append(nxt)
        seen[nxt] = True
    return order


def _groups(order: list[int], sizes: np.ndarray, group_rows: int) -> list[list[int]]:
    """The chain cut into groups of about ``group_rows`` rows (each list in one group)."""
    groups: list[list[int]] = [[]]
    rows = 0
    for l in order:
        if rows >= group_rows and groups[-1]:
            groups.append([])
            rows = 0
        groups[-1].append(l)
        rows += int(sizes[l])
    return groups


class _Run:
    """The driver of one distributed plan: stages in order, each resumable."""

    def __init__(
        self, paths: list[str], inputs: _inputs.Inputs, flags: dict[str, Any], store: Store, opts: dict[str, Any]
    ):
        import ray

        self.ray = ray
        self.paths = paths
        self.inputs = inputs
        #: The pool's table on the driver route when its files are not local (read once).
        self.pool: Any = None
        self.flags = flags
        self.store = store
        self.opts = opts
        self.stages: list[StageRecord] = []
        defaults = parameters("plan")

        def flag(name: str) -> Any:
            v = flags.get(name)
            return v if v is not None else defaults[name].default

        self.k = int(flag("k"))
        self.probes = int(flag("probes"))
        self.seed = int(flag("seed"))
        self.threshold = float(flag("threshold"))
        self.id_col = str(flag("id_col"))
        self.emb_col = str(flag("embedding_col"))

    def _record(self, name: str, t0: float, resumed: bool, tasks: int, **kw: Any) -> None:
        self.stages.append(StageRecord(name, time.perf_counter() - t0, resumed, tasks, **kw))
        if os.environ.get(FAULT_ENV, "") == f"driver:after-{name}":
            os.kill(os.getpid(), 9)

    def _get(self, refs: Any) -> Any:
        """``ray.get``, with a task's bad-input error raised as the :class:`InputError` it was
        (the CLI's one-line message) rather than wrapped in Ray's traceback."""
        try:
            return self.ray.get(refs)
        except Exception as e:  # noqa: BLE001 - Ray's task error class is made at run time
            cause = getattr(e, "cause", None)
            # By name: the worker's class is unpickled as `_labelwise.InputError`, which a
            # driver may hold as a second copy of the extension module.
            if type(cause).__name__ == "InputError" and isinstance(cause, ValueError):
                raise InputError(str(cause)) from None
            raise

    def _task_args(self) -> dict[str, Any]:
        """Ray options of every task: one CPU, retried when its worker dies; the fault hook
        (tests) travels to the workers in their environment."""
        args: dict[str, Any] = {"num_cpus": 1, "max_retries": 4}
        spec = os.environ.get(FAULT_ENV, "")
        if spec and not spec.startswith("driver:"):
            args["runtime_env"] = {"env_vars": {FAULT_ENV: spec}}
        return args

    def _remote(self, fn: Any) -> Any:
        return self.ray.remote(**self._task_args())(fn)

    def normalise(self) -> tuple[list[Shard], list[Matrix], str, int, int]:
        t0 = time.perf_counter()
        from . import _tasks

        shards = _shards(self.inputs, self.opts["shard_rows"])
        # Once per file (a HEAD request on object storage), not once per shard.
        stats = {f: self.inputs.stat(f) for f in self.inputs.files}
        keys = [_source_key(self.inputs, s, stats[s.path], self.id_col, self.emb_col) for s in shards]
        outs = [Matrix(self.store, self.store.path("normalised", f"{key}.npy")) for key in keys]
        resumed = all(o.exists() for o in outs)
        task = self._remote(_tasks.normalise_shard)
        metas = self._get([task.remote(s, self.id_col, self.emb_col, o) for s, o in zip(shards, outs)])
        pool_key = _sha(STAGE_VERSION, [m["sha"] for m in metas])
        n = sum(m["rows"] for m in metas)
        d = metas[0]["dim"]
        src = sum(size for size, _ in stats.values())
        self._record("normalise", t0, resumed, len(shards), bytes_read=src,
                     bytes_written=sum(m["bytes"] for m in metas), detail={"rows": n, "dim": d})
        return shards, outs, pool_key, n, d

    def fit(self, shards: list[Shard], outs: list[Matrix], pool_key: str, n: int, nlist: int) -> np.ndarray:
        t0 = time.perf_counter()
        from . import _tasks

        raw_rows = _labelwise.kmeans_sample_rows(n, nlist, self.seed)
        idx = np.frombuffer(raw_rows, dtype="<u8").astype(np.int64) if raw_rows is not None else np.arange(n)
        m = int(idx.size)
        key = _sha("fit", pool_key, nlist, m, FIT_ITERS, self.seed)
        path = self.store.path("stages", f"fit-{key}.npy")
        if self.store.exists(path):
            self._record("fit", t0, True, 0)
            return np.array(self.store.load_npy(path))
        task = self._remote(_tasks.sample_rows)
        refs = []
        for s, o in zip(shards, outs):
            local = idx[(idx >= s.start) & (idx < s.start + s.rows)] - s.start
            if local.size:
                refs.append(task.remote(o, local))
        sample = np.concatenate(self._get(refs)).astype("<f4")
        d = sample.shape[1]
        raw = _labelwise.kmeans_fit(sample.tobytes(), d, n, nlist, FIT_ITERS, self.seed, None)
        c = np.frombuffer(raw, dtype="<f4").reshape(nlist, d)
        self.store.save_npy(path, c)
        self._record("fit", t0, False, len(refs), bytes_written=sample.nbytes, detail={"sample": m})
        return c

    def lloyd(self, outs: list[Matrix], pool_key: str, c: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        from . import _tasks

        task = self._remote(_tasks.lloyd_map)
        counts = np.zeros(c.shape[0], dtype=np.uint64)
        steps = self.opts["lloyd_iters"]
        if steps is None:
            steps = _labelwise.kmeans_refine_steps(n, c.shape[0])
        for it in range(steps):
            t0 = time.perf_counter()
            key = _sha("lloyd", pool_key, hashlib.sha256(c.tobytes()).hexdigest())
            path = self.store.path("stages", f"lloyd-{key}.npz")
            if self.store.exists(path):
                z = np.load(io.BytesIO(self.store.read_bytes(path)))
                c, counts = z["centroids"], z["counts"]
                self._record(f"lloyd{it + 1}", t0, True, 0)
                continue
            parts = self._get([task.remote(o, c, i) for i, o in enumerate(outs)])
            sums = np.zeros_like(parts[0][0])
            counts = np.zeros_like(parts[0][1])
            for s, k in parts:  # integer sums: exact, whatever the order
                sums += s
                counts += k
            d = c.shape[1]
            raw = _labelwise.centroids_from_sums(sums.tobytes(), counts.tobytes(), c.astype("<f4").tobytes(), d)
            c = np.frombuffer(raw, dtype="<f4").reshape(c.shape).copy()
            z_bytes = io.BytesIO()
            np.savez(z_bytes, centroids=c, counts=counts)
            self.store.write_bytes(path, z_bytes.getvalue())
            moved = sum(p[0].nbytes + p[1].nbytes for p in parts)
            self._record(f"lloyd{it + 1}", t0, False, len(outs), bytes_read=sum(o.nbytes() for o in outs),
                         detail={"reduce_bytes": moved})
        return c, counts

    def assign(self, outs: list[Matrix], shards: list[Shard], pool_key: str, c: np.ndarray) -> Lists:
        """Every row's home and probed lists, written partitioned by home list (the shuffle).
        The write goes to a fresh attempt folder; ``_SUCCESS``, written last, names it and
        holds the manifest of its files, so a rerun after the driver died mid-write starts a
        new attempt and no reader sees a half-written one (object storage has no folder
        rename to publish it)."""
        t0 = time.perf_counter()
        from . import _tasks

        key = _sha("assign", pool_key, hashlib.sha256(c.tobytes()).hexdigest(), self.probes)
        store = self.store
        name = f"lists-{key}"
        lists_dir = store.path("stages", name)
        success = f"{lists_dir}/_SUCCESS"
        if store.exists(success):
            manifest = json.loads(store.read_bytes(success))
            self._record("assign", t0, True, 0)
            return Lists.from_manifest(store, name, lists_dir, manifest["files"])
        ray = self.ray
        ray.data.DataContext.get_current().enable_progress_bars = False
        attempt = f"attempt-{os.getpid()}-{time.time_ns()}"
        ds = ray.data.from_items([{"shard": s.index} for s in shards], override_num_blocks=len(shards))
        args = self._task_args()  # Ray Data retries its own map tasks when a worker dies
        ds = ds.map_batches(
            _tasks.assign_batch,
            batch_size=1,
            batch_format="pyarrow",
            num_cpus=args["num_cpus"],
            runtime_env=args.get("runtime_env"),
            fn_kwargs={"matrices": outs, "starts": [s.start for s in shards],
                       "centroids": c, "p": min(self.probes, c.shape[0])},
        )
        if LIST_FILES_IN_OBJECT_STORAGE and not store.local:
            # Hash-shuffled by home list: each list is in one block, and the write makes one
            # object per list instead of one per (write task, list).
            ds = ds.repartition(len(shards), keys=["home"])
        from ._sink import ListsDatasink

        sink = ListsDatasink(store, f"{lists_dir}/{attempt}", c.shape[0])
        ds.write_datasink(sink)
        files = [[home, path[len(lists_dir) + 1:], rows, size] for home, path, rows, size in sink.written]
        store.write_bytes(success, json.dumps({"attempt": attempt, "files": files}).encode())
        for stale in store.folders(lists_dir):  # attempts of drivers that died mid-write
            if not stale.endswith("/" + attempt):
                store.remove_folder(stale)
        lists = Lists.from_manifest(store, name, lists_dir, files)
        self._record("assign", t0, False, len(shards), bytes_read=sum(o.nbytes() for o in outs),
                     bytes_written=lists.nbytes(), detail={"shuffle_bytes": lists.nbytes()})
        return lists

    def search(self, lists: Lists, c: np.ndarray, n: int) -> tuple[list[str], list[list[int]]]:
        t0 = time.perf_counter()
        from . import _tasks

        nlist = c.shape[0]
        sizes = lists.sizes(nlist)
        group_rows = self.opts["group_rows"] or max(1, math.ceil(n / (4 * self.opts["workers"])))
        groups = _groups(_chain(c), sizes, group_rows)
        k = min(self.k, n - 1)
        key = _sha("search", lists.name, k, groups)
        gdir = self.store.path("stages", f"graph-{key}")
        outs = [f"{gdir}/group-{i:05d}.parquet" for i in range(len(groups))]
        done = sum(self.store.exists(o) for o in outs)
        task = self._remote(_tasks.search_group)
        lists_ref = self.ray.put(lists)
        stats = self._get([
            task.remote(i, g, lists_ref, nlist, k, o) for i, (g, o) in enumerate(zip(groups, outs))
        ])
        halo = sum(s.get("lw_halo_bytes", 0) for s in stats)
        own = sum(s.get("lw_own_bytes", 0) for s in stats)
        self._record("search", t0, done == len(groups), len(groups), bytes_read=own + halo,
                     bytes_written=sum(self.store.size(o) for o in outs),
                     detail={"groups": len(groups), "groups_resumed": done, "halo_bytes": halo,
                             "own_bytes": own, "rows_loaded": sum(s.get("lw_rows_loaded", 0) for s in stats),
                             "group_rows": group_rows})
        return outs, groups

    def refine(self, lists: Lists, searched: list[str], groups: list[list[int]], n: int) -> list[str]:
        t0 = time.perf_counter()
        from . import _tasks

        k = min(self.k, n - 1)
        store = self.store
        rdir = store.path("stages", f"refined-{_sha('refine', _base(_parent(searched[0])), self.threshold)}")
        outs = [f"{rdir}/group-{i:05d}.parquet" for i in range(len(groups))]
        done = sum(store.exists(o) for o in outs)
        nlist = sum(len(g) for g in groups)
        home = np.zeros(n, dtype=np.uint32)
        group_of_list = np.zeros(nlist, dtype=np.uint32)
        for gi, g in enumerate(groups):
            group_of_list[g] = gi
            t = store.read_table(searched[gi], ["row", "home"])  # the search recorded each row's list
            home[np.asarray(t.column("row"))] = np.asarray(t.column("home"))
        home_ref = self.ray.put(home)
        task = self._remote(_tasks.refine_group)
        lists_ref = self.ray.put(lists)
        stats = self._get([
            task.remote(i, home_ref, group_of_list, lists_ref, searched, k, self.threshold, o)
            for i, o in enumerate(outs)
        ])
        halo = sum(s.get("lw_halo_bytes", 0) for s in stats)
        graph = sum(s.get("lw_graph_bytes", 0) for s in stats)
        self._record("refine", t0, done == len(groups), len(groups), bytes_read=halo + graph,
                     bytes_written=sum(store.size(o) for o in outs),
                     detail={"groups_resumed": done, "halo_bytes": halo, "graph_bytes": graph,
                             "broadcast_bytes": home.nbytes,
                             "candidates": sum(s.get("lw_candidates", 0) for s in stats),
                             "edge_pairs": sum(s.get("lw_pairs", 0) for s in stats),
                             "saturated": sum(s.get("lw_saturated", 0) for s in stats)})
        return outs

    def saturated(self, outs: list[Matrix], shards: list[Shard], refined: list[str], d: int) -> list[str]:
        """The exact search among the saturated rows, in tiles of two blocks (upper triangle)."""
        t0 = time.perf_counter()
        from . import _tasks

        store = self.store
        sat = np.sort(np.concatenate(
            [store.load_npy(_tasks.sibling(r, ".saturated.npy")) for r in refined] + [np.zeros(0, "<u4")]
        ))
        size = self.opts["saturated_block"]
        blocks = [sat[i:i + size] for i in range(0, sat.size, size)]
        tiles = [(i, j) for i in range(len(blocks)) for j in range(i, len(blocks))]
        sdir = store.path("stages", f"saturated-{_sha('saturated', _base(_parent(refined[0])), size)}")
        files = [f"{sdir}/tile-{i:05d}-{j:05d}.parquet" for i, j in tiles]
        done = sum(store.exists(f) for f in files)
        task = self._remote(_tasks.saturated_tile)
        refs = [self.ray.put(b) for b in blocks]
        starts = [s.start for s in shards]
        stats = self._get([
            task.remote(t, refs[i], refs[j], outs, starts, self.threshold, f)
            for t, ((i, j), f) in enumerate(zip(tiles, files))
        ])
        self._record("saturated", t0, done == len(tiles), len(tiles),
                     bytes_read=sum(s["lw_rows_read"] for s in stats) * d * 4,
                     bytes_written=sum(store.size(f) for f in files),
                     detail={"saturated": int(sat.size), "blocks": len(blocks), "tiles_resumed": done,
                             "pairs": sum(s["lw_pairs"] for s in stats)})
        return files

    def merge(
        self, refined: list[str], tiles: list[str], n: int, to_cache: bool = True
    ) -> tuple[Any, float | None, _labelwise.PoolGraph | None]:
        """The groups' graphs and pairs, merged: ``(pairs, recall, graph)``. The graph is
        assembled in one ``PoolGraph`` (the driver holds it once) and, with ``to_cache``, handed
        to the cache (``graph`` is then ``None``)."""
        import pyarrow as pa

        t0 = time.perf_counter()
        k = min(self.k, n - 1)
        graph = _labelwise.PoolGraph(n, k)
        pairs = []
        read = 0
        from . import _tasks

        store = self.store
        for f in refined:
            read += store.size(f)
            rows, gnb, gcs = _tasks.read_graph(store, f, k)
            graph.put(rows.astype("<u4").tobytes(), np.ascontiguousarray(gnb, dtype="<u4").tobytes(),
                      np.ascontiguousarray(gcs, dtype="<f4").tobytes())
            pairs.append(store.read_table(_tasks.sibling(f, ".pairs.parquet")))
        if graph.missing():
            raise RuntimeError("distributed graph: some rows were not searched by any group")
        pairs += [store.read_table(f) for f in tiles]
        pairs_t = _unique_pairs(pa.concat_tables(pairs))
        if not to_cache:
            self._record("merge", t0, False, 1, bytes_read=read, detail={"pairs": pairs_t.num_rows})
            return pairs_t, None, graph
        argv = self.plan_argv()
        key, recall, items = _labelwise.cache_graph(argv, graph, **self.pool_stream(None))
        if items != n:
            raise RuntimeError(f"the driver loaded {items} items, the cluster {n}")
        self._record("merge", t0, False, 1, bytes_read=read, detail={"cache_key": key, "pairs": pairs_t.num_rows})
        return pairs_t, recall, None

    def plan_on_rows(
        self, out: str | os.PathLike[str], outs: list[Matrix], shards: list[Shard], pool_key: str, n: int, d: int,
        graph: _labelwise.PoolGraph, pairs: list[Any],
    ) -> Result:
        """``plan`` on the driver with the rows left on the cluster (``label_half="map"``)."""
        from .. import _TABLES

        t0 = time.perf_counter()
        rows = _ClusterRows(self, outs, shards, n, d)
        argv = _argv("plan", self.paths, self.plan_flags())
        argv += ["--out", os.fspath(out)]
        # ``pairs`` (record batches) are read in place through Arrow's C interface and the
        # list is emptied once the round has its copy; the tables as large as the pool (items,
        # pairs, auto-labels) are not handed back: read their files.
        label_col = self.flags.get("label_col") or "label"
        tables, summary = _labelwise.plan_rows(
            argv, rows, n, d, graph, pairs,
            pool_key=pool_key, write_out=True, tables=list(_TABLES["plan"]),
            **self.pool_stream([self.id_col, label_col]),
        )
        self._record("plan", t0, False, sum(rows.calls.values()), detail={"label_half": "map", "calls": rows.calls})
        return Result(summary=json.loads(summary), **tables)

    def plan_on_driver(self, out: str | os.PathLike[str] | None) -> Result:
        """The single-machine ``plan`` on the driver, which finds the cluster's graph in the cache."""
        t0 = time.perf_counter()
        stream = self.pool_stream(None)
        data = stream["data"] if stream else self.paths
        result = _run_command("plan", data, out, self.plan_flags(), name=stream.get("source_name"))
        self.pool = None
        self._record("plan", t0, False, 1, detail={"graph_cache_hit": result.summary["graph"]["cache_hit"]})
        return result

    def pool_stream(self, columns: list[str] | None) -> dict[str, Any]:
        """The wheel's ``data=`` and ``source_name=`` for a driver's read of the pool: none for
        local files (the wheel reads the paths as the CLI does); for files elsewhere, a stream of
        ``columns`` read through the filesystem, or with ``None`` the whole pool, fetched once
        for the graph's store and the plan (both load it; the wheel shares its buffers)."""
        if not self.inputs.remote:
            return {}
        if columns is not None:
            return {"data": self.inputs.stream(columns), "source_name": " ".join(self.paths)}
        if self.pool is None:
            self.pool = self.inputs.stream(None).read_all()
        return {"data": self.pool, "source_name": " ".join(self.paths)}

    def plan_argv(self) -> list[str]:
        return _argv("plan", self.paths, self.plan_flags()) + ["--out", "<no output>"]

    def plan_flags(self) -> dict[str, Any]:
        f = dict(self.flags)
        f["index"] = "partitioned"
        f["cache"] = str(self.opts["cache"])
        f.pop("no_cache", None)
        return f


class _ClusterRows:
    """The pool's rows as the driver's round reads them with ``label_half="map"``
    (``labelwise.round.rows.PoolRows``): a gather by id, a prediction pass with the training set
    broadcast, a nearest-centroid pass, rarity's centroid distance and an exact top-k, each as
    Ray tasks over the normalised shards. Ids and answers are little-endian bytes."""

    def __init__(self, run: _Run, outs: list[Matrix], shards: list[Shard], n: int, d: int):
        from . import _tasks

        self.run, self.matrices, self.n, self.d = run, outs, n, d
        self.shards = shards
        self.starts = np.asarray([s.start for s in shards], dtype=np.int64)
        self.tasks = _tasks
        self.calls: dict[str, int] = {}
        #: Parts of items.parquet being written: (task, its file in the store, where it goes),
        #: into a folder of the store named once per write.
        self.items_parts: list[tuple[Any, str, str]] = []
        self.items_dir = ""

    def _count(self, what: str) -> None:
        self.calls[what] = self.calls.get(what, 0) + 1

    def _by_shard(self, ids: np.ndarray) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
        """(order sorting ``ids``, [(shard, local rows in that order)]) for the shards hit."""
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        bounds = np.searchsorted(sorted_ids, self.starts[1:], side="left")
        parts = [(s, chunk - self.starts[s]) for s, chunk in enumerate(np.split(sorted_ids, bounds)) if chunk.size]
        return order, parts

    def _answers(self, ids: np.ndarray, task: Any, *args: Any) -> tuple[np.ndarray, Iterator[tuple[int, Any]]]:
        """Starts ``task(shard, matrix, local rows, *args)`` on every shard holding some of
        ``ids`` and returns (order sorting ``ids``, each shard's ``(rows, answer)`` in shard
        order, fetched only as the iterator reaches it: one answer on the driver at a time)."""
        order, parts = self._by_shard(ids)
        remote = self.run._remote(task)
        refs = [remote.remote(s, self.matrices[s], local, *args) for s, local in parts]

        def fetched() -> Iterator[tuple[int, Any]]:
            for (_, local), ref in zip(parts, refs):
                yield local.size, self.run._get(ref)

        return order, fetched()

    def _gathered(self, ids: np.ndarray, task: Any, width: int, dtype: str, *args: Any) -> bytearray:
        """The shards' answers to ``task`` (see ``_answers``) put back in the order of ``ids``,
        in a bytearray the wheel reads in place (filled through a numpy view: no ``tobytes()``
        copy of the whole answer)."""
        buf = bytearray(ids.size * width * np.dtype(dtype).itemsize)
        out = np.frombuffer(buf, dtype=dtype).reshape(ids.size, width)
        if ids.size == 0:
            return buf
        order, answers = self._answers(ids, task, *args)
        at = 0
        for size, a in answers:
            rows = np.frombuffer(a, dtype=dtype).reshape(size, width) if isinstance(a, bytes) else a
            out[order[at:at + size]] = rows
            at += size
            del a, rows
        return buf

    def gather(self, ids: bytes) -> bytearray:
        self._count("gather")
        idx = np.frombuffer(ids, dtype="<u8").astype(np.int64)
        return self._gathered(idx, self.tasks.shard_rows, self.d, "<f4")

    def _prediction(
        self, spec: str, train: bytes, y: bytes, n_classes: int, query: bytes
    ) -> tuple[np.ndarray, tuple[Any, ...]]:
        """The query rows and ``shard_predict``'s arguments, the training set put once."""
        self._count("predict")
        ray = self.run.ray
        return np.frombuffer(query, dtype="<u8").astype(np.int64), (spec, ray.put(train), ray.put(y), n_classes)

    def predict(self, spec: str, train: bytes, y: bytes, n_classes: int, query: bytes) -> bytearray:
        idx, args = self._prediction(spec, train, y, n_classes, query)
        return self._gathered(idx, self.tasks.shard_predict, n_classes, "<f4", *args)

    def predict_parts(
        self, spec: str, train: bytes, y: bytes, n_classes: int, query: bytes
    ) -> Iterator[tuple[int, Any]]:
        """``predict`` for ascending rows ``query``, answered a shard at a time: ``(rows,
        probabilities)`` for each shard holding some, in shard order, which is the query's. The
        tasks all start at once; the driver holds one shard's answer, not query × classes."""
        idx, args = self._prediction(spec, train, y, n_classes, query)
        return self._answers(idx, self.tasks.shard_predict, *args)[1]

    def nearest_centroids(self, centroids: bytes, k: int) -> bytes:
        self._count("nearest_centroids")
        remote = self.run._remote(self.tasks.shard_nearest)
        c = self.run.ray.put(centroids)
        return b"".join(self.run._get([remote.remote(m, c, self.d) for m in self.matrices]))

    def centroid_distance(self, centroids: bytes, assignment: bytes, sizes: bytes) -> bytes:
        self._count("centroid_distance")
        a = np.frombuffer(assignment, dtype="<u4")
        k = len(sizes) // 8
        ends = list(self.starts[1:]) + [self.n]
        parts = [a[s:e].tobytes() for s, e in zip(self.starts, ends)]
        # The sums pass from shard to shard in row order (one machine's f32 additions).
        sums_task = self.run._remote(self.tasks.shard_sums)
        sums = None
        for m, part in zip(self.matrices, parts):
            sums = sums_task.remote(m, part, k, sums)
        dist = self.run._remote(self.tasks.shard_distance)
        c = self.run.ray.put(centroids)
        refs = [dist.remote(m, part, c, sizes, sums) for m, part in zip(self.matrices, parts)]
        return b"".join(self.run._get(refs))

    def part_starts(self) -> list[int]:
        """First row of each part of items.parquet: one part per input shard."""
        return [int(s) for s in self.starts]

    def write_items_part(self, folder: str, index: int, own: Any) -> None:
        """Starts the task writing part ``index`` of items.parquet for the driver's ``folder``:
        the driver's columns ``own`` (a record batch) joined with the shard's carried columns.
        The task writes it into the stage store (the folder every node reaches), and
        :meth:`items_written` moves it to ``folder``, so ``out`` needs to be on the driver only."""
        self._count("items")
        store = self.run.store
        if not self.items_parts:
            self.items_dir = store.path(f"items-{os.getpid()}-{time.time_ns()}")
        remote = self.run._remote(self.tasks.shard_items)
        name = f"part-{index:05d}.parquet"
        argv = self.run.plan_argv()
        ref = remote.remote(self.shards[index], argv, self.run.emb_col, own, store, f"{self.items_dir}/{name}")
        self.items_parts.append((ref, f"{self.items_dir}/{name}", os.path.join(folder, name)))

    def items_written(self) -> None:
        """Waits for every part started by :meth:`write_items_part` and moves it into place."""
        parts, self.items_parts = self.items_parts, []
        self.run._get([ref for ref, _, _ in parts])
        for _, stored, local in parts:
            self.run.store.move_out(stored, local)
        if parts:
            self.run.store.remove_folder(self.items_dir)

    def carried_rows(self, ids: bytes) -> Any:
        """The carried columns of the rows ``ids`` (u64 bytes), in that order, as one record
        batch read by tasks from the input shards holding them."""
        import pyarrow as pa

        self._count("carried_rows")
        idx = np.frombuffer(ids, dtype="<u8").astype(np.int64)
        order, parts = self._by_shard(idx)
        if not parts:  # no rows: the schema, from an empty read of the first shard
            parts = [(0, np.zeros(0, dtype=np.int64))]
        remote = self.run._remote(self.tasks.shard_carried)
        argv = self.run.plan_argv()
        emb = self.run.emb_col
        answers = self.run._get([remote.remote(self.shards[s], argv, emb, local) for s, local in parts])
        table = pa.Table.from_batches(answers)
        inverse = np.empty_like(order)
        inverse[order] = np.arange(order.size)
        table = table.take(pa.array(inverse)).combine_chunks()
        batches = table.to_batches()
        return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)

    def exact_top_k(self, queries: bytes, self_ids: bytes, k: int) -> list[tuple[int, bytes, bytes]]:
        self._count("exact_top_k")
        me = np.frombuffer(self_ids, dtype="<u4").astype(np.int64)
        ends = list(self.starts[1:]) + [self.n]
        q = self.run.ray.put(queries)
        remote = self.run._remote(self.tasks.shard_top_k)
        refs, starts = [], []
        for m, s, e in zip(self.matrices, self.starts, ends):
            local = np.where((me >= s) & (me < e), me - s, np.iinfo(np.uint32).max).astype("<u4")
            refs.append(remote.remote(m, q, local.tobytes(), k))
            starts.append(int(s))
        return [(s, nb, cs) for s, (nb, cs) in zip(starts, self.run._get(refs))]


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0]


def _base(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _unique_pairs(t: Any) -> Any:
    """Pairs sorted by ``(a, b)``, each once: a pair two tasks found (both ends' lists link it,
    or a list edge between saturated rows) carries the same cosine from both."""
    import pyarrow as pa

    t = t.sort_by([("a", "ascending"), ("b", "ascending")])
    a, b = np.asarray(t.column("a")), np.asarray(t.column("b"))
    keep = np.ones(t.num_rows, dtype=bool)
    keep[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return t.filter(pa.array(keep))


def plan(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = None,
    *,
    work_dir: str | os.PathLike[str] | None = None,
    shard_rows: int = SHARD_ROWS,
    group_rows: int | None = None,
    lloyd_iters: int | None = None,
    saturated_block: int = SATURATED_BLOCK,
    address: str | None = None,
    label_half: str = "driver",
    filesystem: Any = None,
    **flags: Any,
) -> DistributedPlan:
    """``labelwise plan`` with its label-independent stages on the Ray cluster.

    ``paths`` are Parquet files or folders (read as the CLI reads them): local paths, URIs of
    any filesystem pyarrow reads (``s3://bucket/pool/``, ``gs://…``, ``hdfs://…``; credentials as
    pyarrow finds them), or paths inside ``filesystem`` (a ``pyarrow.fs.FileSystem``, which the
    tasks receive with their shards). Files that are not local are read where they are: by each
    task for its shard, and by the driver for the columns it loads. Keyword arguments are
    ``plan``'s flags (``k``, ``probes``, ``threshold``, ``seed``, ``target_precision``...).
    The graph is stored in the cache (``cache=`` or ``.labelwise-cache`` beside the first
    input; in the working directory for files that are not local) under the key of ``plan
    --index partitioned`` with the same flags; the driver then runs the single-machine ``plan``
    on it, which writes the usual files to ``out``.

    ``work_dir`` holds the stage outputs (default: ``distributed/`` in the cache), and must be
    a folder every node reaches: a shared mount (one machine's disk for a local cluster), or a
    URI of any filesystem pyarrow writes (``s3://bucket/labelwise-work``; with ``filesystem=``,
    a URI of its scheme is a folder inside it, with its credentials). A rerun with the same
    inputs resumes from them. ``out`` is written by the driver only, on either route. ``shard_rows`` sizes the map tasks, ``group_rows`` the
    search groups (default: the rows over 4 × the cluster's CPUs), ``lloyd_iters`` the Lloyd
    steps over all the data after the sampled fit (default: the single machine's, so both
    partitions are the same bit for bit), ``saturated_block`` the blocks of the exact
    search among saturated rows (a task compares two). Connects with ``ray.init(address)`` unless
    Ray is already initialised.

    ``label_half`` says where the label-dependent half reads the rows: ``"driver"`` loads the
    pool on the driver and runs the single-machine ``plan`` there; ``"map"`` keeps the rows on
    the cluster — the driver loads the ids and labels only, and every read of the embeddings
    (the labeled rows, a prediction pass with the model's training set broadcast, the
    rarity clusters, a shortlist) is Ray tasks over the normalised shards. The carried
    columns stay on the cluster too: ``items.parquet`` is then a folder of parts, one
    per input shard, each written by a task that joins the driver's columns for its rows with
    the shard's carried columns, and the batch's carried columns are gathered from the
    shards. ``result.items``, ``result.pairs`` and ``result.autolabels`` are then ``None``
    (tables as large as the pool are not handed back to the driver: read the files). Every other file is the same either
    way, and the parts read together are the driver route's items table.
    """
    import ray

    if label_half not in ("driver", "map"):
        raise ValueError(f"label_half must be 'driver' or 'map', got {label_half!r}")
    if label_half == "map" and out is None:
        raise ValueError("label_half='map' has the cluster write items.parquet's parts into out: give out=")
    path_list = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [os.fspath(p) for p in paths]
    if flags.get("no_cache"):
        raise ValueError("the distributed plan hands its graph to the driver through the cache: drop no_cache")
    if flags.get("index") not in (None, "partitioned"):
        raise ValueError("the distributed graph is the partitioned route's: index must be 'partitioned'")
    inputs = _inputs.resolve(path_list, filesystem)
    cache = _cache_dir(inputs, path_list, flags.get("cache"))
    store = open_store(os.fspath(work_dir) if work_dir is not None else str(cache / "distributed"), filesystem)
    work: Path | str = Path(store.root) if store.local else store.name(store.root)
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
    workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
    opts = {"shard_rows": shard_rows, "group_rows": group_rows, "lloyd_iters": lloyd_iters,
            "saturated_block": saturated_block, "workers": workers, "cache": cache}
    run = _Run(path_list, inputs, {k: v for k, v in flags.items() if k not in ("index", "cache")}, store, opts)
    shards, outs, pool_key, n, d = run.normalise()
    if n < 2:
        raise ValueError("the distributed plan needs at least two items")
    nlist = max(1, min(n, round(math.sqrt(n))))
    c = run.fit(shards, outs, pool_key, n, nlist)
    c, _ = run.lloyd(outs, pool_key, c, n)
    lists = run.assign(outs, shards, pool_key, c)
    searched, groups = run.search(lists, c, n)
    refined = run.refine(lists, searched, groups, n)
    tiles = run.saturated(outs, shards, refined, d)
    if label_half == "map":
        pairs, _, graph = run.merge(refined, tiles, n, to_cache=False)
        assert graph is not None
        batches = pairs.to_batches()
        del pairs  # the round's copy is the only one the driver keeps
        assert out is not None  # refused above
        result = run.plan_on_rows(out, outs, shards, pool_key, n, d, graph, batches)
        measured = float(result.summary["graph"]["recall_at_10"])
        return DistributedPlan(result=result, stages=run.stages, pairs=None, work_dir=work, graph_recall_at_10=measured)
    pairs, recall, _ = run.merge(refined, tiles, n)
    assert recall is not None  # the cache's store measured it
    result = run.plan_on_driver(out)
    return DistributedPlan(result=result, stages=run.stages, pairs=pairs, work_dir=work, graph_recall_at_10=recall)

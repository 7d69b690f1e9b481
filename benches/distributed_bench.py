"""labelwise.distributed against one process, on a local Ray cluster of two 1-CPU nodes.

    python benches/distributed_bench.py --pool /tmp/synth200k.parquet --out benches/results/distributed_200k.json

At 1M, run the two sides in separate processes (each peak RSS its own, nothing left over from
the other), the second comparing with the first's saved pairs:

    python benches/distributed_bench.py --pool P --out single.json --work W --single-only
    python benches/distributed_bench.py --pool P --out dist.json --work W --single-from single.json \
        --group-rows 25000

Starts the cluster (``ray.cluster_utils.Cluster``), runs

1. the single-process partitioned route (``labelwise.plan(index="partitioned")``, both cores);
2. the distributed plan (fresh cache and work dir);
3. the distributed plan again with a worker killed in the middle of the search
   (``--kill``), in a fresh cache;

and records wall time, peak RSS (the driver, and per Ray worker process, sampled every 0.2 s
with psutil), recall@10 of both graphs, the pair sets at T = 0.90 / 0.95, whether the output
files are byte-identical, and each stage's time and bytes. Stops the cluster at the end.
Needs ``pip install "ray[data]" psutil`` and the wheel built with ``maturin build --release``
for meaningful times.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import pathlib
import resource
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pyarrow.parquet as pq


def rss_parts() -> dict[str, int]:
    """This process's resident memory by kind (MB), from Linux's /proc: ``anon`` (the heap),
    ``file`` (mapped libraries) and ``shmem`` (shared memory it touched: Ray's object store
    objects it read); empty elsewhere."""
    try:
        lines = pathlib.Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {}
    kinds = {"RssAnon:": "anon", "RssFile:": "file", "RssShmem:": "shmem"}
    return {kinds[f[0]]: int(f[1]) // 1024 for f in (line.split() for line in lines) if f and f[0] in kinds}


class RssSampler:
    """Peak RSS per process of the Ray workers (``ray::`` processes) and of this driver, and
    when the driver's peak came (seconds from the start: the stage timings place it)."""

    def __init__(self) -> None:
        self.peak: dict[int, tuple[str, int]] = {}
        self.start = time.perf_counter()
        self.driver_peak_at = 0.0
        self.driver_peak_parts: dict[str, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.is_set():
            for p in psutil.process_iter(["pid", "name", "cmdline"]):
                try:
                    cmd = " ".join(p.info["cmdline"] or [])
                    if p.info["pid"] != me and (not cmd.startswith("ray::") or "Agent" in cmd):
                        continue  # Ray's own agents (dashboard, runtime env) are not workers
                    rss = p.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                name = "driver" if p.info["pid"] == me else cmd.split()[0]
                old = self.peak.get(p.info["pid"], ("", 0))
                if rss > old[1]:
                    self.peak[p.info["pid"]] = (name, rss)
                    if name == "driver":
                        self.driver_peak_at = time.perf_counter() - self.start
                        self.driver_peak_parts = rss_parts()
            time.sleep(0.2)

    def __enter__(self) -> RssSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()

    def summary(self) -> dict[str, Any]:
        workers = {pid: v for pid, v in self.peak.items() if v[0] != "driver"}
        return {
            "driver_peak_rss_mb": round(max((v[1] for v in self.peak.values() if v[0] == "driver"), default=0) / 2**20),
            "worker_peak_rss_mb": round(max((v[1] for v in workers.values()), default=0) / 2**20),
            "worker_processes": len(workers),
            "driver_peak_at_s": round(self.driver_peak_at, 1),
            "driver_peak_parts_mb": self.driver_peak_parts,
        }


def pairs_by_ids(t: Any, ids: list[str] | None, at: float) -> set[tuple[str, str]]:
    cos = t.column("cosine").to_pylist()
    if ids is None:
        a, b = t.column("id_a").to_pylist(), t.column("id_b").to_pylist()
    else:
        a = [ids[i] for i in t.column("a").to_pylist()]
        b = [ids[i] for i in t.column("b").to_pylist()]
    return {(x, y) for x, y, c in zip(a, b, cos) if c >= at}


def files(d: pathlib.Path) -> dict[str, Any]:
    """A run folder's outputs to compare: each file's bytes (summary.json and report.html hold
    timings: left out), and items.parquet, a file or the map route's folder of parts, as its
    table."""
    import pyarrow.parquet as pq

    out: dict[str, Any] = {}
    for p in sorted(d.iterdir()):
        if p.name == "items.parquet":
            out[p.name] = pq.read_table(p)
        elif p.is_file() and p.name not in ("summary.json", "report.html"):
            out[p.name] = p.read_bytes()
    return out


def _csv(path: pathlib.Path) -> Any:
    import pyarrow.csv as pcsv

    return pcsv.read_csv(path)


def write_report(path: str, report: dict[str, Any]) -> None:
    """The report as indented JSON at ``path`` (parent folders created)."""
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(path).write_text(json.dumps(report, indent=1, default=str) + "\n")


@contextlib.contextmanager
def local_cluster() -> Iterator[str]:
    """A local Ray cluster of two 1-CPU nodes, connected to; stopped when the block ends.
    Yields its address."""
    import ray
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    try:
        yield c.address
    finally:
        ray.shutdown()
        c.shutdown()


def run_parser(doc: str | None) -> argparse.ArgumentParser:
    """The flags every distributed benchmark takes: the pool, the report's path, a scratch
    folder and the pair threshold."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--threshold", type=float, default=0.90)
    return ap


def scratch_dir(work: str | None, prefix: str) -> pathlib.Path:
    """``work``, created if missing, or a new temporary folder."""
    scratch = pathlib.Path(work or tempfile.mkdtemp(prefix=prefix))
    scratch.mkdir(parents=True, exist_ok=True)
    return scratch


def main() -> None:
    ap = run_parser(__doc__)
    ap.add_argument("--kill", action="store_true", help="also run with a worker killed mid-search")
    ap.add_argument("--skip-single", action="store_true")
    ap.add_argument("--single-only", action="store_true", help="run the single process only")
    ap.add_argument("--single-from", help="a --single-only report (and its --work): compare with it")
    ap.add_argument("--group-rows", type=int, default=None, help="rows per search group")
    ap.add_argument("--shard-rows", type=int, default=None)
    ap.add_argument("--saturated-block", type=int, default=None)
    ap.add_argument("--skip-again", action="store_true",
                    help="skip re-running the single-machine plan on the distributed graph")
    args = ap.parse_args()
    sizing = {k: v for k, v in (("group_rows", args.group_rows), ("shard_rows", args.shard_rows),
                                ("saturated_block", args.saturated_block)) if v is not None}

    import labelwise
    from labelwise import distributed

    scratch = scratch_dir(args.work, "lw-dist-")
    pool = pathlib.Path(args.pool)
    flags = {"threshold": args.threshold, "seed": 0}
    report: dict[str, Any] = {"pool": str(pool), "rows": pq.read_metadata(pool).num_rows,
                              "machine": "2 shared cores, 23 GB", "flags": flags,
                              "load_average_start": os.getloadavg()}
    ids = pq.read_table(pool, columns=["id"]).column("id").to_pylist()

    single: Any = None
    if args.single_from:
        report["single"] = json.loads(pathlib.Path(args.single_from).read_text())["single"]
        out = scratch / "single" / "out"
        single = argparse.Namespace(
            summary={"graph": report["single"]["graph"]},
            pairs=pq.read_table(out / "duplicate_pairs.parquet"),
            batch=_csv(out / "batch.csv"),
        )
    elif not args.skip_single:
        t0 = time.perf_counter()
        with RssSampler() as s:
            single = labelwise.plan(pool, out=scratch / "single" / "out", index="partitioned",
                                    cache=scratch / "single" / "cache", **flags)
        report["single"] = {"seconds": round(time.perf_counter() - t0, 1), **s.summary(),
                            "load_average_end": os.getloadavg(),
                            "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                            "graph": single.summary["graph"], "timings": single.summary.get("timings")}
        print(json.dumps(report["single"]), flush=True)
    if args.single_only:
        write_report(args.out, report)
        return

    t_c = time.perf_counter()
    with local_cluster():
        report["cluster_start_seconds"] = round(time.perf_counter() - t_c, 1)
        runs = [("distributed", None)] + ([("worker_killed", "search:1")] if args.kill else [])
        for name, fault in runs:
            d = scratch / name
            if d.exists():
                shutil.rmtree(d)
            if fault:
                os.environ[distributed.FAULT_ENV] = f"{fault}:{d}.killed"
            t0 = time.perf_counter()
            with RssSampler() as s:
                r = distributed.plan(pool, out=d / "out", cache=d / "cache", **sizing, **flags)
            os.environ.pop(distributed.FAULT_ENV, None)
            rec: dict[str, Any] = {
                "seconds": round(time.perf_counter() - t0, 1), **s.summary(),
                "graph": r.result.summary["graph"],
                "stages": [dataclasses.asdict(x) for x in r.stages],
                "pairs": r.pairs.num_rows,
                # The cluster's pairs against the driver's single-machine plan on the same graph.
                "pairs_same_set_as_plan_on_same_graph": pairs_by_ids(r.pairs, ids, 0.0)
                == pairs_by_ids(r.result.pairs, None, 0.0),
            }
            if fault:
                rec["killed"] = pathlib.Path(f"{d}.killed").read_text().strip()
                rec["files_identical_to_distributed"] = files(d / "out") == files(scratch / "distributed" / "out")
            if single is not None:
                rec["recall_single"] = single.summary["graph"]["recall_at_10"]
                rec["recall_distributed"] = r.graph_recall_at_10
                for t in (0.90, 0.95):
                    a, b = pairs_by_ids(r.pairs, ids, t), pairs_by_ids(single.pairs, None, t)
                    rec[f"pairs_{t}"] = {"distributed": len(a), "single": len(b), "same_set": a == b,
                                         "only_distributed": len(a - b), "only_single": len(b - a)}
                assert r.result.batch is not None  # the driver route hands its tables back
                bd = set(r.result.batch.column("id").to_pylist())
                bs = set(single.batch.column("id").to_pylist())
                rec["batch_overlap_with_single_graph"] = round(len(bd & bs) / max(1, len(bs)), 4)
            rec["load_average_end"] = os.getloadavg()
            if not args.skip_again:
                # The single-machine plan on the distributed graph (same cache): identical files?
                again = labelwise.plan(pool, out=d / "again", index="partitioned", cache=d / "cache", **flags)
                rec["single_machine_on_same_graph_identical_files"] = files(d / "again") == files(d / "out")
                rec["single_machine_on_same_graph_cache_hit"] = again.summary["graph"]["cache_hit"]
            report[name] = rec
            print(json.dumps({k: v for k, v in rec.items() if k != "stages"}), flush=True)
            for x in rec["stages"]:
                print("  ", json.dumps(x), flush=True)
    if single is not None and "distributed" in report:
        report["overhead_ratio"] = round(report["distributed"]["seconds"] / report["single"]["seconds"], 2)
    report["sizing"] = sizing
    write_report(args.out, report)
    if not args.work:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

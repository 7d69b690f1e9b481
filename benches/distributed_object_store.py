"""``labelwise.distributed.plan`` on a pool in object storage against the same pool on local disk.

Starts an S3 endpoint on loopback (moto's server, a subprocess) and a local Ray cluster of two
1-CPU nodes (as ``distributed_bench.py``), uploads the pool, builds the graph stages once from
the local file, then runs the stages that read the input — ``normalise`` (each task reads its
shard's row groups) and ``plan`` (on the map route the driver reads the id and label columns,
and the items-part tasks the carried columns) — alternately from local disk and from S3, with
the normalised shards removed before each run so both read their input again (every later
stage resumes: the same rows give the same stage keys). Records those stages' times, the
driver's peak RSS, and whether the output files equal the first local run's::

    python benches/distributed_object_store.py --pool synth200k.parquet --out report.json

With ``--runs local-fresh,s3-fresh,s3-fresh-files`` it runs the whole plan afresh instead, with
the pool and the stage outputs on local disk, then both in S3 (``work_dir="s3://work/<run>"``:
no shared disk), then in S3 with the shuffle written as on a shared disk (a file per write task
and list, not hash-shuffled into one per list), and records every stage's time and bytes, and
the requests each S3 run made by method (from moto's request log).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from distributed_bench import RssSampler, files, local_cluster, run_parser, scratch_dir, write_report  # noqa: E402


@contextmanager
def s3_endpoint() -> Iterator[Any]:
    """moto's S3 server on a free loopback port, as a subprocess; yields a pyarrow filesystem."""
    from pyarrow import fs

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(S3_LOG, "w")  # moto logs one line per request
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log,
    )
    try:
        s3 = fs.S3FileSystem(access_key="bench", secret_key="bench", endpoint_override=f"127.0.0.1:{port}",
                             scheme="http", region="us-east-1", allow_bucket_creation=True)
        for _ in range(100):
            try:
                s3.create_dir("pools")
                break
            except OSError:
                time.sleep(0.2)
        yield s3
    finally:
        server.terminate()
        server.wait()
        log.close()


#: moto's request log (its werkzeug lines: ``"GET /bucket/key HTTP/1.1" 206``).
S3_LOG = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / "labelwise-bench-moto.log"


def requests_since(offset: int) -> dict[str, int]:
    """Requests in moto's log after byte ``offset``, by method."""
    counts: dict[str, int] = {}
    with open(S3_LOG, "rb") as f:
        f.seek(offset)
        for line in f:
            parts = re.sub(rb"\x1b\[[0-9;]*m", b"", line).split(b'"')  # werkzeug colours some lines
            method = parts[1].split(b" ")[0].decode() if len(parts) > 1 else ""
            if method in ("GET", "HEAD", "PUT", "POST", "DELETE"):
                counts[method] = counts.get(method, 0) + 1
    return counts


def fresh_run(distributed: Any, pool: pathlib.Path, where: str, scratch: pathlib.Path, s3: Any, i: int,
              flags: dict[str, Any]) -> dict[str, Any]:
    """The whole plan afresh: pool and stage outputs both local, or both in S3."""
    import dataclasses

    out, cache = scratch / f"out-{i}-{where}", scratch / f"cache-{i}"
    if where == "local-fresh":
        paths, extra = str(pool), {"work_dir": str(scratch / f"work-{i}")}
    else:
        paths, extra = "pools/bench", {"filesystem": s3, "work_dir": f"s3://work/run-{i}"}
    # s3-fresh-files: the shuffle written straight from the map, as on a shared disk.
    distributed.LIST_FILES_IN_OBJECT_STORAGE = where != "s3-fresh-files"
    offset = S3_LOG.stat().st_size
    t0 = time.perf_counter()
    with RssSampler() as sampler:
        r = distributed.plan(paths, out=out, cache=cache, label_half="map", **extra, **flags)
    return {"run": where, "seconds": round(time.perf_counter() - t0, 1), **sampler.summary(),
            "stages": [dataclasses.asdict(x) for x in r.stages], "s3_requests": requests_since(offset),
            "load_average_end": os.getloadavg()}


def main() -> None:
    ap = run_parser(__doc__)
    ap.add_argument("--runs", default="local,s3,local,s3", help="the measured runs, in order")
    args = ap.parse_args()

    from pyarrow import fs as pafs

    from labelwise import distributed

    scratch = scratch_dir(args.work, "lw-s3-")
    flags = {"threshold": args.threshold, "seed": 0}
    pool = pathlib.Path(args.pool)
    report: dict[str, Any] = {"pool": str(pool), "pool_bytes": pool.stat().st_size, "flags": flags,
                              "machine": "2 shared cores, 23 GB", "load_average_start": os.getloadavg()}
    cache = scratch / "cache"
    with s3_endpoint() as s3, local_cluster():
        t0 = time.perf_counter()
        pafs.copy_files(str(pool), f"pools/bench/{pool.name}", source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=s3)
        report["upload_seconds"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        distributed.plan(pool, out=scratch / "out-graph", cache=cache, label_half="map", **flags)
        report["graph_build_seconds"] = round(time.perf_counter() - t0, 1)
        reference = files(scratch / "out-graph")
        s3.create_dir("work")
        for i, where in enumerate(args.runs.split(",")):
            if "-fresh" in where:
                rec = fresh_run(distributed, pool, where, scratch, s3, i, flags)
                rec["files_identical"] = files(scratch / f"out-{i}-{where}") == reference
                report.setdefault("runs", []).append(rec)
                print(json.dumps(rec, default=str), flush=True)
                continue
            shutil.rmtree(cache / "distributed" / "normalised", ignore_errors=True)
            out = scratch / f"out-{i}-{where}"
            source = {"paths": str(pool)} if where == "local" else {"paths": "pools/bench", "filesystem": s3}
            t0 = time.perf_counter()
            with RssSampler() as sampler:
                r = distributed.plan(source.pop("paths"), out=out, cache=cache, label_half="map", **source, **flags)
            rec = {"input": where, "seconds": round(time.perf_counter() - t0, 1), **sampler.summary(),
                   "normalise_seconds": round(r.stage("normalise").seconds, 1),
                   "normalise_bytes_read": r.stage("normalise").bytes_read,
                   "plan_seconds": round(r.stage("plan").seconds, 1),
                   "plan_load_seconds": next((round(t["seconds"], 1) for t in r.result.summary.get("timings", [])
                                              if t["stage"] == "load"), None),
                   "graph_stages_resumed": all(x.resumed for x in r.stages if x.name not in ("normalise", "merge", "plan")),
                   "files_identical": files(out) == reference, "load_average_end": os.getloadavg()}
            report.setdefault("runs", []).append(rec)
            print(json.dumps(rec, default=str), flush=True)
    write_report(args.out, report)
    if not args.work:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

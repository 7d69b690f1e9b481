"""The label-dependent half of ``labelwise.distributed.plan`` on the driver against as map tasks.

Starts a local Ray cluster of two 1-CPU nodes (as ``distributed_bench.py``), builds the graph
stages once with ``label_half="driver"`` (the driver loads the pool and runs the single-machine
``plan``), then runs ``label_half="map"`` on the same work folder (the graph stages resume; the
driver loads no embeddings and reads rows through Ray tasks). Records each run's wall time, its
``plan`` stage, the driver's peak RSS and whether the output files are identical::

    python benches/distributed_label_half.py --pool synth200k.parquet --out report.json
"""

from __future__ import annotations

import json
import os
import pathlib
import resource
import shutil
import sys
import time
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from distributed_bench import RssSampler, files, local_cluster, run_parser, scratch_dir, write_report  # noqa: E402


def main() -> None:
    ap = run_parser(__doc__)
    ap.add_argument("--halves", default="driver,map,driver,map", help="the runs, in order")
    args = ap.parse_args()

    from labelwise import distributed

    scratch = scratch_dir(args.work, "lw-half-")
    flags = {"threshold": args.threshold, "seed": 0}
    report: dict[str, Any] = {"pool": args.pool, "flags": flags, "machine": "2 shared cores, 23 GB",
                              "load_average_start": os.getloadavg()}
    cache = scratch / "cache"
    with local_cluster():
        for half in args.halves.split(","):
            out = scratch / f"out-{half}"
            if out.exists():
                shutil.rmtree(out)
            t0 = time.perf_counter()
            with RssSampler() as s:
                r = distributed.plan(args.pool, out=out, cache=cache, label_half=half, **flags)
            plan_stage = r.stage("plan")
            # ru_maxrss: the driver's peak so far in this process (the first run's is its own).
            rec = {"label_half": half, "seconds": round(time.perf_counter() - t0, 1), **s.summary(),
                   "driver_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                   "plan_seconds": round(plan_stage.seconds, 1), "plan_detail": plan_stage.detail,
                   "graph_stages_resumed": all(x.resumed for x in r.stages if x.name not in ("merge", "plan")),
                   "stages": [[x.name, round(x.seconds, 1)] for x in r.stages],
                   "recall_at_10": r.graph_recall_at_10, "timings": r.result.summary.get("timings"),
                   "load_average_end": os.getloadavg()}
            report.setdefault("runs", []).append(rec)
            print(json.dumps(rec, default=str), flush=True)
        if (scratch / "out-driver").is_dir() and (scratch / "out-map").is_dir():
            same = files(scratch / "out-driver") == files(scratch / "out-map")
            report["files_identical"] = same
            print(json.dumps({"files_identical": same}), flush=True)
    write_report(args.out, report)
    if not args.work:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

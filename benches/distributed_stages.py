"""Per-stage measurements of labelwise.distributed at a size where the whole run does not fit the
session (3,000,000 x 384 on the 2-core machine): every stage up to the shuffle in full, the
search on a sample of its groups, and the halo of *every* group counted exactly from the
shuffle's output.

    python benches/distributed_stages.py --pool /tmp/s9/synth3m.parquet --out benches/results/distributed_3m_stages.json \
        --work /tmp/s9/w3m --group-rows 25000 --sample-groups 6 --max-rows-loaded 1200000

Runs on a local Ray cluster of two 1-CPU nodes (``ray.cluster_utils.Cluster``), like
``distributed_bench.py``, with the driver's own stage code (``labelwise.distributed._Run``):
normalise, fit, the Lloyd steps and assign run exactly as ``distributed.plan`` runs them. The
search groups are cut as ``plan`` cuts them; for each group the script reads the probes of its
rows (the ``probes`` column only) and counts the rows and Parquet bytes its task would load
(its own lists plus the halo). It then runs the search task of ``--sample-groups`` groups spread
evenly over the chain, one at a time (a group of the chain can load most of the pool: groups
loading more than ``--max-rows-loaded`` rows are not sampled, and reported), and estimates the
search stage's core-seconds as the sampled groups' seconds per loaded row times the rows every
group loads. Refine, saturated and merge need the whole search, so they are not measured here:
``distributed_cost.py`` takes them from the smaller runs.

The output has the shape ``distributed_cost.py`` reads (``rows``, ``distributed.stages``), the
search stage marked ``"estimated": true``. Needs ``pip install "ray[data]" psutil`` and a
release wheel.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import pathlib
import time
from typing import Any

import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from distributed_bench import RssSampler, local_cluster  # noqa: E402  (the whole-run bench's)


def halo_of_groups(lists: Any, groups: list[list[int]], nlist: int) -> list[dict[str, int]]:
    """Rows and Parquet bytes each group's search task loads: its lists and every list its rows
    probe (what ``_tasks.search_group`` reads; ``lists``: the shuffle's ``_tasks.Lists``)."""
    t, _ = lists.read(range(nlist), ("probes",))
    home = np.asarray(t.column("home")).astype(np.int64)
    p = t.column("probes").type.list_size
    probes = np.asarray(t.column("probes").combine_chunks().flatten()).reshape(-1, p).astype(np.int64)
    probed = np.zeros((nlist, nlist), dtype=bool)
    probed[np.repeat(home, p), probes.ravel()] = True
    probed[np.arange(nlist), np.arange(nlist)] = True
    sizes = np.bincount(home, minlength=nlist)
    nbytes = np.zeros(nlist, dtype=np.int64)
    for l, fs in lists.files.items():
        nbytes[l] = sum(size for _, _, size in fs)
    out = []
    for g in groups:
        need = probed[g].any(axis=0)
        out.append({"lists": len(g), "owners": int(sizes[g].sum()), "rows_loaded": int(sizes[need].sum()),
                    "bytes_loaded": int(nbytes[need].sum()), "lists_loaded": int(need.sum())})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", required=True, help="stage outputs (reused by a rerun)")
    ap.add_argument("--group-rows", type=int, default=25_000)
    ap.add_argument("--sample-groups", type=int, default=6)
    ap.add_argument("--max-rows-loaded", type=int, default=1_200_000,
                    help="groups loading more rows are not sampled (memory of a 2-worker machine)")
    ap.add_argument("--threshold", type=float, default=0.90)
    args = ap.parse_args()

    import ray

    from labelwise import distributed
    from labelwise.distributed import _chain, _groups, _inputs, _tasks
    from labelwise.distributed._store import open_store

    with local_cluster():
        load_start = os.getloadavg()
        work = pathlib.Path(args.work)
        opts = {"shard_rows": distributed.SHARD_ROWS, "group_rows": args.group_rows, "lloyd_iters": None,
                "saturated_block": distributed.SATURATED_BLOCK, "workers": 2, "cache": work / "cache"}
        run = distributed._Run([args.pool], _inputs.resolve([args.pool]), {"threshold": args.threshold, "seed": 0},
                               open_store(str(work)), opts)
        shards, outs, pool_key, n, d = run.normalise()
        nlist = max(1, min(n, round(math.sqrt(n))))
        c = run.fit(shards, outs, pool_key, n, nlist)
        c, _ = run.lloyd(outs, pool_key, c, n)
        lists = run.assign(outs, shards, pool_key, c)

        t0 = time.perf_counter()
        groups = _groups(_chain(c), lists.sizes(nlist), args.group_rows)
        halos = halo_of_groups(lists, groups, nlist)
        count_s = time.perf_counter() - t0

        fits = [i for i, h in enumerate(halos) if h["rows_loaded"] <= args.max_rows_loaded]
        step = max(1, len(fits) // args.sample_groups)
        sample = fits[step // 2::step][: args.sample_groups]
        k = min(run.k, n - 1)
        task = run._remote(_tasks.search_group)
        gdir = work / "sampled-search"
        gdir.mkdir(parents=True, exist_ok=True)
        timed = []
        for i in sample:  # one at a time: a group can hold most of the pool
            out = gdir / f"group-{i:05d}.parquet"
            out.unlink(missing_ok=True)
            t1 = time.perf_counter()
            with RssSampler() as rss:
                st = ray.get(task.remote(i, groups[i], lists, nlist, k, str(out)))
            timed.append({"group": i, "seconds": time.perf_counter() - t1, **halos[i],
                          "rows_loaded_task": st.get("lw_rows_loaded", 0),
                          "worker_peak_rss_mb": rss.summary()["worker_peak_rss_mb"]})
        per_row = sum(t["seconds"] for t in timed) / sum(t["rows_loaded"] for t in timed)
        per_owner = sum(t["seconds"] for t in timed) / sum(t["owners"] for t in timed)
        all_rows = sum(h["rows_loaded"] for h in halos)
        core_s = per_row * all_rows  # one task per CPU: core-seconds of all groups
        stages = [dataclasses.asdict(s) for s in run.stages]
        stages.append({
            "name": "search", "seconds": core_s / 2, "resumed": False, "tasks": len(groups), "estimated": True,
            "bytes_read": sum(h["bytes_loaded"] for h in halos), "bytes_written": 0,
            "detail": {"groups": len(groups), "sampled": timed, "core_seconds_by_loaded_rows": core_s,
                       "core_seconds_by_owners": per_owner * n, "rows_loaded": all_rows,
                       "groups_over_memory_cap": len(halos) - len(fits), "halo_count_seconds": count_s,
                       "rows_loaded_per_group": sorted(h["rows_loaded"] for h in halos)},
        })
        report: dict[str, Any] = {
            "pool": args.pool, "rows": n, "dim": d, "lists": nlist, "group_rows": args.group_rows,
            "machine": "2 shared cores, 23 GB", "load_average_start": load_start,
            "load_average_end": os.getloadavg(), "distributed": {"stages": stages},
        }
        pathlib.Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
        for s in stages:
            print(f"{s['name']:10s} {s['seconds']:8.1f} s  read {s['bytes_read'] / 1e9:7.2f} GB"
                  f"  written {s['bytes_written'] / 1e9:6.2f} GB{'  (estimated)' if s.get('estimated') else ''}")
        for t in timed:
            print(f"group {t['group']}: {t['rows_loaded']:,} rows loaded, {t['seconds']:.1f} s, "
                  f"worker peak {t['worker_peak_rss_mb']:,} MB")
        print(f"groups {len(groups)}; rows loaded per group median {int(np.median([h['rows_loaded'] for h in halos])):,},"
              f" max {max(h['rows_loaded'] for h in halos):,}; sampled {[t['group'] for t in timed]}")


if __name__ == "__main__":
    main()

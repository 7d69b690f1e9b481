"""``python -m labelwise.distributed plan DATA... --out DIR [plan's flags]``.

The label-independent stages on the Ray cluster (``--address``, or ``RAY_ADDRESS``, or a local
one), then the single-machine ``plan`` on the driver. Every flag of ``labelwise plan`` is
accepted (``--k 16 --threshold 0.9 ...``), plus this module's own (``--work-dir``,
``--shard-rows``, ``--group-rows``, ``--lloyd-iters``, ``--saturated-block``, ``--address``,
``--label-half``). Prints one JSON line per
stage, then the plan's summary path. Bad input exits with code 2 and the CLI's message.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from .. import InputError, parameters
from . import plan


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m labelwise.distributed")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plan", help="labelwise plan with the graph built on Ray")
    p.add_argument("data", nargs="+",
                   help="Parquet files or folders: local paths or URIs pyarrow reads (s3://bucket/pool/)")
    p.add_argument("--work-dir", help="stage outputs, a folder every node reaches: a shared path or a URI "
                                      "(s3://bucket/lw-work); default: distributed/ in the cache")
    p.add_argument("--shard-rows", type=int, default=65_536)
    p.add_argument("--group-rows", type=int)
    p.add_argument("--lloyd-iters", type=int, default=None,
                   help="Lloyd steps over all rows after the sampled fit (default: the single machine's)")
    p.add_argument("--saturated-block", type=int, default=16_384)
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or a local one)")
    p.add_argument("--label-half", choices=("driver", "map"), default="driver",
                   help="where auto-labels, the batch and the budget read the rows: the pool loaded on the "
                        "driver, or map tasks over the cluster's shards (the driver never holds the matrix)")
    for name, param in parameters("plan").items():
        if param.positional:
            continue
        if param.takes_value:
            p.add_argument(param.flag, dest=name, help=param.help.replace("%", "%%"))
        else:
            p.add_argument(
                param.flag, dest=name, action="store_true", default=None,
                help=param.help.replace("%", "%%"),
            )
    return ap


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit code."""
    args = vars(_parser().parse_args(argv))
    args.pop("command")
    own = {k: args.pop(k) for k in ("data", "work_dir", "shard_rows", "group_rows", "lloyd_iters", "saturated_block",
                                   "address", "label_half")}
    flags: dict[str, Any] = {k: v for k, v in args.items() if v is not None}
    out = flags.pop("out", None)
    try:
        r = plan(own["data"], out, work_dir=own["work_dir"], shard_rows=own["shard_rows"],
                 group_rows=own["group_rows"], lloyd_iters=own["lloyd_iters"],
                 saturated_block=own["saturated_block"], address=own["address"],
                 label_half=own["label_half"], **flags)
    except (InputError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for s in r.stages:
        print(json.dumps(dataclasses.asdict(s), default=str))
    # The map route's driver keeps no copy of the pairs: their count is the summary's.
    pairs = r.pairs.num_rows if r.pairs is not None else r.result.summary["duplicates"]["pairs"]
    print(json.dumps({"graph_recall_at_10": r.graph_recall_at_10, "pairs": pairs, "work_dir": str(r.work_dir)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

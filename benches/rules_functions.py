#!/usr/bin/env python3
"""Rules as Python functions against the same rules in a TOML file (issue 18, point 1).

On agnews with labels hidden but for a random 5% (seeded, as benches/rules_snorkel.py does), the
keyword rules of a TOML file are also written as Python functions over pyarrow batches, two ways:
`re` per row (the regex labelwise builds, Python's engine) and pyarrow.compute's
match_substring_regex (RE2, vectorised). `labelwise.rules` runs each set; the per-rule analysis
(fired, coverage, overlaps, conflicts, correct, incorrect, accuracy and its interval) and the
majority vote must equal the TOML file's. Times: the `votes` stage of summary.json (the rules
evaluated, functions called included), and the time spent inside the functions, median of
`--repeat` runs.

    python3 benches/rules_functions.py [--data /work/shared/datasets/agnews.parquet]
        [--rules examples/agnews_rules.toml] [--repeat 3] [--out benches/results/rules_functions.md]

Needs the labelwise package importable (`maturin develop` in python/).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rules_snorkel import hide_labels, rule_patterns  # noqa: E402

import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

import labelwise  # noqa: E402


class Timed:
    """A rule function that adds the seconds spent in it to `spent`."""

    def __init__(self, fn: Any, spent: list[float]) -> None:
        self.fn, self.spent = fn, spent

    def __call__(self, batch: pa.RecordBatch) -> Any:
        t = time.perf_counter()
        out = self.fn(batch)
        self.spent[0] += time.perf_counter() - t
        return out


def per_row(label: str, rx: Any, col: str) -> Any:
    def rule(batch: pa.RecordBatch) -> list[str | None]:
        return [label if v is not None and rx.search(v) else None for v in batch[col].to_pylist()]

    return rule


def vectorised(label: str, rx: Any, col: str) -> Any:
    pattern = rx.pattern
    ignore_case = bool(rx.flags & 2)

    def rule(batch: pa.RecordBatch) -> pa.Array:
        hit = pc.match_substring_regex(batch[col], pattern, ignore_case=ignore_case)
        return pc.if_else(hit, label, pa.scalar(None, pa.string()))

    return rule


def run(pool: str, rules: Any, repeat: int) -> tuple[dict, float, float]:
    """(summary, median votes-stage seconds, median seconds inside the functions)."""
    stage, inside, summary = [], [], {}
    for _ in range(repeat):
        spent = [0.0]
        if isinstance(rules, list):
            wrapped = [(name, Timed(fn, spent)) for name, fn in rules]
        else:
            wrapped = rules
        r = labelwise.rules(pool, rules=wrapped)
        summary = r.summary
        times = summary["timings"]
        rows = times if isinstance(times, list) else times.get("stages", [])
        stage.append(sum(t["seconds"] for t in rows if t["stage"] == "votes"))
        inside.append(spent[0])
    return summary, statistics.median(stage), statistics.median(inside)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/shared/datasets/agnews.parquet")
    ap.add_argument("--rules", default="examples/agnews_rules.toml")
    ap.add_argument("--share", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default="benches/results/rules_functions.md")
    a = ap.parse_args()
    patterns = rule_patterns(a.rules)
    with tempfile.TemporaryDirectory() as tmp:
        pool = os.path.join(tmp, "pool.parquet")
        table, _, _ = hide_labels(a.data, a.share, a.seed, pool)
        runs = {
            "TOML file": a.rules,
            "functions, re per row": [(n, per_row(l, rx, c)) for n, l, rx, c in patterns],
            "functions, pyarrow.compute": [(n, vectorised(l, rx, c)) for n, l, rx, c in patterns],
        }
        results = {k: run(pool, v, a.repeat) for k, v in runs.items()}
    base = results["TOML file"][0]["rules"]
    lines = [
        f"# Rule functions vs the TOML file ({os.path.basename(a.data)}, {table.num_rows} rows, "
        f"{len(patterns)} rules, labels kept on {a.share:.0%})",
        "",
        f"`python3 benches/rules_functions.py --repeat {a.repeat}` on {platform.node()} "
        f"({os.cpu_count()} cores, shared, load average {os.getloadavg()[0]:.1f}), median of "
        f"{a.repeat}; the package as `maturin develop` builds it (dev profile).",
        "",
        "| rules given as | per-rule analysis and majority = TOML's | votes stage s | inside the functions s |",
        "| --- | --- | --- | --- |",
    ]
    for name, (summary, stage, inside) in results.items():
        ours = summary["rules"]
        same = ours["per_rule"] == base["per_rule"] and ours["majority"] == base["majority"]
        if not same:
            diff = [
                (x["rule"], x["fired"], y["fired"])
                for x, y in zip(base["per_rule"], ours["per_rule"])
                if x != y
            ]
            same_text = f"no: {diff}"
        else:
            same_text = "yes (every field)"
        lines.append(f"| {name} | {same_text} | {stage:.3f} | {inside:.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()

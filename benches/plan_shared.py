"""Issue 6 check on the shared datasets: keep 5% of the labels (seeded), run `plan`, and verify
that batch.csv holds no two items of one near-duplicate group and no item routed
auto/duplicate/labeled.

    python3 benches/plan_shared.py ../shared/datasets [WORKDIR]
"""
import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

data = Path(sys.argv[1])
work = Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/labelwise-plan-shared")
work.mkdir(parents=True, exist_ok=True)
binary = Path(__file__).resolve().parent.parent / "target/release/labelwise"
print("| dataset | rows | labels kept | routes (labeled / auto / duplicate / human) | batch | two of one dup group | batch item not human |")
print("|---|---|---|---|---|---|---|")
for ds in ["banking77", "clinc150", "agnews"]:
    table = pq.read_table(data / f"{ds}.parquet")
    rng = np.random.default_rng(0)
    keep = rng.random(len(table)) < 0.05
    labels = [l if k else None for l, k in zip(table["label"].to_pylist(), keep)]
    table = table.set_column(table.schema.get_field_index("label"), "label", pa.array(labels, pa.string()))
    src = work / f"{ds}-5pct.parquet"
    pq.write_table(table, src)
    out = work / f"{ds}-plan"
    subprocess.run([str(binary), "plan", str(src), "--out", str(out), "--cache", str(work / "cache"),
                    "--quiet"], check=True)
    items = pq.read_table(out / "items.parquet").to_pydict()
    by_id = {i: (g, r) for i, g, r in zip(items["id"], items["dup_group"], items["route"])}
    with open(out / "batch.csv") as f:
        batch = list(csv.DictReader(f))
    groups = [by_id[row["id"]][0] for row in batch]
    routes = [by_id[row["id"]][1] for row in batch]
    counts = {r: items["route"].count(r) for r in ["labeled", "auto", "duplicate", "human"]}
    dup_twice = len(groups) - len(set(groups))
    not_human = sum(r != "human" for r in routes)
    print(f"| {ds} | {len(table)} | {int(keep.sum())} | {counts['labeled']} / {counts['auto']} / "
          f"{counts['duplicate']} / {counts['human']} | {len(batch)} | {dup_twice} | {not_human} |")
    assert dup_twice == 0 and not_human == 0, ds

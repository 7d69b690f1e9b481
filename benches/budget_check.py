"""Issue 8 check: does `budget`, run after 3 simulated rounds, project the labels that the
simulation then actually needed to reach 95% of the full-pool accuracy?

For each dataset and seed it takes the `simulate` run of the default strategy (from
benches/quality.sh's output folder), builds the pool as its own Parquet file with every label
hidden, gives `budget` the labels revealed in rounds 1-3 (`--labels`), and compares budget's
projected total labels (and its 10-90% interval) with the simulation's labels at the first round
reaching 95% of full-pool accuracy. The last column gives the simulation's labels at 94% and
96% of full-pool accuracy: how many labels one point of relative accuracy is worth near the
target, i.e. how precisely any projection must place the accuracy level to land within ±25%.

    python3 benches/budget_check.py /tmp/labelwise-quality ../shared/datasets [ROUNDS]

ROUNDS (default 3) is how many simulated rounds of labels budget gets. Environment: LW=path of
the labelwise binary (default target/release/labelwise), TAG=suffix of the output folders (to
compare binaries side by side).
"""
import os
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

runs = Path(sys.argv[1])
data = Path(sys.argv[2])
after = int(sys.argv[3]) if len(sys.argv) > 3 else 3
tag = os.environ.get("TAG", "")
work = runs / "budget-check"
work.mkdir(exist_ok=True)
binary = Path(os.environ.get("LW") or
              Path(__file__).resolve().parent.parent / "target/release/labelwise")
rows = []
for ds, batch in [("banking77", 77), ("clinc150", 100)]:
    table = pq.read_table(data / f"{ds}.parquet")
    pool = table.filter(pc.is_in(table["split"], pa.array(["train", "val"])))
    truth = dict(zip(pool["id"].to_pylist(), pool["label"].to_pylist()))
    pool_file = work / f"{ds}-pool.parquet"
    if not pool_file.exists():
        hidden = pool.set_column(pool.schema.get_field_index("label"), "label",
                                 pa.nulls(len(pool), pa.string()))
        pq.write_table(hidden, pool_file)
    for seed in (0, 1, 2):
        sim = runs / f"{ds}-hybrid-s{seed}"
        summary = json.loads((sim / "summary.json").read_text())
        needed = summary["labels_to_95pct_of_full"]
        full = summary["full_pool_accuracy"]
        at = lambda share: next((r["labels"] for r in summary["curve"]
                                 if r["accuracy"] >= share * full), None)
        band = (at(0.94), at(0.96))
        sel = pcsv.read_csv(sim / "selections.csv")
        ids = [i for r, i in zip(sel["round"].to_pylist(), sel["id"].to_pylist()) if r <= after]
        labels_file = work / f"{ds}-s{seed}-r{after}.csv"
        pcsv.write_csv(pa.table({"id": ids, "label": [truth[i] for i in ids]}), labels_file)
        out = work / f"{ds}-s{seed}-r{after}-budget{tag}"
        subprocess.run([str(binary), "budget", str(pool_file), "--labels", str(labels_file),
                        "--batch", str(batch), "--seed", str(seed), "--out", str(out),
                        "--cache", str(runs / "cache"), "--quiet"], check=True)
        b = json.loads((out / "summary.json").read_text())["budget"]
        t = b.get("accuracy_target") or {}
        proj, lo, hi = t.get("total_labels"), t.get("more_labels_low"), t.get("more_labels_high")
        labeled = b["now"]["labeled"]
        lo_total = None if lo is None else labeled + lo
        hi_total = None if hi is None else labeled + hi
        within = (needed is not None and proj is not None and abs(proj - needed) <= 0.25 * needed)
        inside = (needed is not None and lo_total is not None and hi_total is not None
                  and lo_total <= needed <= hi_total and hi_total - lo_total <= 0.8 * needed)
        plateau = b["accuracy_curve"].get("plateau_identified")
        rows.append((ds, seed, labeled, needed, proj, lo_total, hi_total, within or inside,
                     t.get("target"), plateau, band))

print(f"| dataset | seed | labels after {after} rounds | simulation needed (95% of full) | budget projected | 10–90% interval | within ±25% or interval holds it (≤ ±40%) | projected / needed | interval holds it | budget's target (pool accuracy) | plateau identified | simulation at 94% / 96% of full |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
fmt = lambda v: "–" if v is None else f"{v:.0f}"
for ds, seed, labeled, needed, proj, lo, hi, ok, target, plateau, band in rows:
    ratio = "–" if needed is None or proj is None else f"{proj / needed:.2f}"
    holds = ("–" if needed is None or lo is None else
             "yes" if lo <= needed and (hi is None or needed <= hi) else "no")
    print(f"| {ds} | {seed} | {labeled} | {needed if needed is not None else '> rounds'} | "
          f"{fmt(proj)} | {fmt(lo)}–{fmt(hi)} | {'yes' if ok else 'no'} | {ratio} | {holds} | "
          f"{'–' if target is None else f'{target:.3f}'} | "
          f"{'–' if plateau is None else ('yes' if plateau else 'no')} | "
          f"{fmt(band[0])} / {fmt(band[1])} |")

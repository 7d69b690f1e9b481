"""Aggregates `labelwise simulate` runs (one folder per dataset-strategy-seed) into markdown."""
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

out = Path(sys.argv[1])
wall = sys.argv[2] if len(sys.argv) > 2 else "?"
runs = defaultdict(list)
for summary in sorted(out.glob("*/summary.json")):
    s = json.loads(summary.read_text())
    ds = summary.parent.name.split("-")[0]
    runs[(ds, s["strategy"])].append(s)

# Published peer figures from issue 7 (Python peers on the same embeddings, same yardstick, same
# B and R): (random AULC, margin AULC, best peer AULC, best peer name).
PEERS = {
    "banking77": (0.723, 0.766, 0.819, "scikit-activeml TypiClust (seed 0)"),
    "agnews": (0.802, 0.818, 0.844, "scikit-activeml TypiClust"),
    "clinc150": (0.657, 0.729, 0.729, "margin"),
}

print(f"Wall time of this run of the benchmark: {wall} s.\n")
for ds in sorted({k[0] for k in runs}):
    first = next(v for k, v in runs.items() if k[0] == ds)[0]
    print(f"### {ds} (B = {first['batch']}, R = {first['rounds']}, pool {first['pool']}, "
          f"test {first['test']}, full-pool accuracy {first['full_pool_accuracy']:.3f})\n")
    print("| strategy | seeds | AULC (mean ± sd) | labels to 95% of full | classes after 1 / 3 / 5 | select s/round |")
    print("|---|---|---|---|---|---|")
    for (d, strategy), ss in sorted(runs.items(), key=lambda kv: -statistics.mean(x["aulc"] for x in kv[1])):
        if d != ds:
            continue
        aulc = [x["aulc"] for x in ss]
        sd = statistics.stdev(aulc) if len(aulc) > 1 else 0.0
        reach = [x["labels_to_95pct_of_full"] for x in ss]
        reach_s = " / ".join(str(r) if r is not None else f">{x['batch'] * x['rounds']}" for r, x in zip(reach, ss))
        found = [x["classes_found_after"] for x in ss]
        f = lambda r: statistics.mean(v[r] for v in found if v[r] is not None)
        sel = statistics.mean(x["mean_select_seconds"] for x in ss)
        print(f"| {strategy} | {len(ss)} | {statistics.mean(aulc):.3f} ± {sd:.3f} | {reach_s} | "
              f"{f('1'):.1f} / {f('3'):.1f} / {f('5'):.1f} | {sel:.2f} |")
    if ds in PEERS:
        pr, pm, pb, name = PEERS[ds]
        print(f"| peers: random / margin / best ({name}) | | {pr:.3f} / {pm:.3f} / {pb:.3f} | | | |")
        mean = lambda st: statistics.mean(x["aulc"] for x in runs[(ds, st)]) if (ds, st) in runs else None
        h, r = mean("hybrid"), mean("random")
        if h is not None and r is not None:
            print(f"\nhybrid − best peer: {h - pb:+.3f}; hybrid − random: {h - r:+.3f} "
                  f"(targets: ≥ 0 and ≥ +0.030)")
    print()

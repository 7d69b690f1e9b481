"""Aggregates `labelwise simulate` runs (one folder per dataset-strategy-seed) into markdown."""
import json
import os
import statistics
import sys
from collections import defaultdict
from pathlib import Path

out = Path(sys.argv[1])
wall = sys.argv[2] if len(sys.argv) > 2 else "?"
# quality.sh passes its SEEDS / STRATEGIES / DATASETS so runs kept in OUT from other invocations
# are not mixed in; unset = every run found.
only = {k: set(os.environ[k].split()) for k in ("SEEDS", "STRATEGIES", "DATASETS")
        if os.environ.get(k, "").strip()}
keep = lambda key, value: key not in only or str(value) in only[key]
runs = defaultdict(list)
for summary in sorted(out.glob("*/summary.json")):
    s = json.loads(summary.read_text())
    ds = summary.parent.name.split("-")[0]
    if keep("SEEDS", s["seed"]) and keep("STRATEGIES", s["strategy"]) and keep("DATASETS", ds):
        runs[(ds, s["strategy"])].append(s)

# Peers run by benches/peers/al_peer.py on our own splits (quality.sh with PEER_PYTHON).
peers_here = defaultdict(list)
for path in sorted(out.glob("peers-*.json")):
    ds = path.stem[len("peers-"):]
    for r in json.loads(path.read_text()):
        if keep("SEEDS", r["seed"]) and keep("DATASETS", ds):
            peers_here[(ds, r["strategy"])].append(r)

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
    for (d, strategy), rs in sorted(peers_here.items()):
        if d != ds:
            continue
        aulc = [r["aulc"] for r in rs]
        sd = statistics.stdev(aulc) if len(aulc) > 1 else 0.0
        b = first["batch"]
        # 95% of the full-pool accuracy of the same seed's split (our runs measured it).
        full = {x["seed"]: x["full_pool_accuracy"] for (d2, _), xs in runs.items() if d2 == ds
                for x in xs}
        reach = []
        for r in rs:
            target = 0.95 * full.get(r["seed"], first["full_pool_accuracy"])
            hit = next((c["labels"] for c in r["curve"] if c["accuracy"] >= target), None)
            reach.append(str(hit) if hit is not None else f">{b * len(r['curve'])}")
        found = lambda k: statistics.mean(r["curve"][k - 1]["classes_found"] for r in rs
                                          if len(r["curve"]) >= k)
        sel = statistics.mean(r["select_seconds_per_round"] for r in rs)
        print(f"| {strategy} (scikit-activeml, our splits) | {len(rs)} | "
              f"{statistics.mean(aulc):.3f} ± {sd:.3f} | {' / '.join(reach)} | "
              f"{found(1):.1f} / {found(3):.1f} / {found(5):.1f} | {sel:.2f} |")
    paired = None
    if (ds, "hybrid") in runs and (ds, "typiclust") in peers_here:
        ours = {x["seed"]: x["aulc"] for x in runs[(ds, "hybrid")]}
        diffs = [ours[r["seed"]] - r["aulc"] for r in peers_here[(ds, "typiclust")]
                 if r["seed"] in ours]
        if diffs:
            paired = (f"hybrid − peer TypiClust on the same splits (paired by seed): "
                      f"{statistics.mean(diffs):+.3f} (per seed "
                      f"{' / '.join(f'{d:+.3f}' for d in diffs)}).")
    if ds in PEERS:
        pr, pm, pb, name = PEERS[ds]
        print(f"| issue anchors (planners' own split): random / margin / best ({name}) | | "
              f"{pr:.3f} / {pm:.3f} / {pb:.3f} | | | |")
        mean = lambda st: statistics.mean(x["aulc"] for x in runs[(ds, st)]) if (ds, st) in runs else None
        h, r = mean("hybrid"), mean("random")
        if h is not None and r is not None:
            print(f"\nhybrid − best peer: {h - pb:+.3f}; hybrid − random: {h - r:+.3f} "
                  f"(targets: ≥ 0 and ≥ +0.030)")
    if paired:
        print(f"\n{paired}")
    print()

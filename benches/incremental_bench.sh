#!/usr/bin/env bash
# Issue 3: a cached pool plus appended rows, end to end through the CLI, for one `--index`.
# Splits FILE into its first N_OLD rows (part-0) and the next M rows (part-1), then times
#   1. `dedup` on part-0 alone, cold (fills the cache: graph, and with --index hnsw the index),
#   2. `dedup` on part-0 + part-1 with the same cache (the appended run: graph.incremental),
#   3. `dedup` on part-0 + part-1 with no cache (the rebuild it replaces),
# and prints wall time, max RSS and summary.json's graph section for each.
#
#   INDEX=hnsw bash benches/incremental_bench.sh ../shared/datasets/clinc150.parquet 22700 1000
#   INDEX=auto bash benches/incremental_bench.sh ../shared/datasets/clinc150.parquet 22700 1000
set -euo pipefail
cd "$(dirname "$0")/.."
file=$1 n_old=$2 m=$3
INDEX=${INDEX:-auto}
work=${WORK:-/tmp/labelwise-incremental-$INDEX}
rm -rf "$work" && mkdir -p "$work/pool"
cargo build --release --quiet
bin=$PWD/target/release/labelwise
python3 - "$file" "$n_old" "$m" "$work/pool" <<'PY'
import sys
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
n_old, m = int(sys.argv[2]), int(sys.argv[3])
pq.write_table(t.slice(0, n_old), f"{sys.argv[4]}/part-0.parquet")
pq.write_table(t.slice(n_old, m), f"{sys.argv[4]}/part-1.parquet")
PY
mv "$work/pool/part-1.parquet" "$work/part-1.parquet"
run() {
  local label=$1 out=$2; shift 2
  /usr/bin/time -f "%e s wall, %M KB max RSS" -o "$work/time" "$bin" dedup "$work/pool" \
    --index "$INDEX" --quiet --out "$out" "$@"
  echo "$label: $(cat "$work/time"), load $(cut -d' ' -f1 /proc/loadavg)"
  python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print('  graph', json.dumps(s['graph']), 'timings', json.dumps(s.get('timings')))" "$out/summary.json"
}
run "pool cold ($n_old rows)" "$work/r1" --cache "$work/cache"
mv "$work/part-1.parquet" "$work/pool/part-1.parquet"
run "appended (+$m rows, same cache)" "$work/r2" --cache "$work/cache"
run "rebuild ($((n_old + m)) rows, no cache)" "$work/r3" --no-cache
python3 - "$work" <<'PY'
import sys
import pyarrow.parquet as pq
w = sys.argv[1]
pairs = {r: {(a, b) for a, b in zip(*[pq.read_table(f"{w}/{r}/duplicate_pairs.parquet")[c].to_pylist() for c in ("id_a", "id_b")])} for r in ("r2", "r3")}
both = pairs["r2"] & pairs["r3"]
print(f"pairs at the default threshold: appended {len(pairs['r2'])}, rebuild {len(pairs['r3'])}, both {len(both)}")
PY

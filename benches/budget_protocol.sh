#!/usr/bin/env bash
# Issue 15's budget protocol (BENCHMARKS.md "Budget projection (issue 15)"):
# 1. `simulate` with the default strategy, batch ≈ 1% of the pool (banking77 100, clinc150 182,
#    agnews 61), 60 rounds, seeds 0-2, the default 10% holdout; datasets in sequence;
# 2. benches/budget_protocol.py run: `budget` on the state each run had after rounds 3, 5 and 8
#    (pool rows, labels and history rebuilt from the run's outputs); then, with --stop-scan, after
#    rounds 10, 15, 20, 30 until it first says stop;
# 3. small-text's stopping criteria (KappaAverage = Bloodgood & Vijay-Shanker's stabilizing
#    predictions, ClassificationChange) on the same runs;
# 4. the tables (WORK/report.md);
# 5. `budget` on 1,000,000 × 384 with ~10,000 labels against the cached graph (when the pool
#    exists: cargo run --release --example synth -- --rows 1000000 --dim 384 --labeled-share 0.01
#    --out /tmp/lw1m/synth1m-l1.parquet, and a `plan` run to cache its graph).
#
#   bash benches/budget_protocol.sh ../shared/datasets [WORKDIR]
# Needs python3 with pyarrow, numpy, blake3, scikit-learn and small-text 1.4.1.
set -euo pipefail
DATA=${1:?usage: budget_protocol.sh DATASETS_DIR [WORKDIR]}
WORK=${2:-/tmp/labelwise-budget}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-"$ROOT/target/release/labelwise"}
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release --bin labelwise)
mkdir -p "$WORK/sim"
for spec in banking77:100 agnews:61 clinc150:182; do
  ds=${spec%%:*}; batch=${spec##*:}
  for seed in 0 1 2; do
    out="$WORK/sim/$ds-s$seed"
    [ -f "$out/curve.csv" ] && continue
    "$BIN" simulate "$DATA/$ds.parquet" --batch "$batch" --rounds 60 --seed "$seed" \
      --out "$out" --cache "$WORK/cache" --quiet
  done
done
py="python3 $ROOT/benches/budget_protocol.py"
$py run "$DATA" "$WORK/sim" "$WORK/prot" --bin "$BIN"
$py run "$DATA" "$WORK/sim" "$WORK/prot" --bin "$BIN" --stop-scan
$py kappa "$DATA" "$WORK/sim" "$WORK/prot"
$py report "$WORK/sim" "$WORK/prot"
M1=${M1:-/tmp/lw1m/synth1m-l1.parquet}
if [ -f "$M1" ]; then
  /usr/bin/time -v "$BIN" budget "$M1" --out "$WORK/budget-1m" --cache "${M1_CACHE:-/tmp/lw1m/cache}" \
    --batch 100 --quiet 2> "$WORK/budget-1m.time"
  grep -E "Elapsed|Maximum resident" "$WORK/budget-1m.time"
  python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['timings']; print(t)" "$WORK/budget-1m/summary.json"
fi

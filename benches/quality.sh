#!/usr/bin/env bash
# Active-learning quality benchmark (issue 7): every strategy on the three shared datasets, seeds
# 0-2, B = number of classes clipped to [20, 100], R = 15 rounds, the logistic-regression (C = 10)
# yardstick. Writes benches/results/quality.md (tables for BENCHMARKS.md) and keeps every run's
# outputs under $OUT.
#
#   bash benches/quality.sh                      # all strategies, all datasets, seeds 0 1 2
#   STRATEGIES="random hybrid" SEEDS=0 bash benches/quality.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/datasets}
OUT=${OUT:-/tmp/labelwise-quality}
STRATEGIES=${STRATEGIES:-"random margin entropy coreset typiclust hybrid"}
SEEDS=${SEEDS:-"0 1 2"}
DATASETS=${DATASETS:-"banking77 agnews clinc150"}
ROUNDS=${ROUNDS:-15}
mkdir -p "$OUT"
cargo build --release --quiet
bin=target/release/labelwise
start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for ds in $DATASETS; do
  case $ds in banking77) batch=77 ;; agnews) batch=20 ;; clinc150) batch=100 ;; *) batch=50 ;; esac
  for strategy in $STRATEGIES; do
    for seed in $SEEDS; do
      dir="$OUT/$ds-$strategy-s$seed"
      if [ -f "$dir/summary.json" ]; then continue; fi
      echo "== $ds $strategy seed $seed (batch $batch, rounds $ROUNDS)" >&2
      "$bin" simulate "$DATA/$ds.parquet" --strategy "$strategy" --batch "$batch" \
        --rounds "$ROUNDS" --seed "$seed" --out "$dir" --cache "$OUT/cache" --quiet
    done
  done
done
end=$(date +%s)
{
  echo "Command: \`STRATEGIES=\"$STRATEGIES\" SEEDS=\"$SEEDS\" DATASETS=\"$DATASETS\" ROUNDS=$ROUNDS bash benches/quality.sh\`"
  echo "on $(nproc) cores; load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  python3 benches/quality_table.py "$OUT" "$((end - start))"
} > benches/results/quality.md
cat benches/results/quality.md

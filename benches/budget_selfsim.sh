#!/usr/bin/env bash
# Issue 8 research: self-simulation on a pseudo-labeled pool (examples/budget_selfsim.rs) for the
# six cells of benches/budget_check.py (banking77 and clinc150, seeds 0-2, labels of rounds 1-3).
# Needs the `simulate` runs of benches/quality.sh in $OUT (their selections.csv give the labels,
# their summary.json the labels the real run needed).
#
#   OUT=/tmp/q8 bash benches/budget_selfsim.sh oracle    # or argmax, sample, knn
set -euo pipefail
cd "$(dirname "$0")/.."
variant=${1:-argmax}
shift || true
DATA=${DATA:-../shared/datasets}
OUT=${OUT:-/tmp/labelwise-quality}
AFTER=${AFTER:-3}
ROUNDS=${ROUNDS:-16}
cargo build --release --quiet --example budget_selfsim
bin=target/release/examples/budget_selfsim
for ds in clinc150 banking77; do
  case $ds in banking77) batch=77 ;; clinc150) batch=100 ;; esac
  for seed in 0 1 2; do
    sim="$OUT/$ds-hybrid-s$seed"
    real=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['labels_to_95pct_of_full'])" "$sim/summary.json")
    r=$("$bin" "$DATA/$ds.parquet" --out "$OUT/selfsim" --batch "$batch" --rounds "$ROUNDS" \
      --seed "$seed" --cache "$OUT/cache" --selections "$sim/selections.csv" --after "$AFTER" \
      --variant "$variant" "$@")
    echo "$ds s$seed real=$real $r"
  done
done

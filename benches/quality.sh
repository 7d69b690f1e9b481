#!/usr/bin/env bash
# Active-learning quality benchmark (issue 7): every strategy on the three shared datasets, seeds
# 0-2, B = number of classes clipped to [20, 100], R = 15 rounds, the logistic-regression (C = 10)
# yardstick. Writes benches/results/quality.md (tables for BENCHMARKS.md) and keeps every run's
# outputs under $OUT.
#
#   bash benches/quality.sh                      # all strategies, all datasets, seeds 0 1 2
#   STRATEGIES="random hybrid" SEEDS=0 bash benches/quality.sh
#   HOLDOUT=0.1 bash benches/quality.sh           # simulate --holdout (default 0 here: the
#                                                # figures in BENCHMARKS.md kept the pool whole)
#
# Python peers on exactly our splits (optional; needs scikit-learn, scikit-activeml, pyarrow):
#   PEER_PYTHON=/tmp/lw-al-venv/bin/python PEER_DATASETS=agnews bash benches/quality.sh
# runs benches/peers/al_peer.py (PEER_STRATEGIES, default "typiclust random margin") on each
# seed's split.csv and adds its AULC rows, marked "(peer, our splits)", to the tables.
#
# The generated tables replace the top of benches/results/quality.md; everything from the line
# "<!-- notes below are kept by quality.sh -->" on is kept (RESULTS=FILE writes FILE instead).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/datasets}
OUT=${OUT:-/tmp/labelwise-quality}
STRATEGIES=${STRATEGIES:-"random margin entropy coreset typiclust hybrid"}
SEEDS=${SEEDS:-"0 1 2"}
DATASETS=${DATASETS:-"banking77 agnews clinc150"}
ROUNDS=${ROUNDS:-15}
PEER_PYTHON=${PEER_PYTHON:-}
PEER_DATASETS=${PEER_DATASETS:-agnews}
PEER_STRATEGIES=${PEER_STRATEGIES:-"typiclust random margin"}
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
        --rounds "$ROUNDS" --seed "$seed" --holdout "${HOLDOUT:-0}" --out "$dir" --cache "$OUT/cache" --quiet
    done
  done
done
if [ -n "$PEER_PYTHON" ]; then
  first=${STRATEGIES%% *}
  for ds in $PEER_DATASETS; do
    case $ds in banking77) batch=77 ;; agnews) batch=20 ;; clinc150) batch=100 ;; *) batch=50 ;; esac
    if [ -f "$OUT/peers-$ds.json" ]; then continue; fi
    echo "== peers on $ds: $PEER_STRATEGIES" >&2
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$PEER_PYTHON" benches/peers/al_peer.py run \
      "$DATA/$ds.parquet" --splits "$OUT/$ds-$first-s{seed}" --seeds $SEEDS --batch "$batch" \
      --rounds "$ROUNDS" --strategies $PEER_STRATEGIES --json "$OUT/peers-$ds.json.tmp" >&2
    mv "$OUT/peers-$ds.json.tmp" "$OUT/peers-$ds.json"
  done
fi
end=$(date +%s)
marker='<!-- notes below are kept by quality.sh -->'
results=${RESULTS:-benches/results/quality.md}
{
  peers=""
  if [ -n "$PEER_PYTHON" ]; then
    peers="PEER_PYTHON=$PEER_PYTHON PEER_DATASETS=\"$PEER_DATASETS\" PEER_STRATEGIES=\"$PEER_STRATEGIES\" "
  fi
  echo "Command: \`${peers}STRATEGIES=\"$STRATEGIES\" SEEDS=\"$SEEDS\" DATASETS=\"$DATASETS\" ROUNDS=$ROUNDS bash benches/quality.sh\`"
  echo "on $(nproc) cores; load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  SEEDS="$SEEDS" STRATEGIES="$STRATEGIES" DATASETS="$DATASETS" \
    python3 benches/quality_table.py "$OUT" "$((end - start))"
} > "$results.tmp"
if [ -f "$results" ]; then
  awk -v m="$marker" 'index($0, m) == 1 { keep = 1 } keep' "$results" > "$results.notes"
  if [ -s "$results.notes" ]; then
    { echo; cat "$results.notes"; } >> "$results.tmp"
  fi
  rm -f "$results.notes"
fi
mv "$results.tmp" "$results"
cat "$results"

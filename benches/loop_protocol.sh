#!/usr/bin/env bash
# Issue 19's loop protocol: `simulate` with the default strategy, target precision 0.95, batch
# ≈ 1% of the pool (banking77 100, clinc150 182, agnews 61), 10 rounds, seeds 0 and 1; then
# benches/loop_oracle.py scores every round's done share against the oracle (scikit-learn
# LogisticRegression(C=10) on the same human labels, threshold chosen on the hidden labels) and
# the realized precision of the auto-labels (from simulate's autolabels.csv).
#
#   bash benches/loop_protocol.sh ../shared/datasets [WORKDIR]
#   SEEDS="$(seq 0 29)" ROUNDS=6,7,8,9,10 bash benches/loop_protocol.sh ../shared/datasets
# (SEEDS: the seeds run, default "0 1"; ROUNDS: the rounds scored, default 10.)
set -euo pipefail
DATA=${1:?usage: loop_protocol.sh DATASETS_DIR [WORKDIR]}
WORK=${2:-/tmp/labelwise-loop}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-"$ROOT/target/release/labelwise"}
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release --bin labelwise)
mkdir -p "$WORK"
for spec in banking77:100 clinc150:182 agnews:61; do
  ds=${spec%%:*}; batch=${spec##*:}
  dirs=()
  for seed in ${SEEDS:-0 1}; do
    out="$WORK/$ds-s$seed"
    # shellcheck disable=SC2086
    # --holdout 0: the protocol predates the holdout and keeps the pool whole.
    "$BIN" simulate "$DATA/$ds.parquet" --batch "$batch" --rounds 10 --seed "$seed" --holdout 0 ${EXTRA:-} \
      --target-precision 0.95 --out "$out" --cache "$WORK/cache" --quiet
    dirs+=("$out")
  done
  python3 "$ROOT/benches/loop_oracle.py" "$DATA/$ds.parquet" "${dirs[@]}" --rounds "${ROUNDS:-10}"
done

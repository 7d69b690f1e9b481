#!/usr/bin/env bash
# Issue 18's loop check: issue 19's loop protocol (`simulate`, default strategy, target 0.95,
# batch ≈ 1% of the pool, 10 rounds, seeds 0 and 1, --holdout 0) run with and without the
# hand-written rules of examples/ (agnews_rules.toml, banking77_rules.toml), scored by
# benches/rules_loop.py: done share after each round and the realized precision of every
# auto-label source (model, duplicate, rules) on the hidden labels.
#
#   bash benches/rules_loop.sh ../shared/datasets [WORKDIR]
set -euo pipefail
DATA=${1:?usage: rules_loop.sh DATASETS_DIR [WORKDIR]}
WORK=${2:-/tmp/labelwise-rules-loop}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-"$ROOT/target/release/labelwise"}
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release --bin labelwise)
mkdir -p "$WORK"
for spec in agnews:61 banking77:100; do
  ds=${spec%%:*}; batch=${spec##*:}
  for seed in ${SEEDS:-0 1}; do
    for variant in without with; do
      out="$WORK/$ds-s$seed-$variant"
      rules=()
      [ "$variant" = with ] && rules=(--rules "$ROOT/examples/${ds}_rules.toml")
      "$BIN" simulate "$DATA/$ds.parquet" --batch "$batch" --rounds 10 --seed "$seed" --holdout 0 \
        --target-precision 0.95 --out "$out" --cache "$WORK/cache" --quiet "${rules[@]}"
    done
    echo "== $ds seed $seed"
    python3 "$ROOT/benches/rules_loop.py" "$DATA/$ds.parquet" "$WORK/$ds-s$seed-without" "$WORK/$ds-s$seed-with"
  done
done

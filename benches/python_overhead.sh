#!/usr/bin/env bash
# Python package overhead (issue 16): `plan` on banking77 through the package and through the
# CLI, 3 runs each, interleaved, no cache (the whole job every run), wall time of the whole
# process (interpreter start and `import labelwise` included).
#   bash benches/python_overhead.sh [DATA]   (needs target/release/labelwise and the package
#   installed in .venv: pip install ./python)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-../shared/datasets/banking77.parquet}"
PY="${PY:-.venv/bin/python}"
BIN="${BIN:-target/release/labelwise}"
OUT="$(mktemp -d)"
for i in 1 2 3; do
  /usr/bin/time -f "run $i cli    %e s" "$BIN" --quiet plan "$DATA" --out "$OUT/cli" --no-cache
  /usr/bin/time -f "run $i python %e s" "$PY" -c \
    "import labelwise; labelwise.plan('$DATA', out='$OUT/py', no_cache=True)"
done
# Same inputs, same files.
for f in items.parquet batch.csv autolabels.parquet duplicate_pairs.parquet budget.csv; do
  cmp "$OUT/cli/$f" "$OUT/py/$f"
done
echo "outputs identical"

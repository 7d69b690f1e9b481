#!/usr/bin/env bash
# Load benchmark: labelwise `inspect` vs a pyarrow read of the same 1,000,000 x 384 file.
#
#   benches/load_bench.sh                 # run from the repository root
#   LABELWISE_BENCH_DIR=/data/bench ROWS=200000 benches/load_bench.sh
#
# Environment:
#   LABELWISE_BENCH_DIR  where the synthetic file lives (default /tmp/labelwise-bench)
#   ROWS, DIM, SEED      synthetic data shape (default 1000000, 384, 0)
#   PYTHON               python with pyarrow + numpy (default python3)
#   SKIP_BUILD=1         use the existing target/release binaries
# The file is generated once (examples/synth.rs) and reused while it exists.
# Prints wall time and max RSS of both readers, from /usr/bin/time -v.
set -euo pipefail

cd "$(dirname "$0")/.."
BENCH_DIR="${LABELWISE_BENCH_DIR:-/tmp/labelwise-bench}"
ROWS="${ROWS:-1000000}"
DIM="${DIM:-384}"
SEED="${SEED:-0}"
PYTHON="${PYTHON:-python3}"
FILE="$BENCH_DIR/synth-${ROWS}x${DIM}-s${SEED}.parquet"

if [[ ! -x /usr/bin/time ]]; then
  echo "load_bench: /usr/bin/time is missing (apt-get install time)" >&2
  exit 2
fi
mkdir -p "$BENCH_DIR"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  cargo build --release --quiet --bin labelwise --example synth
fi

if [[ ! -s "$FILE" ]]; then
  echo "load_bench: generating $FILE"
  target/release/examples/synth --rows "$ROWS" --dim "$DIM" --seed "$SEED" --out "$FILE"
fi
SIZE_MB=$(( $(stat -c %s "$FILE") / 1000000 ))
EMB_MB=$(( ROWS * DIM * 4 / 1000000 ))
echo "load_bench: $FILE ($SIZE_MB MB on disk, $EMB_MB MB of float32 embeddings), $(nproc) cores"

# run NAME CMD...: runs CMD under /usr/bin/time -v, prints its output and a summary line.
run() {
  local name="$1"; shift
  local log
  log="$(mktemp)"
  local rc=0
  /usr/bin/time -v "$@" 2>"$log" || rc=$?
  local wall rss_kb
  wall=$(grep -F 'Elapsed (wall clock) time' "$log" | awk '{print $NF}')
  rss_kb=$(grep -F 'Maximum resident set size' "$log" | awk '{print $NF}')
  if [[ $rc -ne 0 ]]; then
    grep -v -E '^\s+(Command being timed|User time|System time|Percent|Elapsed|Average|Maximum|Major|Minor|Voluntary|Involuntary|Swaps|File system|Socket|Signals|Page size|Exit status)' "$log" >&2 || true
    echo "load_bench: $name exited with status $rc" >&2
  fi
  awk -v n="$name" -v w="$wall" -v r="$rss_kb" -v c="$rc" \
    'BEGIN { printf "%-10s wall %-9s max RSS %8.1f MiB  (exit %d)\n", n, w, r / 1024, c }' >>"$BENCH_DIR/.summary"
  rm -f "$log"
}

rm -f "$BENCH_DIR/.summary"
run labelwise target/release/labelwise inspect "$FILE" --quiet
run pyarrow "$PYTHON" benches/peers/pyarrow_read.py "$FILE"
echo "---- $ROWS x $DIM"
cat "$BENCH_DIR/.summary"
rm -f "$BENCH_DIR/.summary"

#!/usr/bin/env bash
# The distributed tests (python/tests/test_distributed.py) with Ray installed, timed: what adding
# them to CI would cost. They start and stop a local Ray cluster of two 1-CPU nodes themselves.
#
#   bash benches/distributed_tests.sh [VENV]      # default VENV: .venv (created if missing)
#
# Without Ray (CI today) the same file is skipped by pytest.importorskip("ray").
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet maturin pytest pyarrow polars numpy pandas tqdm
echo "== pip install ray[data]"
time "$VENV/bin/pip" install --quiet "ray[data]"
"$VENV/bin/python" -c "import labelwise.distributed" 2>/dev/null || time "$VENV/bin/pip" install --quiet ./python
cargo build --quiet --example synth
echo "== pytest python/tests/test_distributed.py"
time "$VENV/bin/python" -m pytest -q -p no:warnings python/tests/test_distributed.py

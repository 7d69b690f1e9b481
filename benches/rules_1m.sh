#!/usr/bin/env bash
# Times `labelwise rules` (release build) on 1,000,000 rows with 20 regex rules over a text
# column, on 2 threads (issue 18: ≤ 30 s on 2 cores). Writes benches/results/rules_1m.md.
#
#   bash benches/rules_1m.sh [ROWS]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
bin=target/release/labelwise
[ -x "$bin" ] || cargo build --release
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 benches/rules_1m.py "$tmp/pool.parquet" --rows "$rows"
/usr/bin/time -f '%e %M' -o "$tmp/time" "$bin" --threads 2 --quiet rules "$tmp/pool.parquet" \
  --rules benches/rules_1m.toml --out "$tmp/out"
read -r wall rss < "$tmp/time"
stages=$(python3 -c "
import json; s = json.load(open('$tmp/out/summary.json'))
print(', '.join(f\"{t['stage']} {t['seconds']:.2f} s\" for t in s['timings']))
r = s['rules']; print(f\"coverage {r['coverage']:.4f}, overlaps {r['overlaps']:.4f}, conflicts {r['conflicts']:.4f}, majority accuracy {r['majority']['accuracy']:.4f} on {r['majority']['voted_labeled']} labeled items it labels\")")
{
  echo "# \`labelwise rules\` on $rows rows, 20 regex rules (issue 18)"
  echo
  echo "Produced by \`bash benches/rules_1m.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores (shared), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end;"
  echo "pool: agnews texts repeated to $rows rows, 8-d embeddings, 5% labeled (\`benches/rules_1m.py\`);"
  echo "rules: \`benches/rules_1m.toml\`; \`--threads 2\`, release build."
  echo
  echo "| rows | rules | wall (s) | max RSS (MiB) | target |"
  echo "| --- | --- | --- | --- | --- |"
  echo "| $rows | 20 regex | $wall | $((rss / 1024)) | ≤ 30 s |"
  echo
  echo "Stages (summary.json timings): $(echo "$stages" | head -1)."
  echo
  echo "Analysis: $(echo "$stages" | tail -1)."
} | tee benches/results/rules_1m.md

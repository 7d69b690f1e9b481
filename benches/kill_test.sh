#!/usr/bin/env bash
# Interrupted-run test for `labelwise plan` (issue 9, point 1).
#
#   benches/kill_test.sh            # defaults: 200,000 rows x 384, 10 kills, seed 9
#   KILLS=10 SEED=9 ROWS=200000 WORK=/tmp/lw-kill LABELWISE_BIN=target/release/labelwise benches/kill_test.sh
#
# 1. Generates a synthetic set once (examples/synth), builds the release binary unless
#    LABELWISE_BIN is given.
# 2. One uninterrupted reference run (fresh --cache/--out) measures the duration T.
# 3. KILLS trials, each with a fresh cache and out folder: start `plan`, SIGKILL it at a seeded
#    random moment (stratified over [0.03T, 0.97T] so the kills spread over the whole run), then
#      - checks the out folder: every non-temp file must be complete (Parquet readable by pyarrow,
#        JSON parseable, CSV ending in a newline, HTML closed) and equal to the reference's file;
#        `.labelwise-*.tmp` temp files are allowed but reported;
#      - checks the round history (--history): no round, or the whole round 1 (its picks file
#        byte-identical to the reference's), never half of one; after the rerun, those rounds
#        plus the rerun's own;
#      - checks the cache folder: the graph entry, if present, is byte-identical to the
#        reference's; graph-build checkpoints (`ckpt-*.lwc`: the k-means partition and finished
#        chunks of rows) are complete (header length = file length) and byte-identical to any
#        earlier sighting of the same checkpoint (they are deterministic);
#      - reruns `plan` to completion with the same cache and out folder and checks its outputs are
#        byte-identical to the reference (summary.json compared without `timings` and
#        `graph.cache_hit`), that no temp file is left in the out folder or the cache (a killed
#        run's temps are removed by the rerun) and that the checkpoints were deleted;
#      - records whether the rerun resumed the graph build from checkpoints (how many chunks) and
#        its graph-stage time against the reference's cold graph stage.
# 4. Corrupts the cache entry (truncate to half; flip one byte in the payload) and checks the rerun
#    does not trust it (graph.cache_hit = false), rebuilds an identical entry and identical outputs;
#    then the same for a checkpoint: a run killed mid-graph, one chunk truncated and one flipped,
#    and the rerun must produce identical outputs.
# Prints a summary; exits 1 on any failure.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ROWS=${ROWS:-200000}
DIM=${DIM:-384}
KILLS=${KILLS:-10}
SEED=${SEED:-9}
WORK=${WORK:-/tmp/lw-kill}
mkdir -p "$WORK"
DATA="$WORK/synth${ROWS}.parquet"
RUN="$WORK/run"            # one fixed path for every run, so nothing path-dependent can differ
REF="$WORK/ref"
LOG="$WORK/kill_test.log"
: > "$LOG"
FAILS=0
fail() { echo "FAIL: $*" | tee -a "$LOG"; FAILS=$((FAILS + 1)); }
note() { echo "$*" | tee -a "$LOG"; }

if [ -z "${LABELWISE_BIN:-}" ]; then
  cargo build --release --bin labelwise --quiet || { echo "build failed"; exit 1; }
  LABELWISE_BIN="$ROOT/target/release/labelwise"
fi
if [ ! -s "$DATA" ]; then
  cargo run --release --quiet --example synth -- --rows "$ROWS" --dim "$DIM" --out "$DATA" || exit 1
fi

PLAN=("$LABELWISE_BIN" plan "$DATA" --out "$RUN/out" --cache "$RUN/cache" --history "$RUN/history" -q)
plan() { "${PLAN[@]}"; }
now() { date +%s.%N; }

# Compares the out folder of a finished run with the reference. $1 = label for messages.
compare_outputs() {
  python3 - "$REF/out" "$RUN/out" "$1" <<'PY' || return 1
import json, os, sys
ref, run, label = sys.argv[1:]
ok = True
def norm_summary(p):
    d = json.load(open(p))
    d.pop("timings", None)
    if isinstance(d.get("graph"), dict):
        d["graph"].pop("cache_hit", None)
    return d
names_ref = sorted(f for f in os.listdir(ref) if not f.endswith(".tmp"))
names_run = sorted(f for f in os.listdir(run) if not f.endswith(".tmp"))
if names_ref != names_run:
    print(f"{label}: file sets differ: ref {names_ref} vs run {names_run}"); ok = False
for f in names_ref:
    a, b = os.path.join(ref, f), os.path.join(run, f)
    if not os.path.exists(b):
        continue
    if f == "summary.json":
        if norm_summary(a) != norm_summary(b):
            print(f"{label}: summary.json differs (beyond timings/cache_hit)"); ok = False
    elif open(a, "rb").read() != open(b, "rb").read():
        print(f"{label}: {f} differs from the uninterrupted run"); ok = False
sys.exit(0 if ok else 1)
PY
}

# Checks the out folder right after a kill: complete-or-absent files only. Prints temp names.
check_after_kill() {
  python3 - "$REF/out" "$RUN/out" <<'PY'
import csv, json, os, sys
ref, run = sys.argv[1:]
bad, temps, present = [], [], []
if os.path.isdir(run):
    for f in sorted(os.listdir(run)):
        p = os.path.join(run, f)
        if f.startswith(".labelwise-") and f.endswith(".tmp"):
            temps.append(f"{f}({os.path.getsize(p)}B)"); continue
        present.append(f)
        try:
            if f.endswith(".parquet"):
                import pyarrow.parquet as pq
                pq.read_table(p)
            elif f.endswith(".json"):
                json.load(open(p))
            elif f.endswith(".csv"):
                data = open(p, "rb").read()
                assert data.endswith(b"\n"), "no trailing newline"
                list(csv.reader(data.decode().splitlines()))
            elif f.endswith(".html"):
                assert open(p, "rb").read().rstrip().endswith(b"</html>"), "unterminated html"
            else:
                raise AssertionError("unexpected file")
            r = os.path.join(ref, f)
            if f != "summary.json" and open(p, "rb").read() != open(r, "rb").read():
                raise AssertionError("differs from the reference (partial or stale)")
        except Exception as e:
            bad.append(f"{f}: {e}")
print("present=" + (",".join(present) or "-"))
print("temps=" + (",".join(temps) or "-"))
for b in bad:
    print("BAD " + b)
sys.exit(1 if bad else 0)
PY
}

cache_entries() { ls "$RUN/cache" 2>/dev/null | grep -c '\.lwc$'; }
ckpt_entries() { ls "$RUN/cache" 2>/dev/null | grep -c '^ckpt-.*\.lwc$'; }
cache_temps() { ls -a "$RUN/cache" 2>/dev/null | grep -E '^\.labelwise-.*\.tmp$|^\.tmp-' | tr '\n' ' '; }
graph_seconds() { python3 -c "import json;print([s['seconds'] for s in json.load(open('$1/summary.json'))['timings'] if s['stage']=='graph'][0])"; }
SEEN="$WORK/seen-ckpt"; rm -rf "$SEEN"; mkdir -p "$SEEN"
# Checkpoint entries right after a kill: complete, and equal to earlier sightings. Prints a
# description (partition yes/no, chunk count); exits 1 on a torn or differing entry.
check_ckpts() {
  python3 - "$RUN/cache" "$SEEN" <<'PY'
import os, shutil, struct, sys
cache, seen = sys.argv[1:]
bad, chunks, refined, part = [], 0, 0, False
for f in sorted(os.listdir(cache)):
    if not (f.startswith("ckpt-") and f.endswith(".lwc")):
        continue
    p = os.path.join(cache, f)
    b = open(p, "rb").read()
    if len(b) < 52 or b[:8] != b"LWCACHE\0" or struct.unpack("<Q", b[12:20])[0] != len(b) - 52:
        bad.append(f"{f}: torn (length {len(b)})"); continue
    kind = b[20:24]
    if kind == b"LWKP": part = True
    elif kind == b"LWCK" and "-r-c" in f: refined += 1
    elif kind == b"LWCK": chunks += 1
    else: bad.append(f"{f}: unknown payload {kind!r}")
    s = os.path.join(seen, f)
    if os.path.exists(s):
        if open(s, "rb").read() != b: bad.append(f"{f}: differs from an earlier run's same checkpoint")
    else:
        shutil.copyfile(p, s)
print(f"partition={'yes' if part else 'no'} chunks={chunks} refined={refined}")
for x in bad: print("BAD " + x)
sys.exit(1 if bad else 0)
PY
}
# The round history after a kill: nothing, or the whole round 1 (its CSV, the commit point,
# byte-identical to the reference's, and its figures parseable); $1 = rounds expected at most.
check_history() {
  local h="$RUN/history" n=0
  for csv in "$h"/round-*.csv; do
    [ -e "$csv" ] || continue
    n=$((n + 1))
    cmp -s "$csv" "$REF/history/round-0001.csv" || { echo "BAD $(basename "$csv") differs from the reference round"; return 1; }
    python3 -c "import json,sys; json.load(open(sys.argv[1]))" "${csv%.csv}.json" 2>/dev/null || { echo "BAD $(basename "$csv") without readable figures"; return 1; }
  done
  [ "$n" -le "$1" ] || { echo "BAD $n rounds recorded"; return 1; }
  echo "rounds=$n"
}
cache_hit() { python3 -c "import json;print(json.load(open('$RUN/out/summary.json'))['graph']['cache_hit'])"; }

# ---- reference run -------------------------------------------------------------------------
rm -rf "$RUN" "$REF"; mkdir -p "$RUN"
t0=$(now)
plan || { echo "reference run failed"; exit 1; }
T=$(python3 -c "print(f'{$(now) - $t0:.2f}')")
mv "$RUN" "$REF"
STAGES=$(python3 -c "
import json
t = json.load(open('$REF/out/summary.json'))['timings']
print(' '.join(f\"{s['stage']}:{s['seconds']:.1f}\" for s in t))")
note "reference run: ${T}s  stages: $STAGES"
note "reference outputs: $(ls "$REF/out" | tr '\n' ' ')"
REF_ENTRY=$(ls "$REF/cache"/graph-*.lwc | head -1)
REF_GRAPH=$(graph_seconds "$REF/out")
[ "$(ls "$REF/cache" | grep -c '^ckpt-')" -eq 0 ] || fail "reference run left checkpoint entries in the cache"
note "reference graph stage: ${REF_GRAPH}s (cold, writing checkpoints)"

# Kill moments: stratified, seeded.
MOMENTS=$(python3 -c "
import random
r = random.Random($SEED); T = $T; n = $KILLS
print(' '.join(f'{T * (0.03 + 0.94 * (i + r.random()) / n):.2f}' for i in range(n)))")
note "kill moments (s): $MOMENTS"

# The stage the reference run was in at time t (stage timings scaled to the wall time).
stage_at() {
  python3 -c "
import json
t = json.load(open('$REF/out/summary.json'))['timings']
total = sum(s['seconds'] for s in t); wall = $T; x = $1
pre = wall - total  # process start, argument parsing, reading footers
if x < pre: print('startup'); raise SystemExit
acc = pre
for s in t:
    acc += s['seconds']
    if x < acc: print(s['stage']); raise SystemExit
print('after-write')"
}

declare -A STAGE_COUNT
i=0
RERUN_TIMES=""
RESUMED=0
RESUMED_GRAPH=""
for m in $MOMENTS; do
  i=$((i + 1))
  rm -rf "$RUN"; mkdir -p "$RUN"
  "${PLAN[@]}" & pid=$!   # the binary itself, not a subshell: SIGKILL must hit labelwise
  sleep "$m"
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid"; wait "$pid" 2>/dev/null
    killed=yes
  else
    wait "$pid"; killed="no (already finished)"
  fi
  if [ "$killed" = yes ]; then stage=$(stage_at "$m"); else stage=finished-before-kill; fi
  STAGE_COUNT[$stage]=$(( ${STAGE_COUNT[$stage]:-0} + 1 ))
  state=$(check_after_kill) || fail "kill $i: incomplete file in out folder: $(echo "$state" | grep BAD)"
  entries=$(cache_entries)
  for e in "$RUN"/cache/graph-*.lwc; do
    [ -e "$e" ] || continue
    cmp -s "$e" "$REF_ENTRY" || fail "kill $i: cache entry $(basename "$e") differs from the reference entry (torn?)"
  done
  ck=$(check_ckpts) || fail "kill $i: bad checkpoint: $(echo "$ck" | grep BAD)"
  hist=$(check_history 1) || fail "kill $i: history half-written: $hist"
  ck=$(echo "$ck" | head -1)
  ctemps=$(cache_temps)
  note "kill $i at ${m}s (stage ~$stage, killed: $killed): out $(echo "$state" | grep '^present=' ) $(echo "$state" | grep '^temps=' | sed 's/^temps=/out-temps=/'); cache entries=$entries (checkpoints: $ck) cache-temps=${ctemps:--} history: $hist"
  t1=$(now)
  if ! plan; then
    fail "kill $i: rerun failed"
    continue
  fi
  dt=$(python3 -c "print(f'{$(now) - $t1:.1f}')")
  hit=$(cache_hit)
  gs=$(graph_seconds "$RUN/out")
  RERUN_TIMES="$RERUN_TIMES $dt"
  compare_outputs "kill $i rerun" || fail "kill $i: rerun outputs differ from the uninterrupted run"
  h_after=$(check_history 2) || fail "kill $i: history after the rerun: $h_after"
  left_out=$(ls -a "$RUN/out" | grep -c '^\.labelwise-.*\.tmp$')
  left_cache=$(cache_temps | wc -w)
  left_ckpt=$(ckpt_entries)
  [ "$left_out" -eq 0 ] && [ "$left_cache" -eq 0 ] || fail "kill $i: temp files left after the rerun: out=$left_out cache=$left_cache"
  [ "$left_ckpt" -eq 0 ] || fail "kill $i: $left_ckpt checkpoint entries left after the rerun"
  nchunks=$(echo "$ck" | sed 's/.*chunks=\([0-9]*\).*/\1/')
  if [ "$hit" = "True" ]; then how="graph from cache"
  elif [ "$nchunks" -gt 0 ] || echo "$ck" | grep -q 'partition=yes'; then
    how="resumed ($ck)"; RESUMED=$((RESUMED + 1)); RESUMED_GRAPH="$RESUMED_GRAPH $gs"
  else how="cold graph build"; fi
  note "  rerun ${dt}s, graph stage ${gs}s (cold reference ${REF_GRAPH}s) — $how; graph.cache_hit=$hit, outputs identical; temps left after rerun: out=$left_out cache=$left_cache; checkpoints left: $left_ckpt"
done

# ---- torn / corrupted cache entries --------------------------------------------------------
corrupt_case() {  # $1 = name, $2 = python snippet mutating bytes `b` of the entry
  rm -rf "$RUN"; mkdir -p "$RUN/cache"
  cp "$REF_ENTRY" "$RUN/cache/"
  local entry="$RUN/cache/$(basename "$REF_ENTRY")"
  python3 -c "
p = '$entry'; b = bytearray(open(p, 'rb').read())
$2
open(p, 'wb').write(bytes(b))"
  local t1=$(now)
  if ! plan; then fail "$1: rerun failed"; return; fi
  local dt=$(python3 -c "print(f'{$(now) - $t1:.1f}')")
  local hit=$(cache_hit)
  [ "$hit" = "False" ] || fail "$1: corrupted cache entry was trusted (cache_hit=$hit)"
  cmp -s "$entry" "$REF_ENTRY" || fail "$1: rebuilt cache entry differs from the reference"
  compare_outputs "$1" || fail "$1: outputs differ"
  note "$1: rerun ${dt}s, graph.cache_hit=$hit, entry rebuilt identical, outputs identical"
}
corrupt_case "truncated cache entry" "b = b[:len(b) // 2]"
corrupt_case "flipped byte in cache entry" "b[len(b) // 2] ^= 0x40"

# A torn checkpoint: kill a run late in the graph stage (after most chunks), truncate one chunk
# of refined rows (if any were saved, else of searched rows) and flip a byte in a chunk of
# searched rows, so the rerun needs both; it must ignore both and still match the reference.
torn_ckpt_case() {
  rm -rf "$RUN"; mkdir -p "$RUN"
  local at=$(python3 -c "
import json
t = json.load(open('$REF/out/summary.json'))['timings']
wall = $T; total = sum(s['seconds'] for s in t); acc = wall - total
for s in t:
    if s['stage'] == 'graph': print(f\"{acc + 0.8 * s['seconds']:.2f}\"); break
    acc += s['seconds']")
  "${PLAN[@]}" & local pid=$!
  sleep "$at"; kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  local searched=( $(ls "$RUN/cache" | grep '^ckpt-.*-c[0-9]*\.lwc$' | grep -v -- '-r-c') )
  local refined=( $(ls "$RUN/cache" | grep '^ckpt-.*-r-c[0-9]*\.lwc$') )
  local chunks=( "${refined[@]}" "${searched[@]}" )
  if [ "${#searched[@]}" -lt 2 ]; then note "torn checkpoint: only ${#searched[@]} search chunks after a kill at ${at}s; case skipped"; return; fi
  local cut=${refined[0]:-${searched[1]}}
  python3 -c "
p = '$RUN/cache/$cut'; b = open(p, 'rb').read(); open(p, 'wb').write(b[:len(b) // 2])
p = '$RUN/cache/${searched[0]}'; b = bytearray(open(p, 'rb').read()); b[len(b) // 2] ^= 0x40; open(p, 'wb').write(bytes(b))"
  local t1=$(now)
  if ! plan; then fail "torn checkpoint: rerun failed"; return; fi
  local dt=$(python3 -c "print(f'{$(now) - $t1:.1f}')")
  compare_outputs "torn checkpoint" || fail "torn checkpoint: outputs differ"
  [ "$(ckpt_entries)" -eq 0 ] || fail "torn checkpoint: checkpoints left after the rerun"
  note "torn checkpoint: killed at ${at}s with ${#searched[@]} search + ${#refined[@]} refined chunks saved; truncated $cut, flipped ${searched[0]}; rerun ${dt}s, graph stage $(graph_seconds "$RUN/out")s, outputs identical"
}
torn_ckpt_case

# ---- summary -------------------------------------------------------------------------------
note ""
note "summary: reference ${T}s; $i kills; stage at kill:$(for s in "${!STAGE_COUNT[@]}"; do printf ' %s=%s' "$s" "${STAGE_COUNT[$s]}"; done)"
note "rerun times (s):$RERUN_TIMES"
note "reruns that resumed the graph build from checkpoints: $RESUMED of $i; their graph-stage times (s):${RESUMED_GRAPH:- -} vs cold ${REF_GRAPH}s"
if [ "$FAILS" -eq 0 ]; then note "kill_test: PASS"; exit 0; else note "kill_test: $FAILS failure(s)"; exit 1; fi

#!/usr/bin/env bash
# Shows that Label Studio's own importer accepts `labelwise export --format label-studio`, and that
# nothing is silently dropped: every task, prediction (score, choice, model_version) and
# annotation is read back through the REST API and compared with the file.
#
# What it does, in a scratch folder:
#   1. a Python venv with label-studio from PyPI (pinned; reused when already there);
#   2. `cargo build --release`, then on datasets/banking77_sample.parquet:
#      A. `plan` with defaults, `export --format label-studio` (defaults: routes human,auto,duplicate,
#         from_name=label, to_name=text);
#      B. `plan --target-precision 0.6` (so there are auto-labels), `export --routes
#         labeled,auto,duplicate,human --from-name intent --to-name utterance --model-version ...`
#         (every route, the human labels as annotations, non-default control names);
#   3. a headless Label Studio on a free 127.0.0.1 port with a fresh data dir, a user and an API
#      token created non-interactively;
#   4. per export: a project whose <Choices> lists the dataset's 77 classes, POST
#      /api/projects/{id}/import, then label_studio_import.py reads everything back and checks it;
#      run A also checks that the server rejects a prediction with an unknown choice or control
#      (so the validation that passed is really on);
#   5. the round trip with `labelwise push/pull label-studio` (issue 16), on the sample without
#      its `true_label` column (kept aside as the hidden truth): plan round 1; push it into a
#      fresh project, killed (SIGKILL) as soon as the first tasks are in, then pushed again, and
#      checked: every task once, predictions with the project's model_version, the priority
#      view listing the tasks in numeric priority order; the true labels of the batch posted as
#      annotations through the API (the annotators); `pull` with a personal access token (JWT)
#      and Label Studio's own JSON, JSON_MIN and CSV exports; round 2 (`plan --labels`) from each
#      and from a plain id,label CSV; checked: every batch label arrived exactly, and round 2's
#      batch.csv is byte-identical whichever path the labels took (label_studio_roundtrip.py);
#   6. stops the server (trap) and prints a summary. Exit status non-zero on any mismatch.
#
# Environment: LABELWISE_LS_VENV (default /tmp/labelwise-ls-venv), LABEL_STUDIO_VERSION (default
# 1.23.2), KEEP_WORK=1 keeps the scratch folder, LABELWISE_LS_SUMMARY=FILE writes the summaries,
# LABELWISE_LS_PARTS (default "import,roundtrip") picks the parts run against the server.
# Network: only PyPI (pip). The server listens on 127.0.0.1 only; telemetry and update checks off.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${LABELWISE_LS_VENV:-/tmp/labelwise-ls-venv}
LS_VERSION=${LABEL_STUDIO_VERSION:-1.23.2}
DATA="$ROOT/datasets/banking77_sample.parquet"
WORK=$(mktemp -d /tmp/labelwise-ls.XXXXXX)
SERVER_PID=""

cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        echo "label studio server (pid $SERVER_PID) stopped"
    fi
    if [[ "${KEEP_WORK:-0}" == 1 ]]; then
        echo "scratch folder kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '== [%4ss] %s\n' "$SECONDS" "$*"; }

# 1. Label Studio in a venv.
if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating venv $VENV"
    python3 -m venv "$VENV"
fi
installed=$("$VENV/bin/python" -m pip show label-studio 2>/dev/null || true)
if ! grep -qx "Version: $LS_VERSION" <<<"$installed"; then
    say "pip install label-studio==$LS_VERSION (a few minutes)"
    nice -n 10 "$VENV/bin/python" -m pip install -q --upgrade pip
    nice -n 10 "$VENV/bin/python" -m pip install -q "label-studio==$LS_VERSION"
fi
PY="$VENV/bin/python"

# 2. labelwise: plan and export.
say "cargo build --release"
(cd "$ROOT" && nice -n 10 cargo build --release --quiet)
LW="$ROOT/target/release/labelwise"

say "run A: plan (defaults) + export --format label-studio (defaults)"
nice -n 10 "$LW" plan "$DATA" --out "$WORK/a" --no-cache --quiet
"$LW" export "$WORK/a" --format label-studio --quiet

say "run B: plan --target-precision 0.6 + export of every route, custom control names"
nice -n 10 "$LW" plan "$DATA" --out "$WORK/b" --no-cache --quiet --target-precision 0.6
"$LW" export "$WORK/b" --format label-studio --quiet \
    --routes labeled,auto,duplicate,human \
    --from-name intent --to-name utterance --model-version labelwise-ls-check \
    --output "$WORK/b/tasks-all-routes.json"

say "self-test of the comparison (no server): corrupted copies must be reported"
"$VENV/bin/python" "$ROOT/benches/peers/label_studio_import.py" --self-test \
    --tasks "$WORK/b/tasks-all-routes.json" --classes-from "$DATA" --from-name intent --to-name utterance

# 3. A headless Label Studio with a fresh data dir.
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TOKEN="lw$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
mkdir -p "$WORK/ls-data"
# Created here: the background subshell below opens it only once it runs, and the start-up loop
# reads it at once.
: >"$WORK/server.log"
say "starting label-studio $LS_VERSION on 127.0.0.1:$PORT (data dir $WORK/ls-data)"
(
    cd "$WORK"
    export LABEL_STUDIO_BASE_DATA_DIR="$WORK/ls-data"
    # No telemetry, no update check, no error reporting to third parties.
    export SENTRY_DSN="" FRONTEND_SENTRY_DSN="" LATEST_VERSION_CHECK=false COLLECT_ANALYTICS=false
    # Make the server refuse invalid predictions instead of only logging them.
    export fflag_feat_utc_210_prediction_validation_15082025=true
    exec nice -n 10 "$VENV/bin/label-studio" start --no-browser \
        --internal-host 127.0.0.1 --port "$PORT" \
        --username labelwise@example.com --password "$TOKEN" \
        --user-token "$TOKEN" --enable-legacy-api-token
) >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

URL=""
for _ in $(seq 1 600); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "error: label-studio exited during start-up; its log:" >&2
        tail -40 "$WORK/server.log" >&2
        exit 1
    fi
    # Label Studio moves to the next port if ours was taken meanwhile: read the one it chose.
    bound=$(sed -n 's|^Starting development server at \(http://127\.0\.0\.1:[0-9]*\)/.*|\1|p' "$WORK/server.log" | tail -1)
    if [[ -n "$bound" ]] && curl -fs -o /dev/null "$bound/health"; then
        URL=$bound
        break
    fi
    sleep 0.5
done
if [[ -z "$URL" ]]; then
    echo "error: label-studio did not answer within 300 s; its log:" >&2
    tail -40 "$WORK/server.log" >&2
    exit 1
fi
say "label-studio up at $URL"

PARTS=${LABELWISE_LS_PARTS:-import,roundtrip}
RT="$ROOT/benches/peers/label_studio_roundtrip.py"
status=0

# 4. Import and read back.
if [[ ",$PARTS," == *",import,"* ]]; then
say "import A: $(basename "$WORK")/a/tasks.json"
"$PY" "$ROOT/benches/peers/label_studio_import.py" --url "$URL" --token "$TOKEN" \
    --tasks "$WORK/a/tasks.json" --classes-from "$DATA" \
    --title "labelwise run A (defaults)" --negative-controls \
    --summary-json "$WORK/summary-a.json" || status=1

say "import B: $(basename "$WORK")/b/tasks-all-routes.json"
"$PY" "$ROOT/benches/peers/label_studio_import.py" --url "$URL" --token "$TOKEN" \
    --tasks "$WORK/b/tasks-all-routes.json" --classes-from "$DATA" \
    --from-name intent --to-name utterance \
    --title "labelwise run B (all routes)" \
    --summary-json "$WORK/summary-b.json" || status=1

fi

# 5. The round trip through push and pull.
roundtrip() {
    local rt="$WORK/rt" pid total
    mkdir -p "$rt"
    say "round trip: pool without true_label, plan round 1"
    "$PY" "$RT" prepare --data "$DATA" --pool "$rt/pool.parquet" --truth "$rt/truth.json" || return 1
    nice -n 10 "$LW" plan "$rt/pool.parquet" --out "$rt/r1" --no-cache --quiet || return 1
    "$LW" export "$rt/r1" --format label-studio --quiet --output "$rt/r1-tasks.json" || return 1
    total=$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$rt/r1-tasks.json")
    local pid_project
    pid_project=$("$PY" "$RT" project --url "$URL" --token "$TOKEN" --truth "$rt/truth.json" \
        --title "labelwise round trip") || return 1
    say "push round 1 ($total tasks) into project $pid_project, killed mid-way"
    LABEL_STUDIO_API_KEY="$TOKEN" "$LW" push label-studio "$rt/r1" --url "$URL" \
        --project "$pid_project" --chunk 100 --quiet 2>"$rt/push-killed.log" &
    pid=$!
    "$PY" "$RT" interrupt --url "$URL" --token "$TOKEN" --project "$pid_project" \
        --pid "$pid" --total "$total" || return 1
    wait "$pid" 2>/dev/null || true
    say "push again (resumes: sends only the missing tasks)"
    LABEL_STUDIO_API_KEY="$TOKEN" "$LW" push label-studio "$rt/r1" --url "$URL" \
        --project "$pid_project" --chunk 100 --quiet || return 1
    say "push a third time (nothing to send)"
    LABEL_STUDIO_API_KEY="$TOKEN" "$LW" push label-studio "$rt/r1" --url "$URL" \
        --project "$pid_project" --chunk 100 --quiet || return 1
    "$PY" "$RT" check-push --url "$URL" --token "$TOKEN" --project "$pid_project" \
        --tasks "$rt/r1-tasks.json" || return 1
    say "annotators: the batch's true labels posted through the API"
    "$PY" "$RT" annotate --url "$URL" --token "$TOKEN" --project "$pid_project" \
        --truth "$rt/truth.json" --batch "$rt/r1/batch.csv" || return 1
    say "pull with a personal access token (JWT refresh token, exchanged for a Bearer token)"
    local pat
    pat=$("$PY" "$RT" pat --url "$URL" --token "$TOKEN") || return 1
    LABEL_STUDIO_API_KEY="$pat" "$LW" pull label-studio --url "$URL" --project "$pid_project" \
        --out "$rt/pulled.json" --quiet || return 1
    say "Label Studio's own exports: JSON, JSON_MIN, CSV; and a plain id,label CSV"
    "$PY" "$RT" exports --url "$URL" --token "$TOKEN" --project "$pid_project" --out-dir "$rt" || return 1
    "$PY" "$RT" plain --truth "$rt/truth.json" --batch "$rt/r1/batch.csv" --out "$rt/plain.csv" || return 1
    say "round 2 from each"
    local f runs=()
    for f in plain.csv pulled.json ls-json.json ls-json-min.json ls.csv; do
        nice -n 10 "$LW" plan "$rt/pool.parquet" --labels "$rt/$f" --out "$rt/r2-$f" --no-cache --quiet || return 1
        runs+=("$rt/r2-$f")
    done
    "$PY" "$RT" check-round2 --pool "$rt/pool.parquet" --truth "$rt/truth.json" \
        --batch "$rt/r1/batch.csv" "${runs[@]}" || return 1
    say "round trip passed"
}
if [[ ",$PARTS," == *",roundtrip,"* ]]; then
    roundtrip || { say "round trip FAILED"; status=1; }
fi

if [[ -n "${LABELWISE_LS_SUMMARY:-}" ]]; then
    "$PY" -c 'import json,sys; print(json.dumps([json.load(open(p)) for p in sys.argv[1:]], indent=1))' \
        "$WORK/summary-a.json" "$WORK/summary-b.json" >"$LABELWISE_LS_SUMMARY" 2>/dev/null || true
fi

if [[ $status -eq 0 ]]; then
    say "PASS ($PARTS): label-studio $LS_VERSION; every check above held"
else
    say "FAIL: see MISMATCH lines above"
fi
exit $status

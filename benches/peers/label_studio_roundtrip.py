#!/usr/bin/env python3
"""The labeling round trip through a running Label Studio, step by step, for
label_studio_import.sh: `labelwise push label-studio`, annotators (the hidden true labels posted
through the API), `labelwise pull label-studio` and Label Studio's own JSON, JSON_MIN and CSV
exports, then round 2 from each, checked label by label and batch by batch.

Each subcommand does one step and exits 1 on any mismatch (MISMATCH lines on stderr), 0 when
every check passed, 2 on bad usage. Standard library plus pyarrow (a Label Studio dependency).
"""

import argparse
import csv
import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from label_studio_import import Api, labeling_config  # noqa: E402

VIEW_TITLE = "labelwise: batch by priority"


def fail(errors):
    for e in errors[:50]:
        print(f"MISMATCH: {e}", file=sys.stderr)
    if len(errors) > 50:
        print(f"... and {len(errors) - 50} more", file=sys.stderr)
    return 1 if errors else 0


def prepare(args):
    """The pool without its hidden truth, and the truth kept aside (id -> true label)."""
    import pyarrow.parquet as pq

    table = pq.read_table(args.data)
    truth = dict(zip(table.column("id").to_pylist(), table.column("true_label").to_pylist()))
    pq.write_table(table.drop_columns(["true_label"]), args.pool)
    Path(args.truth).write_text(json.dumps(truth))
    classes = sorted(set(truth.values()))
    print(f"pool {args.pool}: {table.num_rows} rows, {len(classes)} classes, "
          f"{table.column('label').null_count} unlabeled")
    return 0


def project(args):
    """A project whose single-choice config lists every true class; prints its id."""
    api = Api(args.url, args.token)
    classes = sorted(set(json.loads(Path(args.truth).read_text()).values()))
    config = labeling_config(classes, "label", "text", "text")
    _, p = api.call("POST", "/api/projects/", {"title": args.title, "label_config": config})
    print(p["id"])
    return 0


def pat(args):
    """Creates a personal access token (a JWT refresh token) for the user; prints it."""
    api = Api(args.url, args.token)
    _, body = api.call("POST", "/api/token/", {})
    print(body["token"])
    return 0


def task_total(api, pid, view=None):
    where = f"view={view}" if view else f"project={pid}"
    status, body = api.call("GET", f"/api/tasks/?{where}&page=1&page_size=1", ok=(200, 404))
    return body.get("total", 0) if status == 200 else 0


def interrupt(args):
    """Kills the push with pid --pid (SIGKILL) as soon as the project holds tasks, mid-push."""
    api = Api(args.url, args.token)
    deadline = time.time() + 600
    while time.time() < deadline:
        n = task_total(api, args.project)
        if n > 0:
            os.kill(args.pid, signal.SIGKILL)
            time.sleep(2)  # let the server finish the request in flight, if any
            n = task_total(api, args.project)
            print(f"push killed (SIGKILL) with {n} of {args.total} tasks in the project")
            if n >= args.total:
                return fail([f"the push had finished ({n} tasks) before it was killed"])
            return 0
        try:
            os.kill(args.pid, 0)
        except ProcessLookupError:
            return fail(["the push ended before any task arrived"])
        time.sleep(0.05)
    return fail(["no task arrived within 600 s"])


def all_tasks(api, query):
    tasks, page = [], 1
    while True:
        status, body = api.call(
            "GET", f"/api/tasks/?{query}&page={page}&page_size=500&fields=all", ok=(200, 404)
        )
        batch = body.get("tasks", []) if status == 200 else []
        tasks.extend(batch)
        if not batch or len(tasks) >= body.get("total", 0):
            return tasks
        page += 1


def check_push(args):
    """The project holds each exported task once, with the project's model_version on every
    prediction, and the priority view hands the tasks out in priority order."""
    api = Api(args.url, args.token)
    want = json.loads(Path(args.tasks).read_text())
    errors = []
    stored = all_tasks(api, f"project={args.project}")
    ids = [t["data"].get("lw_id") for t in stored]
    if len(ids) != len(set(ids)):
        errors.append(f"{len(ids) - len(set(ids))} tasks stored twice")
    if sorted(ids) != sorted(t["data"]["lw_id"] for t in want):
        errors.append(f"stored {len(ids)} tasks, the export has {len(want)}; sets differ")
    by_id = {t["data"]["lw_id"]: t for t in stored}
    _, proj = api.call("GET", f"/api/projects/{args.project}/")
    versions = {p.get("model_version") for t in stored for p in t.get("predictions", [])}
    if versions != {proj.get("model_version")}:
        errors.append(f"prediction model_versions {versions} != project's {proj.get('model_version')!r}")
    n_pred = 0
    for w in want:
        g = by_id.get(w["data"]["lw_id"])
        if g is None:
            continue
        if g["data"] != w["data"]:
            errors.append(f"{w['data']['lw_id']}: data changed")
        for wp, gp in zip(w.get("predictions", []), g.get("predictions", [])):
            n_pred += 1
            if gp.get("score") != wp.get("score") or gp["result"][0]["value"] != wp["result"][0]["value"]:
                errors.append(f"{w['data']['lw_id']}: prediction changed")
    _, views = api.call("GET", f"/api/dm/views/?project={args.project}")
    ours = [v for v in views if v["data"].get("title") == VIEW_TITLE]
    if len(ours) != 1:
        errors.append(f"{len(ours)} views titled {VIEW_TITLE!r}, expected 1")
    else:
        shown = all_tasks(api, f"view={ours[0]['id']}")
        prios = [t["data"].get("lw_priority") for t in shown]
        ranked = [p for p in prios if p is not None]
        if ranked != sorted(ranked):
            errors.append("the view does not list the tasks in lw_priority order")
        if prios[: len(ranked)] != ranked:
            errors.append("tasks without a priority come before ranked ones in the view")
        print(f"view {ours[0]['id']}: {len(shown)} tasks, first priorities {ranked[:5]}, "
              f"numeric order kept past 9 -> 10: {ranked[8:11]}")
    audits = sum(1 for t in stored if t["data"].get("lw_audit"))
    print(f"project {args.project}: {len(stored)} tasks (export {len(want)}), each lw_id once; "
          f"{n_pred} predictions equal, model_version {proj.get('model_version')!r}; {audits} audit tasks")
    return fail(errors)


def batch_ids(path):
    with open(path, newline="") as f:
        return [row["id"] for row in csv.DictReader(f)]


def annotate(args):
    """Posts the true label of every batch item as an annotation, as an annotator would."""
    api = Api(args.url, args.token)
    truth = json.loads(Path(args.truth).read_text())
    batch = set(batch_ids(args.batch))
    stored = all_tasks(api, f"project={args.project}")
    posted = 0
    for t in stored:
        lw_id = t["data"].get("lw_id")
        if lw_id not in batch:
            continue
        result = [{"from_name": "label", "to_name": "text", "type": "choices",
                   "value": {"choices": [truth[lw_id]]}}]
        api.call("POST", f"/api/tasks/{t['id']}/annotations/",
                 {"result": result, "was_cancelled": False, "ground_truth": False})
        posted += 1
    print(f"posted {posted} annotations (the true labels of the {len(batch)} batch items)")
    return fail([] if posted == len(batch) else [f"posted {posted} of {len(batch)}"])


def exports(args):
    """Label Studio's own exports of the project: JSON, JSON_MIN and CSV."""
    api = Api(args.url, args.token)
    out = Path(args.out_dir)
    for kind, name in (("JSON", "ls-json.json"), ("JSON_MIN", "ls-json-min.json"), ("CSV", "ls.csv")):
        req_url = f"{api.url}/api/projects/{args.project}/export?exportType={kind}"
        import urllib.request

        req = urllib.request.Request(req_url, headers={"Authorization": api.headers["Authorization"]})
        with urllib.request.urlopen(req, timeout=600) as resp:
            (out / name).write_bytes(resp.read())
        print(f"export {kind}: {(out / name).stat().st_size} bytes -> {name}")
    return 0


def plain(args):
    """The reference: a plain id,label CSV of the batch's true labels."""
    truth = json.loads(Path(args.truth).read_text())
    with open(args.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label"])
        for i in batch_ids(args.batch):
            w.writerow([i, truth[i]])
    return 0


def check_round2(args):
    """Every batch label arrived exactly, and round 2 is the same whichever path it took."""
    import pyarrow.parquet as pq

    truth = json.loads(Path(args.truth).read_text())
    batch = set(batch_ids(args.batch))
    pool = pq.read_table(args.pool, columns=["id", "label"])
    before = dict(zip(pool.column("id").to_pylist(), pool.column("label").to_pylist()))
    want = {i: (truth[i] if i in batch else before[i]) for i in before}
    errors = []
    reference = None
    for run in args.runs:
        items = pq.read_table(Path(run) / "items.parquet", columns=["id", "label"])
        got = dict(zip(items.column("id").to_pylist(), items.column("label").to_pylist()))
        wrong = [i for i in want if got.get(i) != want[i]]
        if wrong:
            errors.append(f"{run}: {len(wrong)} labels differ, e.g. {wrong[0]}: {got.get(wrong[0])!r} != {want[wrong[0]]!r}")
        merge = json.loads((Path(run) / "summary.json").read_text()).get("label_merge", {})
        batch_csv = (Path(run) / "batch.csv").read_bytes()
        if reference is None:
            reference = (run, batch_csv)
        elif batch_csv != reference[1]:
            errors.append(f"{run}/batch.csv differs from {reference[0]}/batch.csv")
        print(f"{run}: format {merge.get('format')}, applied {merge.get('applied')}, "
              f"unknown ids {merge.get('unknown_ids')}, ties {merge.get('ties')}; "
              f"labels exact: {not wrong}; batch.csv {len(batch_csv)} bytes, "
              f"same as {reference[0]}: {batch_csv == reference[1]}")
        if merge.get("applied") != len(batch):
            errors.append(f"{run}: label_merge applied {merge.get('applied')}, batch has {len(batch)}")
    return fail(errors)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument("--url", required=True)
    server.add_argument("--token", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--data", required=True)
    p.add_argument("--pool", required=True)
    p.add_argument("--truth", required=True)
    p = sub.add_parser("project", parents=[server])
    p.add_argument("--truth", required=True)
    p.add_argument("--title", required=True)
    sub.add_parser("pat", parents=[server])
    p = sub.add_parser("interrupt", parents=[server])
    p.add_argument("--project", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--total", type=int, required=True)
    p = sub.add_parser("check-push", parents=[server])
    p.add_argument("--project", type=int, required=True)
    p.add_argument("--tasks", required=True)
    p = sub.add_parser("annotate", parents=[server])
    p.add_argument("--project", type=int, required=True)
    p.add_argument("--truth", required=True)
    p.add_argument("--batch", required=True)
    p = sub.add_parser("exports", parents=[server])
    p.add_argument("--project", type=int, required=True)
    p.add_argument("--out-dir", required=True)
    p = sub.add_parser("plain")
    p.add_argument("--truth", required=True)
    p.add_argument("--batch", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("check-round2")
    p.add_argument("--pool", required=True)
    p.add_argument("--truth", required=True)
    p.add_argument("--batch", required=True)
    p.add_argument("runs", nargs="+")
    args = ap.parse_args()
    return {
        "prepare": prepare, "project": project, "pat": pat, "interrupt": interrupt,
        "check-push": check_push, "annotate": annotate, "exports": exports, "plain": plain,
        "check-round2": check_round2,
    }[args.cmd](args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError, ValueError, KeyError) as e:
        print(f"MISMATCH: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)

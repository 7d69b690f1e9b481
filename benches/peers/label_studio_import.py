#!/usr/bin/env python3
"""Imports a labelwise Label Studio export through a running Label Studio's REST API and checks
that every task, prediction and annotation arrived intact.

Driven by label_studio_import.sh, which installs Label Studio, runs labelwise and starts the
server. Label Studio's importer is permissive (with its prediction validation flag off it only
logs bad predictions and keeps the tasks), so acceptance alone proves little: this script reads
everything back and compares it field by field with the file, and with --negative-controls also
shows that the server rejects a prediction whose choice is not in the labeling config, so the
validation that passed is really on.

Uses only the standard library plus pyarrow (a Label Studio dependency) to read the classes.
Exit status: 0 when every check passes, 1 on any mismatch, 2 on bad usage.
"""

import argparse
import copy
import json
import math
import sys
import urllib.error
import urllib.request
from xml.sax.saxutils import quoteattr


class Api:
    """A minimal Label Studio REST client (token auth, JSON in and out)."""

    def __init__(self, url, token):
        self.url = url.rstrip("/")
        self.headers = {
            "Authorization": f"Token {token}",
            "Content-Type": "application/json",
        }

    def call(self, method, path, body=None, ok=(200, 201, 204)):
        """Returns (status, parsed JSON or raw text); raises on an unexpected status."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, method=method, headers=self.headers, data=data
        )
        try:
            with urllib.request.urlopen(req, timeout=600) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        if ok is not None and status not in ok:
            raise RuntimeError(
                f"{method} {path}: HTTP {status}: {str(payload)[:2000]}"
            )
        return status, payload


def classes_of(path, column):
    """The distinct non-null values of a dataset's label column, sorted."""
    import pyarrow.parquet as pq

    values = pq.read_table(path, columns=[column]).column(column).to_pylist()
    return sorted({str(v) for v in values if v is not None})


def labeling_config(classes, from_name, to_name, text_key):
    """A single-choice text classification config naming the given classes."""
    choices = "".join(f"<Choice value={quoteattr(c)}/>" for c in classes)
    return (
        f"<View><Text name={quoteattr(to_name)} value={quoteattr('$' + text_key)}/>"
        f"<Choices name={quoteattr(from_name)} toName={quoteattr(to_name)} "
        f'choice="single" showInline="false">{choices}</Choices></View>'
    )


def all_tasks(api, project):
    """Every task of a project with its predictions and annotations, in id order."""
    tasks, page = [], 1
    while True:
        status, body = api.call(
            "GET",
            f"/api/tasks/?project={project}&page={page}&page_size=500&fields=all",
            ok=(200, 404),
        )
        batch = body.get("tasks", []) if status == 200 else []
        if not batch:
            break
        tasks.extend(batch)
        page += 1
    return sorted(tasks, key=lambda t: t["id"])


def same_result(got, want):
    """A stored result region equals the exported one on every field the export set."""
    return all(got.get(k) == v for k, v in want.items())


def check(file_tasks, ls_tasks, classes, errors):
    """Compares the file with what Label Studio stored; appends one line per mismatch."""
    counts = {"predictions": 0, "annotations": 0, "scores": 0, "choices_in_config": 0}
    if len(ls_tasks) != len(file_tasks):
        errors.append(f"task count: file {len(file_tasks)}, Label Studio {len(ls_tasks)}")
    by_id = {}
    for t in ls_tasks:
        key = t["data"].get("lw_id")
        if key in by_id:
            errors.append(f"lw_id {key!r} stored twice")
        by_id[key] = t
    order = []
    for i, want in enumerate(file_tasks):
        key = want["data"].get("lw_id")
        got = by_id.get(key)
        if got is None:
            errors.append(f"task {i} ({key!r}) missing after import")
            continue
        order.append(got.get("inner_id", got["id"]))
        if got["data"] != want["data"]:
            errors.append(f"task {key!r}: data changed: {got['data']} != {want['data']}")
        for kind in ("predictions", "annotations"):
            wants = want.get(kind, [])
            gots = got.get(kind, [])
            if len(gots) != len(wants):
                errors.append(
                    f"task {key!r}: {len(wants)} {kind} in file, {len(gots)} stored"
                )
                continue
            for w, g in zip(wants, gots):
                if len(g.get("result", [])) != len(w["result"]) or not all(
                    same_result(gr, wr) for gr, wr in zip(g["result"], w["result"])
                ):
                    errors.append(
                        f"task {key!r}: {kind} result changed: {g.get('result')} != {w['result']}"
                    )
                for r in g.get("result", []):
                    for c in r.get("value", {}).get("choices", []):
                        if c in classes:
                            counts["choices_in_config"] += 1
                        else:
                            errors.append(f"task {key!r}: choice {c!r} not in the config")
                if kind == "predictions":
                    if g.get("model_version") != w.get("model_version"):
                        errors.append(
                            f"task {key!r}: model_version {g.get('model_version')!r} "
                            f"!= {w.get('model_version')!r}"
                        )
                    gs, ws = g.get("score"), w.get("score")
                    if gs is None or not math.isclose(gs, ws, rel_tol=1e-12, abs_tol=0.0):
                        errors.append(f"task {key!r}: score {gs!r} != {ws!r}")
                    else:
                        counts["scores"] += 1
                elif g.get("was_cancelled"):
                    errors.append(f"task {key!r}: annotation stored as cancelled")
                counts[kind] += 1
        if want.get("annotations") and not got.get("is_labeled"):
            errors.append(f"task {key!r}: has an annotation but is not labeled")
        if not want.get("annotations") and got.get("is_labeled"):
            errors.append(f"task {key!r}: labeled without an annotation")
    if order != sorted(order):
        errors.append("Label Studio's task order differs from the file's (priority order lost)")
    return counts


def negative_controls(api, config, file_tasks, from_name):
    """Shows the server's prediction validation is on: a bad choice and a bad control are refused."""
    sample = next((t for t in file_tasks if t.get("predictions")), None)
    if sample is None:
        return ["no task with predictions to build a negative control from"]
    _, scratch = api.call(
        "POST", "/api/projects/", {"title": "labelwise negative control", "label_config": config}
    )
    errors = []
    try:
        bad_choice = copy.deepcopy(sample)
        bad_choice["predictions"][0]["result"][0]["value"]["choices"] = ["labelwise-no-such-class"]
        bad_control = copy.deepcopy(sample)
        bad_control["predictions"][0]["result"][0]["from_name"] = from_name + "-no-such-control"
        for name, task in (("unknown choice", bad_choice), ("unknown from_name", bad_control)):
            status, body = api.call(
                "POST", f"/api/projects/{scratch['id']}/import", [task], ok=None
            )
            if status == 400:
                print(f"  negative control ({name}): rejected with HTTP 400, as it should be")
            else:
                errors.append(
                    f"negative control ({name}): HTTP {status}, expected 400 "
                    f"(the server does not validate predictions, so acceptance proves nothing)"
                )
    finally:
        api.call("DELETE", f"/api/projects/{scratch['id']}/")
    return errors


def self_test(file_tasks, classes):
    """Shows that check() notices each way an importer can lose data, on corrupted copies."""

    def stored(tasks):
        out = []
        for i, t in enumerate(tasks):
            g = copy.deepcopy(t)
            g.update(id=i + 1, inner_id=i + 1, is_labeled=bool(t.get("annotations")))
            out.append(g)
        return out

    errors = []
    check(file_tasks, stored(file_tasks), classes, errors)
    if errors:
        return [f"self-test: a faithful copy was reported: {errors[0]}"]
    with_pred = [i for i, t in enumerate(file_tasks) if t.get("predictions")]
    with_ann = [i for i, t in enumerate(file_tasks) if t.get("annotations")]

    def drop_prediction(s):
        del s[with_pred[0]]["predictions"]

    def shift_score(s):
        s[with_pred[-1]]["predictions"][0]["score"] += 1e-6

    def change_choice(s):
        s[with_pred[0]]["predictions"][0]["result"][0]["value"]["choices"] = ["not-a-class"]

    def change_data(s):
        s[0]["data"]["lw_route"] = "changed"

    def drop_task(s):
        s.pop()

    def drop_annotation(s):
        s[with_ann[0]]["annotations"] = []

    def reorder(s):
        s[0]["inner_id"], s[-1]["inner_id"] = s[-1]["inner_id"], s[0]["inner_id"]

    cases = [drop_prediction, shift_score, change_choice, change_data, drop_task, reorder]
    if with_ann:
        cases.append(drop_annotation)
    failures = []
    for case in cases:
        corrupted = stored(file_tasks)
        case(corrupted)
        found = []
        check(file_tasks, corrupted, classes, found)
        print(f"  self-test {case.__name__}: {len(found)} mismatch(es) reported")
        if not found:
            failures.append(f"self-test: {case.__name__} went unnoticed")
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url")
    ap.add_argument("--token")
    ap.add_argument("--tasks", required=True, help="labelwise's tasks.json")
    ap.add_argument("--classes-from", required=True, help="Parquet file whose label column lists the classes")
    ap.add_argument("--class-col", default="label")
    ap.add_argument("--from-name", default="label")
    ap.add_argument("--to-name", default="text")
    ap.add_argument("--text-key", default="text", help="the data key the Text object shows")
    ap.add_argument("--title", default="labelwise import check")
    ap.add_argument("--negative-controls", action="store_true")
    ap.add_argument("--summary-json", help="also write the summary here")
    ap.add_argument(
        "--self-test",
        action="store_true",
        help="no server: check that the comparison notices corrupted copies of the file, then exit",
    )
    args = ap.parse_args()
    if not args.self_test and not (args.url and args.token):
        ap.error("--url and --token are required (or --self-test)")

    with open(args.tasks) as f:
        file_tasks = json.load(f)
    if not isinstance(file_tasks, list) or not file_tasks:
        print(f"error: {args.tasks}: not a non-empty JSON array of tasks", file=sys.stderr)
        return 2
    classes = classes_of(args.classes_from, args.class_col)
    if args.self_test:
        failures = self_test(file_tasks, set(classes))
        for f in failures:
            print(f"MISMATCH: {f}", file=sys.stderr)
        return 1 if failures else 0
    config = labeling_config(classes, args.from_name, args.to_name, args.text_key)
    api = Api(args.url, args.token)
    errors = []

    missing_text = sum(1 for t in file_tasks if args.text_key not in t["data"])
    if missing_text:
        errors.append(f"{missing_text} tasks have no data.{args.text_key} for the Text object")

    _, project = api.call("POST", "/api/projects/", {"title": args.title, "label_config": config})
    pid = project["id"]
    parsed = project.get("parsed_label_config", {}).get(args.from_name, {})
    if sorted(parsed.get("labels", [])) != classes:
        errors.append(
            f"Label Studio parsed {len(parsed.get('labels', []))} choices from the config, "
            f"expected {len(classes)}"
        )

    want_preds = sum(len(t.get("predictions", [])) for t in file_tasks)
    want_anns = sum(len(t.get("annotations", [])) for t in file_tasks)
    _, imported = api.call("POST", f"/api/projects/{pid}/import", file_tasks)
    for key, want in (
        ("task_count", len(file_tasks)),
        ("prediction_count", want_preds),
        ("annotation_count", want_anns),
    ):
        if imported.get(key) != want:
            errors.append(f"import response {key} = {imported.get(key)}, file has {want}")

    _, stats = api.call("GET", f"/api/projects/{pid}/")
    for key, want in (
        ("task_number", len(file_tasks)),
        ("total_predictions_number", want_preds),
        ("total_annotations_number", want_anns),
    ):
        if stats.get(key) != want:
            errors.append(f"project {key} = {stats.get(key)}, file has {want}")

    ls_tasks = all_tasks(api, pid)
    counts = check(file_tasks, ls_tasks, set(classes), errors)
    _, version = api.call("GET", "/api/version")

    if args.negative_controls:
        errors.extend(negative_controls(api, config, file_tasks, args.from_name))

    routes = {}
    for t in file_tasks:
        r = t["data"].get("lw_route")
        routes[r] = routes.get(r, 0) + 1
    summary = {
        "label_studio": version.get("release"),
        "project": pid,
        "title": args.title,
        "from_name": args.from_name,
        "to_name": args.to_name,
        "classes_in_config": len(classes),
        "file_tasks": len(file_tasks),
        "file_routes": routes,
        "file_predictions": want_preds,
        "file_annotations": want_anns,
        "import_response": {k: imported.get(k) for k in ("task_count", "prediction_count", "annotation_count")},
        "import_seconds": round(imported.get("duration", 0.0), 3),
        "stored_tasks": len(ls_tasks),
        "stored_predictions_checked": counts["predictions"],
        "stored_annotations_checked": counts["annotations"],
        "scores_equal": counts["scores"],
        "choices_in_config": counts["choices_in_config"],
        "errors": len(errors),
    }
    print(json.dumps(summary, indent=1))
    if args.summary_json:
        with open(args.summary_json, "w") as f:
            json.dump(summary, f, indent=1)
    for e in errors[:50]:
        print(f"MISMATCH: {e}", file=sys.stderr)
    if len(errors) > 50:
        print(f"... and {len(errors) - 50} more", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError, ValueError, KeyError) as e:
        print(f"MISMATCH: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)

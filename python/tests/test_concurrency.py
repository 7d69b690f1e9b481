"""The GIL is released while Rust works: two plans in two threads run at the same time."""

from __future__ import annotations

import pathlib
import threading
import time

import pyarrow.parquet as pq

import labelwise


def test_two_plans_in_two_threads_overlap(sample: pathlib.Path) -> None:
    table = pq.read_table(sample)
    events: dict[str, list[tuple[str, float]]] = {"a": [], "b": []}
    results: dict[str, labelwise.Result] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work(name: str) -> None:
        def stage(s: str) -> None:
            events[name].append((s, time.perf_counter()))

        try:
            barrier.wait()
            results[name] = labelwise.plan(table, batch=30, progress=stage, threads=1)
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    # Each plan reports its stages from inside Rust: load first, budget last.
    for name in "ab":
        stages = [s for s, _ in events[name]]
        assert stages[0] == "load" and stages[-1] == "budget", stages
    # Overlap: each plan started its first stage before the other reported its last one. Were
    # the GIL held, one plan would run from its first stage to its last with the other blocked.
    first = {n: events[n][0][1] for n in "ab"}
    last = {n: events[n][-1][1] for n in "ab"}
    assert first["a"] < last["b"] and first["b"] < last["a"], events
    assert results["a"].batch is not None and results["b"].batch is not None
    assert results["a"].batch.equals(results["b"].batch)


def test_progress_bar(sample: pathlib.Path, capsys) -> None:  # type: ignore[no-untyped-def]
    labelwise.score(sample, no_cache=True, progress=True)
    err = capsys.readouterr().err
    assert "labelwise score" in err

"""labelwise: which items humans should label next, which ones it can label itself at a
precision you set, and how many labels, hours and dollars are left.

Every function runs the labelwise library (Rust) in-process, on

* Parquet paths (a file, a folder of them, or a list), exactly as the CLI reads them;
* anything with the Arrow C stream interface (``pyarrow.Table``, ``pyarrow.RecordBatchReader``,
  ``polars.DataFrame``; a ``pandas.DataFrame`` goes through ``pyarrow.Table.from_pandas``),
  read without copying;
* a numpy embedding matrix with ``ids=`` (and optionally per-row ``labels=``), see
  :func:`table`.

Keyword arguments are the CLI's flags (``--target-precision 0.9`` is ``target_precision=0.9``)
with the CLI's defaults, parsed by the CLI's own definitions, so every default, check and error
message is the CLI's. ``help(labelwise.plan)`` lists them. Results are pyarrow Tables and the
summary as a dict (:class:`Result`); with ``out=DIR`` the same files as the CLI are written.
Bad input raises :class:`InputError` (a ``ValueError``) with the CLI's one-line message, and
nothing is written. The GIL is released while Rust works.

``rules=`` (``plan``, ``autolabel``, ``select``, ``simulate``, ``rules``) takes a rules file path
or a list mixing at most one path with rule functions: ``fn`` (named by its ``__name__``) or
``("name", fn)``. A rule function is called on the pool's carried columns, one
``pyarrow.RecordBatch`` at a time in row order, and returns per row a label (str) or None to
abstain, as a list, a pyarrow array or a numpy array; its votes are analysed, combined and
certified exactly as a rules file's (see :func:`rules`).
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import pyarrow as pa

from . import _labelwise
from ._labelwise import InputError

__all__ = [
    "InputError",
    "Result",
    "autolabel",
    "budget",
    "dedup",
    "export",
    "parameters",
    "plan",
    "rules",
    "score",
    "select",
    "simulate",
    "table",
]

__version__: str = _labelwise.__version__

PathLike = Union[str, "os.PathLike[str]"]
#: What the commands read: paths, an Arrow stream producer, or a numpy matrix (with ``ids=``).
Data = Any
#: ``progress=``: False (silent), True (a tqdm bar) or a callable told each stage's name.
ProgressArg = Union[bool, Callable[[str], Any]]

#: The tables each command returns, as the files it writes (``pairs`` is
#: duplicate_pairs.parquet, ``batch`` batch.csv, ``budget`` budget.csv).
_TABLES: dict[str, tuple[str, ...]] = {
    "plan": ("items", "pairs", "autolabels", "batch", "budget"),
    "dedup": ("items", "pairs"),
    "score": ("items",),
    "autolabel": ("items", "autolabels"),
    "select": ("items", "batch"),
    "budget": ("budget",),
    "simulate": ("curve", "selections", "autolabels", "split"),
    "rules": ("votes",),
}

#: The stages a command reports to ``progress`` (a cached graph reports no ``graph``).
_STAGES: dict[str, tuple[str, ...]] = {
    "plan": ("load", "graph", "dedup", "autolabel", "rarity", "select", "budget"),
    "dedup": ("load", "graph", "dedup"),
    "score": ("load", "graph", "rarity"),
    "autolabel": ("load", "graph", "dedup", "autolabel"),
    "select": ("load", "graph", "dedup", "autolabel", "rarity", "select"),
    "budget": ("load", "graph", "dedup", "autolabel", "budget"),
    "simulate": ("load", "graph", "rounds"),
    "rules": ("load", "rules"),
}

#: Names rule functions' votes in messages and summary.json (a rules file is named by its path).
_PY_RULES = "<python>"


@dataclass(frozen=True)
class Result:
    """What a command computed. A table is None when the command does not produce it.

    Attributes:
        summary: summary.json's contents (one shape for every command; see the README).
        items: items.parquet: one row per item, the stages' columns, the carried columns
            (None from ``labelwise.distributed``'s map route, which writes it as a folder of
            parts on the cluster: read the folder).
        pairs: duplicate_pairs.parquet: ``id_a``, ``id_b``, ``cosine``.
        autolabels: autolabels.parquet: ``id``, ``label``, ``confidence``, ``source``
            (simulate: autolabels.csv, every round's, with ``round``).
        batch: batch.csv: ``rank``, ``id``, ``score``, ``reasons``, the carried columns.
        budget: budget.csv: the projection at +1x, +2x, +5x, +10x the batch.
        curve: simulate's curve.csv (from ``summary["curve"]``).
        selections: simulate's selections.csv: ``round``, ``id``.
        split: simulate's split.csv: ``id``, ``split``.
        rules: rules' rules.csv: per rule coverage, overlaps, conflicts and accuracy
            (from ``summary["rules"]["per_rule"]``).
        votes: rules' rule_votes.parquet: per item the majority label and the rules that fired.
    """

    summary: dict[str, Any]
    items: pa.Table | None = None
    pairs: pa.Table | None = None
    autolabels: pa.Table | None = None
    batch: pa.Table | None = None
    budget: pa.Table | None = None
    curve: pa.Table | None = None
    selections: pa.Table | None = None
    split: pa.Table | None = None
    rules: pa.Table | None = None
    votes: pa.Table | None = None


@dataclass(frozen=True)
class Parameter:
    """One keyword argument of a command: the CLI flag it stands for.

    Attributes:
        name: the keyword (``target_precision``).
        flag: the CLI flag (``--target-precision``), or the positional's name.
        takes_value: False for switches such as ``no_cache`` (pass True to set them).
        positional: True for ``DATA`` / ``DIR``.
        multiple: several values (a list, or one comma-separated string).
        default: the CLI's default, as text (None when it has none).
        choices: the allowed values of an enumeration (empty otherwise).
        help: the flag's one-line help.
    """

    name: str
    flag: str
    takes_value: bool
    positional: bool
    multiple: bool
    default: str | None
    choices: tuple[str, ...]
    help: str


_PARAMS: dict[str, dict[str, Parameter]] = {}


def parameters(command: str) -> dict[str, Parameter]:
    """The keyword arguments of ``command`` (its CLI flags), with the CLI's defaults and help.

    Read from the command line's own definitions, so they cannot drift from the CLI.
    """
    if command not in _PARAMS:
        params: dict[str, Parameter] = {}
        for p in _labelwise.parameters(command):
            name = p["flag"].replace("-", "_")
            params[name] = Parameter(
                name=name,
                flag=p["flag"] if p["positional"] else "--" + p["flag"],
                takes_value=p["takes_value"],
                positional=p["positional"],
                multiple=p["multiple"],
                default=",".join(p["default"]) if p["default"] else None,
                choices=tuple(p["choices"]),
                help=p["help"],
            )
        _PARAMS[command] = params
    return _PARAMS[command]


def table(
    embeddings: Any,
    ids: Sequence[Any] | Any,
    labels: Sequence[Any] | Any | None = None,
    **columns: Sequence[Any] | Any,
) -> pa.Table:
    """A pool table from a numpy embedding matrix (n x d), its ids and optional labels.

    The matrix is handed to Arrow without a copy when it is a C-contiguous float16/32/64
    array; ids are strings or integers; ``labels`` holds one label per row (None = unlabeled).
    Extra keyword arguments become carried columns (e.g. ``text=texts``).
    """
    import numpy as np

    matrix = np.asarray(embeddings)
    if matrix.ndim != 2:
        raise InputError(
            f"<numpy.ndarray>: column 'embedding': expected a 2-D matrix, got {matrix.ndim} dimensions"
        )
    if matrix.dtype not in (np.float16, np.float32, np.float64):
        matrix = matrix.astype(np.float32)
    matrix = np.ascontiguousarray(matrix)
    n, d = matrix.shape
    values = pa.array(matrix.reshape(-1))
    arrays: dict[str, Any] = {
        "id": pa.array(ids),
        "embedding": pa.FixedSizeListArray.from_arrays(values, d),
    }
    if len(arrays["id"]) != n:
        raise InputError(
            f"<numpy.ndarray>: column 'id': {len(arrays['id'])} ids for {n} embedding rows"
        )
    if labels is not None:
        arrays["label"] = pa.array(labels)
        if len(arrays["label"]) != n:
            raise InputError(
                f"<numpy.ndarray>: column 'label': {len(arrays['label'])} labels for {n} embedding rows"
            )
    for name, values_ in columns.items():
        arrays[name] = pa.array(values_)
    return pa.table(arrays)


def _source(data: Data, ids: Any, labels: Any) -> tuple[list[str], Any, str]:
    """(DATA positionals, Arrow stream producer or None, name used in messages)."""
    if isinstance(data, (str, os.PathLike)):
        return [os.fspath(data)], None, ""
    if isinstance(data, (list, tuple)) and data and all(
        isinstance(p, (str, os.PathLike)) for p in data
    ):
        return [os.fspath(p) for p in data], None, ""
    kind = type(data)
    name = f"<{kind.__module__.split('.')[0]}.{kind.__name__}>"
    if kind.__module__.split(".")[0] == "numpy":
        if ids is None:
            raise TypeError("a numpy embedding matrix needs ids= (one id per row)")
        return ["<numpy.ndarray>"], table(data, ids, labels), "<numpy.ndarray>"
    if ids is not None:
        raise TypeError("ids= goes with a numpy embedding matrix only")
    if not hasattr(data, "__arrow_c_stream__") and kind.__name__ == "DataFrame":
        data = pa.Table.from_pandas(data, preserve_index=False)
    if not hasattr(data, "__arrow_c_stream__"):
        raise TypeError(
            f"data must be a path, a list of paths, an Arrow table or stream "
            f"(__arrow_c_stream__) or a numpy matrix, not {kind.__name__}"
        )
    return [name], data, name


def _flag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def _argv(command: str, positionals: list[str], flags: Mapping[str, Any]) -> list[str]:
    """The CLI arguments for ``flags`` (keyword arguments), checked against the CLI's flags."""
    params = parameters(command)
    argv = list(positionals)
    for key, value in flags.items():
        p = params.get(key)
        if p is None or p.positional:
            raise TypeError(f"{command}() got an unexpected keyword argument '{key}'")
        if value is None:
            continue
        if not p.takes_value:
            if value:
                argv.append(p.flag)
            continue
        if p.multiple and isinstance(value, (list, tuple)):
            value = ",".join(_flag_value(v) for v in value)
        argv += [p.flag, _flag_value(value)]
    return argv


def _progress_callback(command: str, progress: ProgressArg, out: bool) -> tuple[Any, Any]:
    """(callback for Rust, tqdm bar to close) for ``progress=``."""
    if progress is False or progress is None:
        return None, None
    if callable(progress) and progress is not True:
        return progress, None
    from tqdm.auto import tqdm

    stages = _STAGES.get(command, ()) + (("write",) if out else ())
    bar = tqdm(total=len(stages), desc=f"labelwise {command}", unit="stage")

    def advance(stage: str) -> None:
        bar.set_postfix_str(stage)
        if bar.n < bar.total:
            bar.update(1)

    return advance, bar


#: ``rules=``: a rules file path, or a list of at most one path and rule functions.
RulesArg = Union[PathLike, Sequence[Any]]


class _RuleFunction:
    """A user's rule function, checked: called with (batch, first row), it returns one label
    or None per row, or raises :class:`InputError` naming the rule, the row and the problem."""

    def __init__(self, name: str, fn: Callable[[pa.RecordBatch], Any]) -> None:
        self.name = name
        self.fn = fn

    def _error(self, row: int | None, problem: str) -> InputError:
        where = f", row {row}" if row is not None else ""
        return InputError(f"{_PY_RULES}: rule '{self.name}'{where}: {problem}")

    def __call__(self, batch: pa.RecordBatch, start: int) -> list[str | None]:
        n = batch.num_rows
        try:
            out = self.fn(batch)
        except Exception as e:
            raise self._error(
                start, f"raised {type(e).__name__}: {e} (on the batch of rows {start}..{start + n - 1})"
            ) from e
        values = self._values(out, start)
        if len(values) != n:
            raise self._error(
                start,
                f"returned {len(values)} values for a batch of {n} rows "
                f"(rows {start}..{start + n - 1}); return one label or None per row",
            )
        for i, v in enumerate(values):
            if v is None or (type(v) is str and v):
                continue
            problem = (
                "returned an empty label (return None to abstain)"
                if isinstance(v, str)
                else f"returned {v!r} ({type(v).__name__}), not a label string or None"
            )
            raise self._error(start + i, problem)
        return values

    def _values(self, out: Any, start: int) -> list[Any]:
        if isinstance(out, (pa.Array, pa.ChunkedArray)):
            return out.to_pylist()
        if type(out).__module__ == "numpy" and hasattr(out, "tolist"):
            if getattr(out, "ndim", 1) != 1:
                raise self._error(start, f"returned a {out.ndim}-D array; return one label per row")
            return list(out.tolist())
        if isinstance(out, (str, bytes)) or not isinstance(out, Sequence):
            raise self._error(
                start,
                f"returned {type(out).__name__}; return a list, pyarrow array or numpy array "
                "with one label or None per row",
            )
        return list(out)


def _rule_inputs(rules: Any) -> tuple[str | None, list[tuple[str, _RuleFunction]]]:
    """(rules file path or None, checked rule functions) from ``rules=``."""
    if rules is None or isinstance(rules, (str, os.PathLike)):
        return (os.fspath(rules) if rules is not None else None), []
    entries = list(rules) if isinstance(rules, (list, tuple)) else [rules]
    path: str | None = None
    functions: list[tuple[str, _RuleFunction]] = []
    for entry in entries:
        if isinstance(entry, (str, os.PathLike)):
            if path is not None:
                raise InputError(f"rules=: one rules file at most ({path}, {os.fspath(entry)})")
            path = os.fspath(entry)
            continue
        if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str):
            name, fn = entry
        elif callable(entry):
            name, fn = getattr(entry, "__name__", None), entry
            if not isinstance(name, str) or name == "<lambda>":
                raise InputError(
                    f"{_PY_RULES}: rules=: a lambda or other nameless callable needs a name; "
                    "pass it as ('name', fn)"
                )
        else:
            raise TypeError(
                f"rules= entries are a rules file path, a function or ('name', function), "
                f"not {type(entry).__name__}"
            )
        if not callable(fn):
            raise TypeError(f"rules=: ('{name}', ...) holds {type(fn).__name__}, not a function")
        if any(n == name for n, _ in functions):
            raise InputError(f"{_PY_RULES}: rule '{name}': two rule functions have this name")
        functions.append((name, _RuleFunction(name, fn)))
    return path, functions


def _run(
    command: str,
    data: Data,
    out: PathLike | None,
    flags: dict[str, Any],
    *,
    ids: Any = None,
    progress: ProgressArg = False,
    threads: int | None = None,
    name: str | None = None,
) -> Result:
    """Runs ``command`` on ``data``; ``name`` names an Arrow stream in messages (default: its
    type, ``<pyarrow.Table>``)."""
    labels = flags.get("labels")
    if labels is not None and not isinstance(labels, (str, os.PathLike)):
        # Per-row labels for a numpy matrix; a path is the CLI's --labels FILE.
        flags = {k: v for k, v in flags.items() if k != "labels"}
    else:
        labels = None
    rules_path, functions = _rule_inputs(flags.get("rules"))
    if "rules" in flags:
        flags = {**flags, "rules": rules_path}
    positionals, stream, type_name = _source(data, ids, labels)
    if stream is None or name is None:
        name = type_name
    if labels is not None and name != "<numpy.ndarray>":
        raise TypeError(
            "per-row labels= go with a numpy embedding matrix; otherwise labels= is a labels file path"
        )
    argv = _argv(command, positionals, flags)
    argv += ["--out", os.fspath(out) if out is not None else "<no output>"]
    callback, bar = _progress_callback(command, progress, out is not None)
    try:
        tables, summary = _labelwise.run(
            command,
            argv,
            data=stream,
            source_name=name or "<table>",
            write_out=out is not None,
            progress=callback,
            threads=threads,
            tables=list(_TABLES[command]),
            rule_functions=functions,
        )
    finally:
        if bar is not None:
            bar.n = bar.total
            bar.refresh()
            bar.close()
    summary_dict = json.loads(summary)
    if command == "simulate":
        tables["curve"] = pa.Table.from_pylist(summary_dict.get("curve", []))
    if command == "rules":
        tables["rules"] = pa.Table.from_pylist(summary_dict["rules"]["per_rule"])
    return Result(summary=summary_dict, **tables)


def plan(
    data: Data,
    out: PathLike | None = None,
    *,
    ids: Any = None,
    progress: ProgressArg = False,
    threads: int | None = None,
    **flags: Any,
) -> Result:
    """The main job (``labelwise plan``): duplicates, rarity, auto-labels, the batch for humans
    and the budget, in one pass over one cached graph; with ``out=`` also report.html.

    Returns items, pairs, autolabels, batch and budget tables and the summary.
    """
    return _run("plan", data, out, flags, ids=ids, progress=progress, threads=threads)


def dedup(
    data: Data,
    out: PathLike | None = None,
    *,
    ids: Any = None,
    progress: ProgressArg = False,
    threads: int | None = None,
    **flags: Any,
) -> Result:
    """Near-duplicate pairs (cosine >= ``threshold``) and groups (``labelwise dedup``).

    Returns the items (``dup_group``, ``dup_representative``) and pairs tables.
    """
    return _run("dedup", data, out, flags, ids=ids, progress=progress, threads=threads)


def score(
    data: Data,
    out: PathLike | None = None,
    *,
    ids: Any = None,
    progress: ProgressArg = False,
    threads: int | None = None,
    **flags: Any,
) -> Result:
    """Rarity per item, with reasons (``labelwise score``). Returns the items table."""
    return _run("score", data, out, flags, ids=ids, progress=progress, threads=threads)


def autolabel(
    data: Data,
    out: PathLike | None = None,
    *,
    ids: Any = None,
    progress: ProgressArg = False,
    threads: int | None = None,
    **flags: Any,
) -> Result:
    """Auto-labels certified at ``target_precision`` (``labelwise autolabel``).

    Returns the items and autolabels tables.
    """
    return _run("autolabel", data, out, flags, ids=ids, progress=progress, threads=threads)


def select(
    data: Data,
    out: PathLike | None = None,
    *,
    ids: Any = None,
    progress: ProgressArg = False,
    threads: int | None = None,
    **flags: Any,
) -> Result:
    """The next ``batch`` items for humans, ranked, with reasons (``labelwise select``).

    Returns the items and batch tables.
    """
    return _run("select", data, out, flags, ids=ids, progress=progress, threads=threads)


def budget(
    data: Data,
    out: PathLike | None = None,
    *,
    ids: Any = None,
    progress: ProgressArg = False,
    threads: int | None = None,
    **flags: Any,
) -> Result:
    """Labels, hours and cost left, and the projection (``labelwise budget``).

    Returns the budget table.
    """
    return _run("budget", data, out, flags, ids=ids, progress=progress, threads=threads)


def simulate(
    data: Data,
    out: PathLike | None = None,
    *,
    ids: Any = None,
    progress: ProgressArg = False,
    threads: int | None = None,
    **flags: Any,
) -> Result:
    """Replays labeling rounds on a fully labeled pool (``labelwise simulate``).

    Returns the curve, selections, autolabels (per round) and split tables.
    """
    return _run("simulate", data, out, flags, ids=ids, progress=progress, threads=threads)


def rules(
    data: Data,
    out: PathLike | None = None,
    *,
    rules: RulesArg | None = None,
    ids: Any = None,
    progress: ProgressArg = False,
    threads: int | None = None,
    **flags: Any,
) -> Result:
    """The rules' analysis (``labelwise rules``), as Snorkel's ``LFAnalysis`` reports it: per
    rule coverage, overlaps, conflicts and empirical accuracy on the labeled items (with its
    95% interval), and the majority vote. Builds no neighbour graph.

    ``rules`` is a rules file path or a list of at most one path and rule functions (see the
    module's docstring); ``rule_votes=`` a votes file (``id,rule,label``) from another tool. Returns the ``rules`` table (rules.csv), the ``votes`` table
    (rule_votes.parquet) and the summary (``summary["rules"]``); with ``out=`` also the CLI's
    files.
    """
    return _run(
        "rules", data, out, {"rules": rules, **flags}, ids=ids, progress=progress, threads=threads
    )


def export(run_dir: PathLike, format: str, **flags: Any) -> pathlib.Path:
    """A run's items for labeling tools (``labelwise export DIR --format F``).

    ``format`` is one of label-studio, sagemaker, prodigy, jsonl, csv. Returns the file
    written (by default inside ``run_dir``).
    """
    argv = _argv("export", [os.fspath(run_dir)], {"format": format, **flags})
    path, _count = _labelwise.export(argv)
    return pathlib.Path(path)


def _document() -> None:
    """Appends each command's keyword arguments (the CLI's flags, defaults and help) to its
    docstring, from the CLI's definitions."""
    for fn in (plan, dedup, score, autolabel, select, budget, simulate, rules, export):
        lines = ["", "Keyword arguments (the CLI's flags):", ""]
        for p in parameters(fn.__name__).values():
            if p.positional or p.name == "out":
                continue
            default = f" [default: {p.default}]" if p.default is not None else ""
            choices = f" ({', '.join(p.choices)})" if p.choices else ""
            lines.append(f"    {p.name}: {p.help}{choices}{default}")
        if fn.__name__ != "export":
            lines += [
                "",
                "    ids: row ids, with a numpy embedding matrix as data.",
                "    progress: True for a tqdm bar, or a callable told each stage's name.",
                "    threads: worker threads (the CLI's --threads) [default: all cores].",
            ]
        fn.__doc__ = (fn.__doc__ or "") + "\n".join(lines) + "\n"


_document()

"""Rules written as Python functions: analysed, combined and certified exactly as the same rules
in a rules file, and every way a function can misbehave refused with InputError, nothing
written."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import labelwise

from conftest import strip_run_facts

#: Three keyword rules for Banking77 (the bundled sample is a slice of it).
TOML = """
[[rule]]
name = "wallet_apps"
label = "apple_pay_or_google_pay"
keywords = ["apple pay", "google pay"]

[[rule]]
name = "atm_kept_card"
label = "card_swallowed"
keywords = ["swallowed", "ate my card", "eaten"]

[[rule]]
name = "exchange_rate"
label = "exchange_rate"
keywords = ["exchange rate", "exchange rates"]
"""

#: The same rules as functions, each returning a different kind of result.
WALLET = re.compile(r"\b(?:apple pay|google pay)\b", re.IGNORECASE)


def wallet_apps(batch: pa.RecordBatch) -> list[str | None]:
    """A list, row by row in Python."""
    return [
        "apple_pay_or_google_pay" if t is not None and WALLET.search(t) else None
        for t in batch.column("text").to_pylist()
    ]


def atm_kept_card(batch: pa.RecordBatch) -> pa.Array:
    """A pyarrow array, computed by Arrow's kernels."""
    hit = pc.match_substring_regex(
        batch.column("text"), r"\b(?:swallowed|ate my card|eaten)\b", ignore_case=True
    )
    return pc.if_else(hit, "card_swallowed", pa.scalar(None, pa.string()))


def exchange(batch: pa.RecordBatch) -> np.ndarray:
    """A numpy object array."""
    text = np.array(batch.column("text").to_pylist(), dtype=object)
    hit = np.array([bool(re.search(r"(?i)\bexchange rates?\b", t or "")) for t in text])
    return np.where(hit, "exchange_rate", None).astype(object)


FUNCTIONS: list[Any] = [wallet_apps, atm_kept_card, ("exchange_rate", exchange)]


@pytest.fixture()
def rules_file(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "rules.toml"
    path.write_text(TOML)
    return path


def test_function_rules_analyse_as_the_same_rules_in_a_file(
    sample: pathlib.Path, rules_file: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    from_file = labelwise.rules(sample, tmp_path / "file", rules=rules_file)
    from_functions = labelwise.rules(sample, tmp_path / "fns", rules=FUNCTIONS)
    per_rule = from_file.summary["rules"]["per_rule"]
    assert [r["rule"] for r in per_rule] == ["wallet_apps", "atm_kept_card", "exchange_rate"]
    assert all(r["fired"] > 0 for r in per_rule) and sum(r["correct"] for r in per_rule) > 0
    assert from_functions.summary["rules"]["per_rule"] == per_rule
    assert from_functions.summary["rules"]["majority"] == from_file.summary["rules"]["majority"]
    assert from_functions.summary["rules"]["file"] == "<python>"
    assert from_file.rules is not None and from_functions.rules is not None
    assert from_functions.rules.equals(from_file.rules)
    assert from_functions.votes is not None and from_file.votes is not None
    assert from_functions.votes.equals(from_file.votes)
    for name in ("rules.csv", "rule_votes.parquet", "rule_disagreements.csv"):
        assert (tmp_path / "file" / name).read_bytes() == (tmp_path / "fns" / name).read_bytes(), name

    # One rule in a file, two as functions: the same table, in that order.
    half = tmp_path / "half.toml"
    half.write_text("[[rule]]" + TOML.split("[[rule]]")[1])
    mixed = labelwise.rules(sample, rules=[half, atm_kept_card, ("exchange_rate", exchange)])
    assert mixed.summary["rules"]["per_rule"] == per_rule
    assert mixed.summary["rules"]["file"] == f"{half} + <python>"


def test_a_round_with_function_rules_writes_what_the_file_writes(
    sample: pathlib.Path, rules_file: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    cache = tmp_path / "cache"
    a = labelwise.plan(sample, tmp_path / "a", rules=rules_file, batch=40, cache=cache)
    b = labelwise.plan(sample, tmp_path / "b", rules=FUNCTIONS, batch=40, cache=cache)
    for name in ("items.parquet", "autolabels.parquet", "batch.csv", "budget.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    sa, sb = strip_run_facts(a.summary), strip_run_facts(b.summary)
    assert sa["rules"].pop("file") == str(rules_file) and sb["rules"].pop("file") == "<python>"
    assert sa == sb
    assert sa["autolabel"]["rules"]["items_fired"] > 0
    reasons = a.items.column("reasons").to_pylist() if a.items is not None else []
    assert any("rule:wallet_apps" in r for r in reasons)


def test_simulate_takes_function_rules(sample: pathlib.Path, rules_file: pathlib.Path) -> None:
    common = dict(rounds=2, batch=50, label_col="true_label", no_cache=True)
    a = labelwise.simulate(sample, rules=rules_file, **common)
    b = labelwise.simulate(sample, rules=FUNCTIONS, **common)
    assert a.autolabels is not None and b.autolabels is not None
    assert a.autolabels.equals(b.autolabels)
    assert strip_run_facts(a.summary)["curve"] == strip_run_facts(b.summary)["curve"]


def _short(batch: pa.RecordBatch) -> list[str | None]:
    return [None] * (batch.num_rows - 1)


def _number(batch: pa.RecordBatch) -> list[Any]:
    out: list[Any] = [None] * batch.num_rows
    out[7] = 3
    return out


def _empty(batch: pa.RecordBatch) -> list[str | None]:
    return [""] * batch.num_rows


def _raises(batch: pa.RecordBatch) -> list[str | None]:
    raise KeyError("no_such_column")


def _never(batch: pa.RecordBatch) -> list[str | None]:
    return [None] * batch.num_rows


def _scalar(batch: pa.RecordBatch) -> str:
    return "card_swallowed"


BAD = [
    ([("short", _short)], "<python>: rule 'short', row 0: returned 2999 values for a batch of 3000 rows"),
    ([("number", _number)], "<python>: rule 'number', row 7: returned 3 (int), not a label string or None"),
    ([("empty", _empty)], "<python>: rule 'empty', row 0: returned an empty label"),
    ([("raises", _raises)], "<python>: rule 'raises', row 0: raised KeyError: 'no_such_column'"),
    ([("never", _never)], "<python>: rule 'never': fires on none of the 3000 items"),
    ([("scalar", _scalar)], "<python>: rule 'scalar', row 0: returned str; return a list"),
    ([("a", _never), ("a", _short)], "<python>: rule 'a': two rule functions have this name"),
    ([lambda b: [None] * b.num_rows], "<python>: rules=: a lambda or other nameless callable needs a name"),
    ([("bad name", _never)], "<python>: rule 'bad name': name must be"),
]


@pytest.mark.parametrize("rules,message", BAD, ids=[m.split(":")[1].strip() for _, m in BAD])
@pytest.mark.parametrize("command", ["rules", "autolabel"])
def test_bad_function_rules_raise_input_error_and_write_nothing(
    sample: pathlib.Path, tmp_path: pathlib.Path, command: str, rules: list[Any], message: str
) -> None:
    out = tmp_path / "out"
    with pytest.raises(labelwise.InputError) as caught:
        getattr(labelwise, command)(sample, out, rules=rules, no_cache=True)
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)
    assert not out.exists()
    if "raised" in message:
        assert isinstance(caught.value.__cause__, KeyError)


def test_a_function_named_as_a_file_rule_is_refused(
    sample: pathlib.Path, rules_file: pathlib.Path
) -> None:
    with pytest.raises(labelwise.InputError, match=r"rule 'wallet_apps': name also used by a rule in .*rules\.toml"):
        labelwise.rules(sample, rules=[rules_file, wallet_apps])
    with pytest.raises(labelwise.InputError, match="one rules file at most"):
        labelwise.rules(sample, rules=[rules_file, rules_file])
    with pytest.raises(TypeError, match="rules= entries"):
        labelwise.rules(sample, rules=[3])

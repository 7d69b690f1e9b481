#!/usr/bin/env python3
"""How precise the region the rules confirm can be (issue 18, BENCHMARKS "Rules in the round").

A seeded random share of the dataset is labeled; scikit-learn ``LogisticRegression(C=10)`` (the
loop oracle's model) predicts the rest. Each rule's accuracy is estimated on the labeled items
(Laplace-smoothed) and combined with the model as labelwise does (naive Bayes: a fired rule
multiplies its class by its accuracy and the others by the rest, spread evenly). Prints the
model's and the combination's precision at the top 10–60% of the unlabeled items by margin, and
the size and precision of the regions the rules confirm.

With a ``simulate`` output directory instead of a share, the labeled items are the loop's own
human labels after round 10 (its selections.csv) and the model is the loop's default stand-in,
the average of that logistic regression and a distance-weighted 10-nearest-neighbour vote: how
precise the region the loop's certificate has to vouch for is, with and without the rules (as
the naive-Bayes prior labelwise uses, as that prior tempered by the weight that minimises the
out-of-fold log loss, and as features of the logistic regression).

Usage:
    labelwise rules DATA.parquet --rules RULES.toml --out VOTES_DIR
    python benches/rules_region.py DATA.parquet RULES.toml VOTES_DIR/rule_votes.parquet [SHARE | SIM_DIR]
"""
from __future__ import annotations

import csv
import os
import sys
import tomllib

import numpy as np
import numpy.typing as npt
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.neighbors import KNeighborsClassifier

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]

# Weight of a fired rule's indicator next to the unit-length embedding (0.1 and 0.3 measured the
# same top-region precision on agnews).
RULE_FEATURE_SCALE = 0.3
# Weights of the rules' log-likelihood ratios tried for the tempered prior (1 is labelwise's).
PRIOR_WEIGHTS = np.linspace(0.0, 1.0, 21)


def precision_at(p: Floats, y: Ints, name: str) -> None:
    s = np.sort(p, 1)
    margin = s[:, -1] - s[:, -2]
    right = p.argmax(1) == y
    order = np.argsort(-margin, kind="stable")
    cells = " ".join(f"{c:.1f}:{right[order[: int(c * len(order))]].mean():.3f}" for c in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6))
    print(f"{name}: accuracy {right.mean():.4f}; precision at coverage {cells}")


def rule_prior(p: Floats, fired: Bools, rule_class: Ints, accuracy: Floats, weight: float = 1.0) -> Floats:
    """The model's probabilities times each fired rule's likelihood ratio (to the power `weight`)."""
    k = p.shape[1]
    log_q = np.log(np.maximum(p, 1e-6))
    for r in range(len(rule_class)):
        add = np.full(k, np.log((1 - accuracy[r]) / (k - 1)))
        add[rule_class[r]] = np.log(accuracy[r])
        log_q[fired[:, r]] += weight * add
    q = np.exp(log_q - log_q.max(1, keepdims=True))
    return q / q.sum(1, keepdims=True)


def loop_labels(sim: str, ids: list[str], rounds: int = 10) -> tuple[Bools, Bools]:
    """(labeled, in the pool) masks: the loop's human labels after `rounds` rounds."""
    with open(os.path.join(sim, "split.csv")) as f:
        pool = {r["id"] for r in csv.DictReader(f) if r["split"] == "pool"}
    with open(os.path.join(sim, "selections.csv")) as f:
        picked = {r["id"] for r in csv.DictReader(f) if int(r["round"]) <= rounds}
    return np.array([i in picked for i in ids]), np.array([i in pool for i in ids])


def default_model(x: Floats, y: Ints, k: int, train: Ints, test: Ints, lr_extra: Floats | None = None) -> Floats:
    """The loop's default model's stand-in: logistic regression and a 10-NN vote, averaged.
    `lr_extra` (one row per item) is appended to the logistic regression's features only."""
    z = x if lr_extra is None else np.hstack([x, lr_extra])
    out = np.zeros((len(test), k))
    for m, feats in (
        (LogisticRegression(C=10, max_iter=3000).fit(z[train], y[train]), z),
        (KNeighborsClassifier(10, weights="distance", metric="cosine").fit(x[train], y[train]), x),
    ):
        out[:, m.classes_] += m.predict_proba(feats[test]) / 2
    return out


def fitted_prior_weight(x: Floats, y: Ints, k: int, labeled: Ints, fired: Bools, rule_class: Ints, accuracy: Floats) -> float:
    """The prior weight with the lowest 5-fold out-of-fold log loss on the labeled items."""
    oof = np.zeros((len(labeled), k))
    for train, test in KFold(5, shuffle=True, random_state=0).split(labeled):
        oof[test] = default_model(x, y, k, labeled[train], labeled[test])
    truth = y[labeled]

    def loss(w: float) -> float:
        q = rule_prior(oof, fired[labeled], rule_class, accuracy, w)
        return float(-np.mean(np.log(np.maximum(q[np.arange(len(truth)), truth], 1e-12))))

    return float(min(PRIOR_WEIGHTS, key=loss))


def main() -> None:
    data, rules_file, votes_path = sys.argv[1:4]
    arg = sys.argv[4] if len(sys.argv) > 4 else "0.05"
    t = pq.read_table(data, columns=["id", "label", "embedding"])
    x = np.stack(t.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float32)
    names_y = [str(v) for v in t.column("label").to_pylist()]
    classes = sorted(set(names_y))
    k = len(classes)
    y = np.array([classes.index(v) for v in names_y])
    rules = tomllib.load(open(rules_file, "rb"))["rule"]
    names = [r["name"] for r in rules]
    rule_class = np.array([classes.index(r["label"]) for r in rules])
    fired = np.zeros((len(y), len(rules)), bool)
    for i, cell in enumerate(pq.read_table(votes_path).column("rules").to_pylist()):
        for n in cell.split(";") if cell else []:
            fired[i, names.index(n)] = True
    loop = os.path.isdir(arg)
    if loop:
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        labeled, in_pool = loop_labels(arg, [str(i) for i in t.column("id").to_pylist()])
        x, y, fired, labeled = x[in_pool], y[in_pool], fired[in_pool], labeled[in_pool]
        p = default_model(x, y, k, np.where(labeled)[0], np.where(~labeled)[0])
    else:
        labeled = np.random.default_rng(0).random(len(y)) < float(arg)
        p = LogisticRegression(C=10, max_iter=2000).fit(x[labeled], y[labeled]).predict_proba(x[~labeled])
    n_fired = fired[labeled].sum(0)
    n_right = (fired[labeled] & (rule_class[None, :] == y[labeled][:, None])).sum(0)
    accuracy = (n_right + 1) / (n_fired + 2)
    fu, yu = fired[~labeled], y[~labeled]
    precision_at(p, yu, "model")
    precision_at(rule_prior(p, fu, rule_class, accuracy), yu, "model+rules")
    if loop:
        w = fitted_prior_weight(x, y, k, np.where(labeled)[0], fired, rule_class, accuracy)
        precision_at(rule_prior(p, fu, rule_class, accuracy, w), yu, f"model+rules, prior weight {w:.2f}")
        # The rules as features instead of a prior: which rules fired, next to the embedding.
        with_features = default_model(x, y, k, np.where(labeled)[0], np.where(~labeled)[0], RULE_FEATURE_SCALE * fired)
        precision_at(with_features, yu, "model with the rules as features")
    votes = np.zeros((len(yu), k))
    for r in range(len(rules)):
        votes[fu[:, r], rule_class[r]] += 1
    n_votes, top, majority = votes.sum(1), votes.max(1), votes.argmax(1)
    unique = (votes == top[:, None]).sum(1) == 1
    pred = p.argmax(1)
    for name, mask in [
        ("rules' majority", (n_votes > 0) & unique),
        ("majority agrees with the model", (n_votes > 0) & unique & (majority == pred)),
        ("2+ rules, no conflict, model agrees", (n_votes >= 2) & (top == n_votes) & (majority == pred)),
    ]:
        share = f"precision {(majority[mask] == yu[mask]).mean():.4f}" if mask.any() else "none"
        print(f"{name}: {mask.mean():.3f} of the unlabeled items, {share}")


if __name__ == "__main__":
    main()

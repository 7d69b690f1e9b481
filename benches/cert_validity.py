#!/usr/bin/env python3
"""Validity check for issue 19's certificates on synthetic pools where the truth is known.

Each pool: N items with a latent difficulty; every round the "model" changes (margins get new
noise, and which items it gets wrong is re-drawn from a per-item latent, so errors are correlated
across rounds but not fixed). Human picks: the most uncertain items of the frame (adversarial:
labels only from the most uncertain), plus audit draws with known propensity (uniform over the
frame, with replacement, or the region mixture). Each round every certificate of
benches/cert_proto.py picks its auto-label set; the pool fails when the realized precision of
that set is below the target. Over S seeds per profile, the share of (pool, round) cells below
target must be <= alpha (5%), and the share of pools with *any* round below target is reported too.

Profiles (error probability as a function of the margin rank u in [0, 1], 0 = most confident):
  cross   err = 0.01 + 0.3 u^2 (precision of the top share c is 0.99 - 0.1 c^2: crosses 0.95 at c = 0.63)
  flat    err = 0.05 everywhere (the target exactly: any certificate is a false one)
  topbad  err = 0.08 on the top 5%, 0.02 to u = 0.6, then 0.15 (agnews-like: errors at the top)

Usage: [METHODS=cp_i3,...] [SCANS=seqd,...] [PROFILES=...] [DESIGNS=frame,region]
       python benches/cert_validity.py [SEEDS=200] [N=10000]
"""
from __future__ import annotations

import sys

import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import cert_proto as cp  # noqa: E402


def err_prob(profile: str, u: np.ndarray) -> np.ndarray:
    if profile == "cross":
        return 0.01 + 0.3 * u ** 2
    if profile == "flat":
        return np.full_like(u, 0.05)
    return np.where(u < 0.05, 0.08, np.where(u < 0.6, 0.02, 0.15))


def one_pool(profile: str, seed: int, n: int, rounds: int, batch: int, share: float,
             design: str) -> dict[str, list[bool]]:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=n)
    latent = rng.random(n)  # fixed per item: errors correlated across rounds
    train: set[int] = set(rng.choice(n, size=batch, replace=False).tolist())
    audited: set[int] = set()
    draws: list[tuple[int, int]] = []
    qs: dict[int, np.ndarray] = {}
    regs: dict[int, np.ndarray] = {}
    fails: dict[str, list[bool]] = {f"{m}_{s}": [] for m in cp.METHODS for s in cp.SCANS}
    for rnd in range(1, rounds + 1):
        # The model of this round: margins = base + drift; errors from the rank profile.
        mg = base + 0.3 * rng.normal(size=n) + 0.05 * rnd
        rank = np.argsort(np.argsort(-mg)) / n
        p_err = err_prob(profile, rank)
        wrong = latent < p_err * (0.8 + 0.4 * rng.random())  # the model's errors move a bit
        ptop = 1.0 - np.clip(p_err * rng.uniform(0.5, 1.5), 0, 1)  # a rough, miscalibrated guess
        if rnd > 1:
            frame = np.array([i for i in range(n) if i not in train])
            n_audit = int(round(share * batch))
            if n_audit:
                if design == "region":
                    order = frame[np.argsort(-mg[frame])]
                    reg = np.zeros(n, dtype=bool)
                    reg[order[: int(0.7 * len(order))]] = True
                    q = np.zeros(n)
                    q[frame] = cp.EPS / len(frame)
                    q[reg] += (1 - cp.EPS) / reg.sum()
                    regs[rnd] = reg
                else:
                    q = np.zeros(n)
                    q[frame] = 1.0 / len(frame)
                    regs[rnd] = q > 0
                qs[rnd] = q
                for i in rng.choice(n, size=n_audit, replace=True, p=q / q.sum()):
                    draws.append((rnd, int(i)))
                    if int(i) not in train:
                        audited.add(int(i))
            # Adversarial human picks: the most uncertain of the frame.
            for i in frame[np.argsort(mg[frame])[: batch - n_audit]]:
                train.add(int(i))
        audited -= train
        in_frame = np.ones(n, dtype=bool)
        in_frame[list(train)] = False
        human = train | audited
        unl = np.array([i for i in range(n) if i not in human])
        order_u = unl[np.argsort(-mg[unl], kind="stable")]
        ctx = cp.Ctx(mg, wrong, ptop, in_frame, order_u, audited, draws, qs, rnd, regs)
        for m in cp.METHODS:
            for s in cp.SCANS:
                auto = cp.certify(ctx, m, s)
                if len(auto):
                    fails[f"{m}_{s}"].append(bool(1 - wrong[auto].mean() < cp.TARGET))
    return fails


def main() -> None:
    import os
    if os.environ.get("METHODS"):
        cp.METHODS = tuple(os.environ["METHODS"].split(","))
    if os.environ.get("SCANS"):
        cp.SCANS = tuple(os.environ["SCANS"].split(","))
    profiles = os.environ.get("PROFILES", "cross,flat,topbad").split(",")
    designs = os.environ.get("DESIGNS", "frame,region").split(",")
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    batch, rounds, share = n // 100, 10, float(os.environ.get("SHARE", "0.3"))
    print("profile,design,certificate,cells_certified,cells_below_target,share_below,"
          "pools_any_below,pools")
    for design in designs:
        for profile in profiles:
            agg: dict[str, list[list[bool]]] = {}
            for seed in range(seeds):
                for k, v in one_pool(profile, seed, n, rounds, batch, share, design).items():
                    agg.setdefault(k, []).append(v)
            for k, pools in agg.items():
                cells = sum(len(p) for p in pools)
                bad = sum(sum(p) for p in pools)
                anyb = sum(any(p) for p in pools)
                print(f"{profile},{design},{k},{cells},{bad},{bad / max(cells, 1):.3f},{anyb},{seeds}",
                      flush=True)


if __name__ == "__main__":
    main()

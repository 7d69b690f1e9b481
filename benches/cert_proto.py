#!/usr/bin/env python3
"""Prototype of issue 19's loop: audits with known propensities and certificates valid under
our own (adversarial) selection, measured against the oracle of benches/loop_oracle.py.

Loop (emulates `simulate`): pool = simulate's split.csv pool rows; round 1 = cold start (k-means
with `batch` clusters, the item nearest each centre); rounds 2..R: the training model M (sklearn
LogisticRegression(C=10) on the *non-audit* labels) picks (1-a)*batch most uncertain items by
top-two margin (the adversarial case) and a*batch audit draws, with replacement, from a
pre-registered distribution q_s over the frame D_s = pool minus training labels:
    q_s = (1 - eps) * Uniform(R_s) + eps * Uniform(D_s),
R_s = the most confident prefix of D_s (by M's margin) whose mean top probability is >= 0.85.
q_s depends only on the training labels, never on audit labels, and the active picks ignore
which items were audited, so the whole trajectory (models, thresholds tested, frames) is
independent of the audit draws: conditional on it, every draw j (round s) gives an unbiased
Horvitz-Thompson term g(i_j)/q_s(i_j) for the current round's error count
E(t) = sum_{i in D_r} 1{m_r(i) >= t} * 1{M_r wrong on i}, whatever round r and threshold t.
Audited items known errors K(t) are subtracted exactly; auto-labels are U_r & {m_r >= t}.

Certificates (all: Bonferroni over a grid of G coverage levels, the largest passing level kept,
so the whole certificate is at 1 - alpha):
  cp      (a) this round's audits only, Clopper-Pearson; auto-labels restricted to R_r.
  ipw     (b) every round's draws, IPW terms, betting test (Waudby-Smith & Ramdas, aGRAPA bets).
  ppi     (c) as ipw with the model's probability of error as control variate:
              X = (g - ghat)/q + sum(ghat)  (prediction-powered; unbiased whatever ghat).
A round's draws enter a threshold's test only if its largest weight over that threshold's
auto-label set is <= WMAX x uniform (a label-free rule, so still valid).

Usage: python benches/cert_proto.py DATASET SIMDIR_FOR_SPLIT BATCH SEED AUDIT_SHARE [ROUNDS]
"""
from __future__ import annotations

import json
import sys

import numpy as np
import numpy.typing as npt
from sklearn.cluster import KMeans

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from loop_oracle import (cp_lower, fit_lr, load_dataset, margin_pred, oracle_round,  # noqa: E402
                         read_sim)

TARGET, ALPHA, G, EPS, REGION_P, WMAX = 0.95, 0.05, 20, 0.05, 0.85, 4.0
FArr = npt.NDArray[np.float64]
DBG = bool(__import__('os').environ.get('DBG'))


def betting_reject(x: FArr, b: FArr, m0: float, alpha: float) -> bool:
    """Test H0: E[X_j] >= m0 for independent X_j <= b_j (common mean) by betting against it:
    capital prod(1 + lam_j (m0 - X_j)), lam_j predictable (aGRAPA), 0 <= lam_j <= BET_CAP/(b_j - m0).
    Rejects (certifies the mean is < m0) when the capital reaches 1/alpha (Ville)."""
    cap, s, s2, n = 1.0, 0.0, 0.0, 0
    for xj, bj in zip(x, b):
        mu = (s + m0 / 2) / (n + 1)  # prior pseudo-observation at m0/2
        var = (s2 + (m0 / 2) ** 2) / (n + 1) - mu * mu
        gap = m0 - mu
        lam = gap / (max(var, 1e-12) + gap * gap) if gap > 0 else 0.0
        lam = min(max(lam, 0.0), BET_CAP / max(bj - m0, 1e-12))
        cap *= 1.0 + lam * (m0 - xj)
        if cap >= 1.0 / alpha:
            return True
        s += xj
        s2 += xj * xj
        n += 1
    return False


REGION_SHARE = float(__import__('os').environ.get("REGION_SHARE", "0.75"))


def region_mask(p_top: FArr, order: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """The audit region: the REGION_SHARE most confident of the frame by the previous model's
    margin (label-free). REGION_SHARE = 0 falls back to mean top probability >= REGION_P, which
    measured badly with many classes (probabilities spread: tiny regions)."""
    if REGION_SHARE > 0:
        mask = np.zeros(len(p_top), dtype=bool)
        mask[order[: max(1, int(round(REGION_SHARE * len(order))))]] = True
        return mask
    cm = np.cumsum(p_top[order]) / np.arange(1, len(order) + 1)
    ok = np.nonzero(cm >= REGION_P)[0]
    k = int(ok[-1] + 1) if len(ok) else 0
    mask = np.zeros(len(p_top), dtype=bool)
    mask[order[:k]] = True
    return mask

DESIGN = __import__('os').environ.get("DESIGN", "region")  # frame: uniform over D_s; region: mixture
METHODS = ("cp_i1", "cp_i3", "cp_i5", "cp_iall", "bet_ipw", "bet_ppi")
SCANS = ("bonf", "seqd", "seq2")
VERIFY_COST = float(__import__('os').environ.get("VERIFY_COST", "0"))  # e.g. 1/3 of a label
LO_MAX = 0.01  # a round enters a weighted test only if <= 1% of the set was under-sampled
BET_CAP, N_START, STEP = 0.9, 80, 10


class Ctx:
    def __init__(self, mg: FArr, wrong: npt.NDArray[np.bool_], ptop: FArr,
                 in_frame: npt.NDArray[np.bool_], order_u: npt.NDArray[np.int64], audited: set[int],
                 draws: list[tuple[int, int]], qs: dict[int, FArr], rnd: int,
                 regs: dict[int, npt.NDArray[np.bool_]]) -> None:
        self.mg, self.wrong, self.ptop, self.in_frame = mg, wrong, ptop, in_frame
        self.order_u, self.rnd, self.qs = order_u, rnd, qs
        self.aud = np.array(sorted(audited), dtype=np.int64)
        self.dr = np.array([r for r, _ in draws], dtype=np.int64)
        self.di = np.array([i for _, i in draws], dtype=np.int64)
        self.regs = regs

    def inter(self, method: str) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """(R_*, draw mask) for cp_iL: the rounds r-L+1..r with audits, their regions intersected."""
        lag = {"cp_i1": 1, "cp_i3": 3, "cp_i5": 5}.get(method, 10 ** 6)
        rounds = [s for s in self.regs if s > self.rnd - lag]
        rstar = np.ones(len(self.mg), dtype=bool)
        for s in rounds:
            rstar &= self.regs[s]
        if not rounds:
            rstar[:] = False
        dmask = np.isin(self.dr, rounds) if len(self.dr) else np.zeros(0, dtype=bool)
        return rstar, dmask


def test_level(c: Ctx, method: str, k: int, alpha: float) -> tuple[bool, npt.NDArray[np.int64]]:
    """Does the auto-label set at the k-th most confident unlabeled item pass at level alpha?"""
    t = c.mg[c.order_u[k - 1]]
    tmask = c.in_frame & (c.mg >= t)  # D_r & {m_r >= t}: the estimand's population
    auto = c.order_u[c.mg[c.order_u] >= t]
    nu = len(auto)
    n_t = int(tmask.sum())
    kn = int(np.sum(c.wrong[c.aud] & tmask[c.aud])) if len(c.aud) else 0
    if method.startswith("cp_i"):
        # Draws of round s are uniform on R_s (q is constant there): those landing in
        # tmask & R_* are uniform on it, for R_* inside every used round's region.
        rstar, dmask = c.inter(method)
        tm = tmask & rstar
        auto = auto[rstar[auto]]
        nu = len(auto)
        if nu == 0:
            return False, auto
        n_t = int(tm.sum())
        kn = int(np.sum(c.wrong[c.aud] & tm[c.aud])) if len(c.aud) else 0
        sel = dmask & tm[c.di] if len(c.di) else np.zeros(0, dtype=bool)
        n = int(sel.sum())
        if n == 0:
            return False, auto
        err = int(c.wrong[c.di[sel]].sum())
        u = 1.0 - cp_lower(n - err, n, 1 - alpha)  # upper bound on E'/|T'|
        return (u * n_t - kn) / nu <= 1 - TARGET, auto
    ghat = np.where(tmask, 1.0 - c.ptop, 0.0) if method == "bet_ppi" else np.zeros(len(c.mg))
    gsum = float(ghat.sum())
    m0 = (1 - TARGET) + kn / nu
    xs, bs = [], []
    for s in sorted(c.qs):
        q = c.qs[s]
        qt = q[tmask]
        # Items of the set this round under-sampled (weight > WMAX x uniform on the set): counted
        # as all wrong (a known offset; the capital stays a supermartingale under H0).
        lo = (qt <= 0) | (1.0 / np.maximum(qt, 1e-300) > WMAX * n_t)
        lo_full = np.zeros(len(q), dtype=bool)
        lo_full[np.nonzero(tmask)[0][lo]] = True
        off = float(lo.sum()) / nu - float(ghat[lo_full].sum()) / nu
        if lo.mean() > LO_MAX:
            continue
        b = float(np.max((1.0 - ghat[tmask][~lo]) / qt[~lo])) / nu + gsum / nu + off
        ii = c.di[c.dr == s]
        keep = tmask[ii] & ~lo_full[ii]
        g = (c.wrong[ii] & keep).astype(float)
        gh = np.where(keep, ghat[ii], 0.0)
        x = (g - gh) / (q[ii] * nu) + gsum / nu + off
        xs.extend(x.tolist())
        bs.extend([b] * len(x))
    if not xs:
        return False, auto
    return betting_reject(np.array(xs), np.array(bs), m0, alpha), auto


def certify(c: Ctx, method: str, scan: str) -> npt.NDArray[np.int64]:
    """seq: fixed sequence down the grid from the most confident level, stop at the first failure,
    each test at alpha. bonf: every grid level at alpha/G, the largest passing kept.
    seqd: levels at the current margins of the draws themselves (label-free), from the N_START-th
    most confident draw in the frame, every STEP draws; fixed sequence at alpha."""
    best = np.array([], dtype=np.int64)
    if scan in ("seqd", "seq2"):
        live = c.in_frame[c.di] if len(c.di) else np.zeros(0, dtype=bool)
        if method.startswith("cp_i"):
            rstar, dmask = c.inter(method)
            live = live & dmask & rstar[c.di]
        dm = np.sort(c.mg[c.di[live]])[::-1]
        starts = [(N_START, ALPHA)] if scan == "seqd" else [(100, ALPHA / 2), (200, ALPHA / 2)]
        for start, a in starts:
            for n in range(start, len(dm) + 1, STEP):
                k = int(np.sum(c.mg[c.order_u] >= dm[n - 1]))
                if k == 0:
                    continue
                ok, auto = test_level(c, method, k, a)
                if ok:
                    if len(auto) > len(best):
                        best = auto
                else:
                    break
        return best
    for j in range(1, G + 1):
        k = int(len(c.order_u) * j / G)
        if k == 0:
            continue
        ok, auto = test_level(c, method, k, ALPHA if scan == "seq" else ALPHA / G)
        if ok:
            best = auto
        elif scan == "seq":
            break
    return best


def run(dataset: str, simdir: str, batch: int, seed: int, share: float, rounds: int = 10
        ) -> list[dict[str, object]]:
    ds = load_dataset(f"/work/shared/datasets/{dataset}.parquet")
    pool = read_sim(ds, simdir).pool
    npool = len(pool)
    pos = {int(r): k for k, r in enumerate(pool)}  # row -> pool position
    x, y = ds.emb[pool], ds.y[pool]
    ncls = len(ds.classes)
    rng = np.random.default_rng(seed)
    # Cold start: k-means centres' nearest items.
    km = KMeans(n_clusters=batch, n_init=1, random_state=seed, max_iter=50).fit(x)
    d = km.transform(x)
    train = set(int(v) for v in np.argmin(d, axis=0))
    audited: set[int] = set()
    draws: list[tuple[int, int]] = []  # (round, pool position)
    qs: dict[int, FArr] = {}  # round -> q over the whole pool (0 outside the frame)
    regs: dict[int, npt.NDArray[np.bool_]] = {}  # round -> its region R_s
    out = []
    for rnd in range(1, rounds + 1):
        if rnd > 1:
            model = last_model  # the previous round's model: same training labels
            frame = np.array([i for i in range(npool) if i not in train])
            p = model.proba(x[frame])
            mg, _, ptop = margin_pred(p)
            order = np.argsort(-mg, kind="stable")
            n_audit = int(round(share * batch))
            n_active = batch - n_audit
            if VERIFY_COST:  # equal human time: share of the batch's time goes to verifications
                n_audit = int(round(share * batch / VERIFY_COST))
            if n_audit:
                reg = region_mask(ptop, order)
                q = np.full(len(frame), (EPS if DESIGN == "region" else 1.0) / len(frame))
                if DESIGN == "region" and reg.any():
                    q[reg] += (1 - EPS) / reg.sum()
                elif DESIGN == "region":
                    q += (1 - EPS) / len(frame)
                qfull = np.zeros(npool)
                qfull[frame] = q
                qs[rnd] = qfull
                regfull = np.zeros(npool, dtype=bool)
                regfull[frame[reg]] = True
                regs[rnd] = regfull
                picks = rng.choice(frame, size=n_audit, replace=True, p=q / q.sum())
                for i in picks:
                    draws.append((rnd, int(i)))
                    if int(i) not in train:
                        audited.add(int(i))
            # Active picks: most uncertain of the frame, blind to audits (trajectory independent).
            for i in frame[np.argsort(mg, kind="stable")[:n_active]]:
                train.add(int(i))
        audited -= train  # an audited item later picked actively becomes a training label
        tr = np.array(sorted(train))
        model = fit_lr(x[tr], y[tr], ncls)
        last_model = model
        p_all = model.proba(x)
        mg_all, pred_all, ptop_all = margin_pred(p_all)
        wrong = pred_all != y
        human = train | audited
        in_frame = np.ones(npool, dtype=bool)
        in_frame[tr] = False
        unl = np.array([i for i in range(npool) if i not in human])
        order_u = unl[np.argsort(-mg_all[unl], kind="stable")]
        # Oracle on the same human labels (rows of the dataset).
        hum_rows = pool[np.array(sorted(human))]
        orc = oracle_round(ds, pool, hum_rows, TARGET)
        res: dict[str, object] = {"dataset": dataset, "seed": seed, "share": share, "round": rnd,
                                  "n_train": len(train), "n_audit": len(audited),
                                  "n_draws": len(draws), "oracle_done": orc.done_share}
        ctx = Ctx(mg_all, wrong, ptop_all, in_frame, order_u, audited, draws, qs, rnd, regs)
        for method in METHODS:
            for scan in SCANS:
                best_set = certify(ctx, method, scan)
                k = len(best_set)
                res[f"{method}_{scan}_auto"] = k
                res[f"{method}_{scan}_done"] = (len(human) + k) / npool
                res[f"{method}_{scan}_prec"] = float(1 - wrong[best_set].mean()) if k else None
        out.append(res)
        print(json.dumps(res), flush=True)
    return out


if __name__ == "__main__":
    a = sys.argv[1:]
    run(a[0], a[1], int(a[2]), int(a[3]), float(a[4]), int(a[5]) if len(a) > 5 else 10)

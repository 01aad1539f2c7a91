"""The backtest of next-run advice: follow it on a corpus family, against adding sizes in increasing order.

Protocol (one family; its target is the largest size's last 30% of tokens,
:func:`fits.backtest.split_target`):

1. Start from the two smallest sizes (every run of each).
2. Ask :func:`fits.advice.advise` for the next run, with the FLOPs left. The
   advised size is snapped to the nearest size (in log) the family has, not yet
   used, whose real runs fit the FLOPs left; those runs' rows are added. The
   advice's own tokens are not imposed: the family's runs are what was trained.
3. After each step, the realised ARE of :func:`fits.api.predict_loss` on the
   target, against the *increasing-order* design at the same compute: the two
   smallest sizes, then the next sizes in increasing order, as many whole
   sizes as fit in the compute the advice has spent (6 N D of the runs
   added). Runs are trained whole, so the increasing design usually spends a
   little less; the ``at least`` variant (sizes added until it spends at least
   as much) is reported beside it so that a gain cannot come from the
   rounding alone.

The starting budget is the compute of every size below the target except the
two smallest (what the family's authors spent on the sizes there are to
choose from), so the advice may pick any of them; steps stop when no size is
left that fits, or after ``max_steps``.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd

from .advice import AdviceInputError, advise
from .api import predict_loss, prepare_train
from .backtest import are, split_target
from .sweep import run_compute
from .trainset import FitInputError

MAX_STEPS = 3
START_SIZES = 2


def _realised(train: pd.DataFrame, target: pd.DataFrame, sizes) -> float:
    rows = train[train["params"].isin(list(sizes))]
    try:
        pred = predict_loss(rows, target["params"].to_numpy(), target["tokens"].to_numpy(), target["epochs"])
    except FitInputError:
        return float("inf")
    return are(target["value"], pred)


def _increasing(sizes: np.ndarray, costs: dict, spent: float, at_least: bool) -> list:
    """The two smallest sizes, then the next in increasing order within (or reaching at least) ``spent``."""
    used = list(sizes[:START_SIZES])
    total = sum(costs[s] for s in used)
    for s in sizes[START_SIZES:]:
        if at_least:
            if total >= spent * (1 - 1e-9):
                break
        elif total + costs[s] > spent * (1 + 1e-9):
            break
        used.append(s)
        total += costs[s]
    return used


def snap(advised: float, free: list, costs: dict, budget: float) -> float | None:
    """The size nearest ``advised`` (in log) among ``free`` sizes whose runs fit ``budget``; None if none fits."""
    fits = [s for s in free if costs[s] <= budget * (1 + 1e-9)]
    if not fits:
        return None
    return min(fits, key=lambda s: (abs(math.log(s / advised)), s))


def follow_advice(frame: pd.DataFrame, error_model=None, *, max_steps: int = MAX_STEPS, own_fit: bool | None = None,
                  n_boot: int = 12) -> pd.DataFrame:
    """One family's backtest (module docstring): one row per advised step.

    ``error_model``: an :class:`fits.errormodel.ErrorModel` (one that never saw this family's source), or
    None to follow the own-fit advice. ``own_fit``: compute the own-fit evidence too (default: only when
    there is no error model, since the ranking does not use it otherwise).
    """
    family = str(frame["family"].iloc[0])
    train, target = split_target(prepare_train(frame))
    sizes = np.sort(train["params"].unique())
    if sizes.size < START_SIZES + 1:
        raise ValueError(f"{family}: {sizes.size} sizes below the target; the backtest needs at least "
                         f"{START_SIZES + 1}")
    n_t, d_t = float(target["params"].iloc[0]), float(target["tokens"].max())
    costs = {s: run_compute(train[train["params"] == s]) for s in sizes}
    used = list(sizes[:START_SIZES])
    budget = sum(costs[s] for s in sizes[START_SIZES:])
    start_are = _realised(train, target, used)
    own_fit = error_model is None if own_fit is None else own_fit
    rows = []
    for step in range(1, max_steps + 1):
        free = [s for s in sizes if s not in used]
        if not free or budget <= 0:
            break
        started = time.perf_counter()
        try:
            advice = advise(train[train["params"].isin(used)], n_t, d_t, budget, error_model=error_model,
                            own_fit=own_fit, n_boot=n_boot)
        except (AdviceInputError, FitInputError) as exc:
            rows.append({"family": family, "step": step, "error": str(exc)})
            break
        advised = advice.runs[0]["params"]
        chosen = snap(advised, free, costs, budget)
        if chosen is None:
            break
        used.append(chosen)
        budget -= costs[chosen]
        spent = sum(costs[s] for s in used)
        within = _increasing(sizes, costs, spent, at_least=False)
        at_least = _increasing(sizes, costs, spent, at_least=True)
        rows.append({
            "family": family, "step": step, "advised_params": advised, "added_params": float(chosen),
            "sizes": [float(s) for s in sorted(used)], "compute": spent,
            "expected_now": advice.expected_are["now"]["p50"], "expected_after": advice.expected_are["after"]["p50"],
            "are_start": start_are, "are_advice": _realised(train, target, used),
            "increasing_sizes": [float(s) for s in within], "increasing_compute": sum(costs[s] for s in within),
            "are_increasing": _realised(train, target, within),
            "at_least_sizes": [float(s) for s in at_least], "at_least_compute": sum(costs[s] for s in at_least),
            "are_at_least": _realised(train, target, at_least),
            "seconds": time.perf_counter() - started, "error": "",
        })
    return pd.DataFrame(rows)


def summarise_follow(table: pd.DataFrame) -> dict:
    """The bar's figures: per step and per family (mean over its steps), advice against increasing order.

    A family is *better* when the mean of its realised ARE over the steps is strictly lower with the advice
    (a tie, e.g. the same sizes, is not better); medians are over families.
    """
    ok = table[table["error"].fillna("") == ""].copy() if "error" in table.columns else table.copy()
    ok = ok.dropna(subset=["are_advice"])
    out = {"families": int(ok["family"].nunique()), "steps": int(len(ok)), "by_step": {}}
    for step, part in ok.groupby("step"):
        out["by_step"][int(step)] = {
            "families": int(len(part)),
            "median_advice": float(np.median(part["are_advice"])),
            "median_increasing": float(np.median(part["are_increasing"])),
            "median_at_least": float(np.median(part["are_at_least"])),
            **_compare(part["are_advice"], part["are_increasing"], ""),
            **_compare(part["are_advice"], part["are_at_least"], "_at_least"),
        }
    per = ok.groupby("family")[["are_advice", "are_increasing", "are_at_least"]].mean()
    out["median_advice"] = float(np.median(per["are_advice"])) if len(per) else float("nan")
    out["median_increasing"] = float(np.median(per["are_increasing"])) if len(per) else float("nan")
    out["median_at_least"] = float(np.median(per["are_at_least"])) if len(per) else float("nan")
    out.update(_compare(per["are_advice"], per["are_increasing"], ""))
    out.update(_compare(per["are_advice"], per["are_at_least"], "_at_least"))
    out["bar_met"] = bool(len(per) and out["median_advice"] <= out["median_increasing"] and out["better"] >= 0.6)
    return out


def _compare(advice: pd.Series, other: pd.Series, suffix: str) -> dict:
    """Shares of cases where the advice is better, tied (the same ARE: usually the same sizes) or worse."""
    a, b = advice.to_numpy(dtype=float), other.to_numpy(dtype=float)
    if a.size == 0:
        return {f"better{suffix}": float("nan"), f"tied{suffix}": float("nan"), f"worse{suffix}": float("nan")}
    tied = np.isclose(a, b, rtol=1e-9, atol=1e-12) | ((a == b) & np.isinf(a))
    return {f"better{suffix}": float(np.mean((a < b) & ~tied)), f"tied{suffix}": float(np.mean(tied)),
            f"worse{suffix}": float(np.mean((a > b) & ~tied))}

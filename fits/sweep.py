"""The sweep: many backtested laws per family, one row each - what the error model learns from.

For every family with at least three sizes, the target is the largest size
(the protocol of :mod:`fits.backtest`), and each *design* is a choice a user
planning small runs makes (the paper's Figures 1, 4 and 5):

* which sizes to train: ``n_models`` consecutive sizes ending at a chosen
  largest size - the scale-up factor is target size / that size;
* ``fraction``: how much of each run's training is seen (checkpoints up to
  that share of the run's final tokens);
* the method: always the library's own (:data:`fits.method.DEFAULT_METHOD`, which
  chooses its checkpoint policy from the data), so a row says what a team using
  scaleplan would have got.

Each row: family, design, points used, fitted parameters, ARE on the target,
seconds, and the design's compute relative to the target's.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .api import prepare_train
from .backtest import are, eligible_families, split_target
from .data import run_key
from .method import DEFAULT_METHOD
from .policy import POLICIES
from .trainset import FitInputError

SWEEP_VERSION = 2
# Shares of each run's training seen. Not 10%: a fit then sees only the warm-up's noisy checkpoints (the
# policy's early cut keeps half a run at most), which no plan should recommend; with it in the sweep the
# error model learned from designs nobody would pick, and its plans lost to the naive ones more often
# (README, "The error model and its intervals").
FRACTIONS = (0.25, 0.5, 1.0)
# The method is the library's (it chooses its own checkpoint policy from the data): not a design choice.
SWEEP_POLICIES = ("auto",)
MAX_MODELS = 6
MAX_LARGEST = 8


@dataclass(frozen=True)
class Design:
    n_models: int
    largest_index: int  # index of the largest trained size among the family's sizes below the target
    fraction: float
    policy: str

    def to_dict(self) -> dict:
        return asdict(self)


def designs_for(n_train_sizes: int, has_curves: bool = True) -> list[Design]:
    """Every design a family with ``n_train_sizes`` sizes below its target supports.

    Families whose runs report only final losses have no partial runs and no
    checkpoint choice: only their size designs are swept. Families with many
    sizes (Chinchilla's 43) get at most ``MAX_LARGEST`` choices of the largest
    trained size, spread evenly, so one family does not dominate the table.
    """
    if n_train_sizes > MAX_LARGEST:
        largest_choices = np.unique(np.linspace(1, n_train_sizes - 1, MAX_LARGEST).round().astype(int))
    else:
        largest_choices = range(n_train_sizes)
    fractions = FRACTIONS if has_curves else (1.0,)
    policies = SWEEP_POLICIES
    out = []
    for largest in largest_choices:
        for k in range(1, min(largest + 1, MAX_MODELS) + 1):
            for fraction in fractions:
                for policy in policies:
                    out.append(Design(k, int(largest), fraction, policy))
    return out


def _truncate(frame: pd.DataFrame, fraction: float) -> pd.DataFrame:
    """Checkpoints up to ``fraction`` of each run's final tokens (a run seen part-way).

    The rows keep their ``run_tokens``: a team watching its runs part-way knows
    how long each is planned to be.
    """
    if fraction >= 1.0:
        return frame
    run_max = frame.groupby(run_key(frame))["tokens"].transform("max")
    return frame[frame["tokens"] <= fraction * run_max * (1 + 1e-12)]


def run_design(train: pd.DataFrame, target: pd.DataFrame, design: Design, sizes: np.ndarray) -> dict:
    """Fit one sweep design and score it on the target (see :func:`evaluate_design`)."""
    used_sizes = sizes[design.largest_index - design.n_models + 1: design.largest_index + 1]
    row = evaluate_design(train, target, used_sizes, design.fraction, design.policy)
    row["design"] = design.to_dict()
    return row


def _tokens_per_param(rows: pd.DataFrame) -> float:
    """The median over the runs of tokens seen per parameter (how long the models were trained)."""
    if rows.empty:
        return 0.0
    last = rows.groupby(run_key(rows)).agg(params=("params", "first"), tokens=("tokens", "max"))
    return float((last["tokens"] / last["params"]).median())


def run_compute(rows: pd.DataFrame) -> float:
    """Training FLOPs of the runs in ``rows``: 6 N D at each run's last checkpoint there."""
    if rows.empty:
        return 0.0
    last = rows.groupby(run_key(rows)).agg(params=("params", "first"), tokens=("tokens", "max"))
    return float(6.0 * (last["params"] * last["tokens"]).sum())


def evaluate_design(train: pd.DataFrame, target: pd.DataFrame, used_sizes, fraction: float,
                    policy: str = "auto") -> dict:
    """Train on ``used_sizes`` seen up to ``fraction`` of each run, predict the target, score it.

    The prediction is the product's (policy, law choice, fit, cap by smaller
    runs). A single size gets the token-only law (or, with one checkpoint, the
    constant law: its loss): the naive "everything in one model" design.
    Failures are rows with ARE = inf and the error text.
    """
    started = time.perf_counter()
    used_sizes = np.asarray(used_sizes, dtype=float)
    rows = _truncate(train[train["params"].isin(used_sizes)], fraction)
    target_compute = float(6 * target["params"].iloc[0] * target["tokens"].max())
    row = {
        "sizes": [float(s) for s in used_sizes],
        "scale_up": float(target["params"].iloc[0] / used_sizes.max()),
        "train_compute_share": run_compute(rows) / target_compute,
        "tokens_per_model": float(rows.groupby(run_key(rows))["tokens"].max().median()) if len(rows) else 0.0,
        "tokens_per_param": _tokens_per_param(rows),
    }
    tn, td = target["params"].to_numpy(), target["tokens"].to_numpy()
    try:
        if rows.empty:
            raise FitInputError("no checkpoints within the fraction of training seen")
        method = DEFAULT_METHOD if policy == "auto" else DEFAULT_METHOD.candidates[0].with_params(
            policy=POLICIES[policy])
        fit = method.fit(rows, stderr=False)
        pred = fit.predict(tn, td, target["epochs"])
        result = fit.result
        chosen = fit.choice.get("method", fit.method.name)
        rollout = fit.choice.get("rollout_mean", {}).get(chosen, float("nan"))
        row.update(law=result.form.name, n_points=int(len(fit.used)), params=result.params, success=result.success,
                   rmse_log=result.stats["rmse_log"], method=chosen, rollout_are=rollout)
        row.update(are=are(target["value"], pred), error="")
    except FitInputError as exc:
        row.update(law="", n_points=int(len(rows)), params={}, success=False, rmse_log=float("nan"),
                   method="", rollout_are=float("nan"), are=float("inf"), error=str(exc))
    row["seconds"] = time.perf_counter() - started
    return row


def _has_curves(frame: pd.DataFrame) -> bool:
    """True when a typical run has several checkpoints (not final losses only)."""
    return bool(frame.groupby(run_key(frame)).size().median() > 1)


def sweep_family(frame: pd.DataFrame) -> list[dict]:
    """All designs for one family (its fit frame)."""
    family = str(frame["family"].iloc[0])
    train, target = split_target(prepare_train(frame))
    sizes = np.sort(train["params"].unique())
    traits = family_traits(frame)
    rows = []
    for design in designs_for(sizes.size, traits["has_curves"]):
        row = run_design(train, target, design, sizes)
        row.update(family=family, **traits)
        rows.append(row)
    return rows


def family_traits(frame: pd.DataFrame) -> dict:
    """What a planner knows about a family before training it: does data repeat, are curves logged."""
    epochs = pd.to_numeric(frame["epochs"], errors="coerce") if "epochs" in frame.columns else pd.Series(dtype=float)
    max_epochs = float(epochs.max()) if epochs.notna().any() else 1.0
    return {"max_epochs": max(max_epochs, 1.0), "has_curves": _has_curves(frame)}


def run_sweep(frame: pd.DataFrame, *, families=None, jobs: int = 1,
              progress: Callable[[int, int, str], None] | None = None) -> pd.DataFrame:
    """The sweep over every eligible family; ``jobs`` worker processes; ``progress(done, total, family)``.

    A ``source`` column in ``frame`` (the family's paper) is carried onto its rows: the error model is
    validated leaving whole sources out.
    """
    names = list(families) if families is not None else eligible_families(frame)
    parts = {name: frame[frame["family"] == name] for name in names}
    # Largest families first, so the slowest do not start last.
    order = sorted(names, key=lambda n: -len(designs_for(parts[n]["params"].nunique() - 1, _has_curves(parts[n]))))
    rows: list[dict] = []
    done = 0
    if jobs <= 1:
        for name in order:
            rows.extend(sweep_family(parts[name]))
            done += 1
            if progress:
                progress(done, len(order), name)
    else:
        with ProcessPoolExecutor(max_workers=min(jobs, os.cpu_count() or 1, len(order) or 1)) as pool:
            futures = {pool.submit(sweep_family, parts[name]): name for name in order}
            for fut in as_completed(futures):
                rows.extend(fut.result())
                done += 1
                if progress:
                    progress(done, len(order), futures[fut])
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    design = pd.json_normalize(table["design"].tolist())
    table = pd.concat([table.drop(columns=["design"]), design], axis=1)
    if "source" in frame.columns:
        sources = frame.groupby("family")["source"].first()
        table["source"] = table["family"].map(sources).fillna("")
    first = ["family", "n_models", "largest_index", "fraction", "policy", "scale_up", "train_compute_share",
             "tokens_per_model", "max_epochs", "has_curves", "law", "n_points", "are", "seconds"]
    return table[first + [c for c in table.columns if c not in first]].sort_values(
        ["family", "largest_index", "n_models", "fraction", "policy"], ignore_index=True)

"""The paper's backtest protocol (Choshen, Zhang, Andreas 2024, arXiv 2410.11840).

For each family with at least three distinct sizes: the target is the largest
size; its target checkpoints are the last 30% of its training (tokens >= 0.7 x
the largest tokens seen at that size); the fit may use every checkpoint of the
smaller sizes. ARE = mean |L - L_hat| / L over the target checkpoints.

Two naive baselines are scored the same way: the lowest loss seen in training,
and the final loss of the training run with the most compute (6 N D).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .data import run_key
from .targets import TARGET_FRACTION

MIN_SIZES = 3

Predictor = Callable[[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def split_target(frame: pd.DataFrame, target_fraction: float = TARGET_FRACTION):
    """(train, target) for one family: train = smaller sizes, target = the largest size's tail."""
    top = frame["params"].max()
    at_top = frame[frame["params"] == top]
    target = at_top[at_top["tokens"] >= target_fraction * at_top["tokens"].max()]
    train = frame[frame["params"] < top]
    return train, target


def are(actual, predicted) -> float:
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    if not np.all(np.isfinite(predicted)):
        return float("inf")
    return float(np.mean(np.abs(actual - predicted) / actual))


def best_loss_baseline(train: pd.DataFrame, n_target: int) -> np.ndarray:
    return np.full(n_target, train["value"].min())


def most_compute_baseline(train: pd.DataFrame, n_target: int) -> np.ndarray:
    keys = run_key(train)
    compute = train["params"] * train["tokens"]
    run = keys[compute.idxmax()]
    rows = train[keys == run]
    return np.full(n_target, rows.loc[rows["tokens"].idxmax(), "value"])


@dataclass
class BacktestRow:
    family: str
    n_sizes: int
    n_train_points: int
    n_target_points: int
    scale_up: float
    are: float
    are_best_loss: float
    are_most_compute: float
    seconds: float
    error: str = ""
    source: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def eligible_families(frame: pd.DataFrame, min_sizes: int = MIN_SIZES) -> list[str]:
    sizes = frame.groupby("family")["params"].nunique()
    return sorted(sizes[sizes >= min_sizes].index)


def backtest_family(frame: pd.DataFrame, predictor: Predictor,
                    target_fraction: float = TARGET_FRACTION) -> BacktestRow:
    """Score ``predictor(train, target_params, target_tokens, target_epochs)`` on one family."""
    family = str(frame["family"].iloc[0])
    train, target = split_target(frame, target_fraction)
    y = target["value"].to_numpy()
    started = time.perf_counter()
    error = ""
    try:
        pred = np.asarray(
            predictor(train, target["params"].to_numpy(), target["tokens"].to_numpy(),
                      target["epochs"].to_numpy() if "epochs" in target else None),
            dtype=float,
        )
        score = are(y, pred)
    except Exception as exc:  # a failed fit is a data point of the backtest, not a crash
        score, error = float("inf"), f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    return BacktestRow(
        family=family,
        n_sizes=int(frame["params"].nunique()),
        n_train_points=int(len(train)),
        n_target_points=int(len(target)),
        scale_up=float(target["params"].iloc[0] / train["params"].max()),
        are=score,
        are_best_loss=are(y, best_loss_baseline(train, len(y))),
        are_most_compute=are(y, most_compute_baseline(train, len(y))),
        seconds=seconds,
        error=error,
        source=str(frame["source"].iloc[0]) if "source" in frame.columns else "",
    )


def backtest(frame: pd.DataFrame, predictor: Predictor, families=None,
             target_fraction: float = TARGET_FRACTION) -> pd.DataFrame:
    """The protocol over every eligible family; one row per family.

    ``target_fraction``: the target checkpoints are those with at least this
    share of the largest size's final tokens (0.7: the last 30% of training, the
    issue's protocol; 0.3 scores the whole second part of training as well).
    """
    names = families if families is not None else eligible_families(frame)
    rows = [backtest_family(frame[frame["family"] == f], predictor, target_fraction).to_dict() for f in names]
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame) -> dict:
    """Median and 90th percentile of each ARE column, and the families worse than the best-loss baseline."""
    out = {"families": int(len(table))}
    for col in ("are", "are_best_loss", "are_most_compute"):
        vals = table[col].replace([np.inf], np.nan)
        out[col] = {
            "median": float(np.nanmedian(vals)) if vals.notna().any() else float("nan"),
            "p90": float(np.nanpercentile(vals, 90)) if vals.notna().any() else float("nan"),
            "failed": int(table[col].isin([np.inf]).sum()),
        }
    worse = table[(table["n_sizes"] >= 4) & (table["are"] > table["are_best_loss"])]
    out["worse_than_best_loss_4plus_sizes"] = sorted(worse["family"])
    if "source" in table.columns and table["source"].astype(bool).any():
        by = table["are"].groupby(table["source"])  # a failed fit counts as infinitely far off
        out["by_source"] = {str(src): {"families": int(by.size()[src]), "median": float(by.median()[src]),
                                       "max": float(by.max()[src])} for src in by.size().index}
        # Each source (paper) weighs the same: the figure a family from an unseen paper should expect.
        out["median_of_source_medians"] = float(by.median().median())
    return out

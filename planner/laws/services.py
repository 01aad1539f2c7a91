"""Selectors for the corpus browser and the laws API: a family's fitted law, backtest and interval.

``family_law(family)`` fits the family's primary metric with the library's
default policy (fits.api), runs the paper's backtest protocol on it and gives
the 80% interval of the largest size from a fit on the smaller ones. It takes
under a second on the largest ColPret family, so it runs in the request; the
result is cached (the "laws" cache of settings.CACHES: files under DATA_DIR)
under a key that changes whenever an import refreshes the family's statistics
or a curator edits the family, so a page never shows a law of data that is gone.
"""
from __future__ import annotations

import hashlib
import io
import math

import numpy as np
import pandas as pd
from django.core.cache import caches
from django.utils import timezone

from fits import (
    MIN_SIZES,
    backtest_family,
    fit,
    fit_figure,
    json_safe,
    make_predictor,
    prediction_interval,
    split_target,
)

from ..corpus.models import Family
from ..corpus.selectors import primary_frame

# Bump when the dict's shape or its computation changes: old cache entries are then ignored.
LAWS_VERSION = 2  # 2: laws with the schedule/overfitting terms and the exponent posterior
COVERAGE = 0.8
LAWS_CACHE = "laws"  # settings.CACHES alias
# 50 bootstrap refits keep the page under a second; the interval's width moves by a few percent at most
# against 200 (the method-error term dominates on extrapolations).
N_BOOT = 50
INTERVAL_MIN_SIZES = 2

# What the science raises on data it cannot fit (FitInputError is a ValueError; LinAlgError too).
_FIT_ERRORS = (ValueError, ArithmeticError)


def family_fit_frame(family: Family) -> pd.DataFrame:
    """The family's primary-metric observations as a fit frame, excluded from fitting or not."""
    return primary_frame(families=[family.name], include_excluded=True)


def _stamp(value) -> str:
    return value.isoformat() if value is not None else "never"


def family_law_cache_key(family: Family) -> str:
    # created_at guards against a recreated database reusing the id; updated_at covers a curator's edit
    # (primary metric, exclusion); stats_updated_at moves on every import that touched the family.
    parts = [str(family.pk), _stamp(family.created_at), _stamp(family.updated_at), _stamp(family.stats_updated_at),
             family.primary_metric]
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    return f"scaleplan:law:v{LAWS_VERSION}:{family.pk}:{digest}"


def _unavailable(reason: str) -> dict:
    return {"available": False, "reason": reason}


def _law(frame: pd.DataFrame) -> tuple[dict, object | None, pd.DataFrame | None]:
    try:
        fitted = fit(frame)
    except _FIT_ERRORS as exc:
        return _unavailable(f"The law could not be fitted: {exc}"), None, None
    result, used = fitted.result, fitted.used_frame()
    law = {"available": True, **result.to_dict(), "n_rows_fitted": int(len(used)), "method": fitted.method.name,
           "choice": json_safe(fitted.choice)}
    if not result.success:
        law["reason"] = f"The fit did not converge: {result.message}"
    return law, result, used


def _backtest(frame: pd.DataFrame, n_sizes: int) -> dict:
    if n_sizes < MIN_SIZES:
        return _unavailable(f"The backtest needs at least {MIN_SIZES} sizes (fit on the smaller ones, score the "
                            f"largest); this family has {n_sizes}.")
    row = backtest_family(frame, make_predictor())
    if row.error or not math.isfinite(row.are):
        return _unavailable(f"The fit on the smaller sizes failed: {row.error or 'a non-finite prediction'}")
    return {
        "available": True,
        "are": row.are,
        "are_best_loss": json_safe(row.are_best_loss),
        "are_most_compute": json_safe(row.are_most_compute),
        "scale_up": row.scale_up,
        "n_train_points": row.n_train_points,
        "n_target_points": row.n_target_points,
    }


def _interval(frame: pd.DataFrame, n_sizes: int) -> dict:
    if n_sizes < INTERVAL_MIN_SIZES:
        return _unavailable(f"The interval needs at least {INTERVAL_MIN_SIZES} sizes (fit on the smaller ones, "
                            f"predict the largest); this family has {n_sizes}.")
    train, _ = split_target(frame)
    top = float(frame["params"].max())
    at_top = frame[frame["params"] == top]
    final_tokens = float(at_top["tokens"].max())
    final = at_top[at_top["tokens"] == final_tokens]
    epochs = final["epochs"].to_numpy(dtype=float)
    target_epochs = [float(epochs[0])] if np.isfinite(epochs[0]) else None
    try:
        interval = prediction_interval(train, [top], [final_tokens], coverage=COVERAGE, n_boot=N_BOOT,
                                       target_epochs=target_epochs)
    except _FIT_ERRORS as exc:
        return _unavailable(f"The fit on the smaller sizes failed: {exc}")
    prediction, lower, upper = (json_safe(a[0]) for a in (interval.prediction, interval.lower, interval.upper))
    if prediction is None or lower is None or upper is None:
        return _unavailable("The fit on the smaller sizes gave a non-finite prediction for the largest size.")
    # Several seeds may end at the same tokens: their mean is the observed loss.
    actual = float(final["value"].mean())
    return {
        "available": True,
        "coverage": COVERAGE,
        "n_boot": N_BOOT,
        "target_params": top,
        "target_tokens": final_tokens,
        "prediction": prediction,
        "lower": lower,
        "upper": upper,
        "actual": actual,
        "actual_inside": bool(lower <= actual <= upper),
        "relative_error": abs(actual - prediction) / actual,
    }


def family_law_compute(family: Family) -> dict:
    """The uncached computation behind :func:`family_law` (JSON-safe)."""
    frame = family_fit_frame(family)
    sizes = sorted(float(n) for n in frame["params"].unique())
    out = {
        "version": LAWS_VERSION,
        "family": family.name,
        "primary_metric": family.primary_metric,
        "excluded_from_fitting": family.excluded_from_fitting,
        "data": {
            "n_rows": int(len(frame)),
            "n_runs": int(frame[["model", "seed"]].drop_duplicates().shape[0]),
            "sizes": sizes,
        },
        "computed_at": timezone.now().isoformat(),
    }
    if frame.empty:
        reason = ("The family has no primary metric." if not family.primary_metric
                  else f"The family has no observations of its primary metric {family.primary_metric!r}.")
        return {**out, "law": _unavailable(reason), "backtest": _unavailable(reason), "interval": _unavailable(reason)}
    law, _, _ = _law(frame)
    return {**out, "law": law, "backtest": _backtest(frame, len(sizes)), "interval": _interval(frame, len(sizes))}


def family_law(family: Family) -> dict:
    """The family's law, backtest and interval, from the cache when the family has not changed since."""
    key = family_law_cache_key(family)
    cache = caches[LAWS_CACHE]
    found = cache.get(key)
    if found is None:
        found = family_law_compute(family)
        cache.set(key, found, timeout=None)
    return found


def family_plot_png(family: Family) -> bytes:
    """PNG of the family's curves and its fitted law (fits.plots, no pyplot: safe in a web process)."""
    frame = family_fit_frame(family)
    if frame.empty:
        raise ValueError("The family has no observations of its primary metric.")
    fitted = fit(frame)
    figure = fit_figure(frame, fitted.result, used=fitted.used_frame(), title=f"{family.name}: {family.primary_metric} and the fitted law")
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=100)
    return out.getvalue()

"""Selectors for the corpus browser and the laws API: a family's fitted law, backtest, interval and plot.

``family_law(family)`` fits the family's primary metric with the library's
default policy (fits.api), runs the paper's backtest protocol on it, gives
the 80% interval of the largest size from a fit on the smaller ones, says which
sizes the law misses (``misfit``) and draws the plot from the same fit. It takes
a few seconds at most, so the stats refresh computes it ahead (``laws_warm``,
run by the corpus_stats job after the statistics) and a page computes it only
when that has not happened yet; the result and the plot are cached (the "laws"
cache of settings.CACHES: files under DATA_DIR) under a key that changes whenever
an import refreshes the family's statistics or a curator edits the family, so a
page never shows a law of data that is gone.
"""
from __future__ import annotations

import hashlib
import io
import math

import numpy as np
import pandas as pd
from django.core.cache import caches
from django.utils import timezone
from matplotlib.lines import Line2D

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
from ..corpus.services import corpus_stats_run

# Bump when the dict's shape or its computation changes: old cache entries are then ignored.
LAWS_VERSION = 3  # 2: laws with the schedule/overfitting terms and the exponent posterior; 3: misfit, cached plot
COVERAGE = 0.8
LAWS_CACHE = "laws"  # settings.CACHES alias
# 50 bootstrap refits keep the page under a second; the interval's width moves by a few percent at most
# against 200 (the method-error term dominates on extrapolations).
N_BOOT = 50
INTERVAL_MIN_SIZES = 2
# A size whose checkpoints the law misses by more than this on average (mean |log(loss / law)|, over the rows the
# fit used) is flagged on the family's page: 5% is visible on the plot, and above the ~4% ARE the paper calls
# the best one can hope for out of sample, so a law that misses its own data by more says little. Measured on the
# shipped corpus: README "Corpus pages".
MISFIT_THRESHOLD = 0.05

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
           "choice": json_safe(fitted.choice), **_misfit(result, used)}
    if not result.success:
        law["reason"] = f"The fit did not converge: {result.message}"
    return law, result, used


def _misfit(result, used: pd.DataFrame) -> dict:
    """How far the law is from each size's checkpoints it was fitted on, and the sizes it misses."""
    run_tokens = used["run_tokens"] if "run_tokens" in used.columns else None
    predicted = np.asarray(result.predict(used["params"], used["tokens"], used["epochs"], run_tokens), dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        residual = np.abs(np.log(used["value"].to_numpy(dtype=float)) - np.log(predicted))
    per_size = pd.DataFrame({"params": used["params"].to_numpy(dtype=float), "r": residual}).groupby("params")["r"]
    by_size = [{"params": float(n), "mean_abs_log_residual": json_safe(float(r)), "n_points": int(k)}
               for (n, r), k in zip(per_size.mean().items(), per_size.size())]
    missed = [s for s in by_size if s["mean_abs_log_residual"] is None or s["mean_abs_log_residual"] > MISFIT_THRESHOLD]
    return {"fit_by_size": by_size, "misfit": {"threshold": MISFIT_THRESHOLD, "sizes": missed}}


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
    return family_law_and_plot_compute(family)[0]


def family_law_and_plot_compute(family: Family) -> tuple[dict, bytes | None]:
    """The family's law, backtest and interval (JSON-safe), and the PNG of its curves with the law (None when
    there is nothing to draw), from one fit."""
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
        return {**out, "law": _unavailable(reason), "backtest": _unavailable(reason), "interval": _unavailable(reason)}, None
    law, result, used = _law(frame)
    png = _plot(family, frame, result, used) if result is not None else None
    return {**out, "law": law, "backtest": _backtest(frame, len(sizes)), "interval": _interval(frame, len(sizes))}, png


def _plot_key(family: Family) -> str:
    return family_law_cache_key(family) + ":plot"


def _compute_and_cache(family: Family) -> tuple[dict, bytes | None]:
    found, png = family_law_and_plot_compute(family)
    caches[LAWS_CACHE].set_many({family_law_cache_key(family): found, _plot_key(family): png}, timeout=None)
    return found, png


def family_law(family: Family) -> dict:
    """The family's law, backtest and interval, from the cache when the family has not changed since."""
    found = caches[LAWS_CACHE].get(family_law_cache_key(family))
    return found if found is not None else _compute_and_cache(family)[0]


def family_plot_png(family: Family) -> bytes:
    """PNG of the family's curves and its fitted law, cached with the law (drawn again only if evicted)."""
    png = caches[LAWS_CACHE].get(_plot_key(family))
    if png is None:
        png = _compute_and_cache(family)[1]
    if png is None:
        raise ValueError("The family has no observations of its primary metric, or its law could not be fitted.")
    return png


def cached_laws(families) -> dict:
    """Family pk -> its law as cached now, for the families whose law is (the families list, the laws API)."""
    keys = {family.pk: family_law_cache_key(family) for family in families}
    found = caches[LAWS_CACHE].get_many(list(keys.values()))
    return {pk: found[key] for pk, key in keys.items() if key in found}


def laws_warm(*, family_ids=None, progress=None) -> dict:
    """Compute and cache the law (and plot) of each family that has none cached for its current data, so pages
    and the families list do not wait for them. ``progress(fraction, message)`` may raise to stop."""
    families = list(Family.objects.order_by("name") if family_ids is None
                    else Family.objects.filter(pk__in=list(family_ids)).order_by("name"))
    have = cached_laws(families)
    todo = [f for f in families if f.pk not in have]
    for done, family in enumerate(todo):
        if progress:
            progress(done / len(todo), f"law {done + 1}/{len(todo)}: {family.name}")
        _compute_and_cache(family)
    return {"laws_computed": len(todo), "laws_cached_already": len(have)}


def stats_and_laws_run(*, job, progress) -> dict:
    """The corpus_stats job: refresh the families' statistics, then compute the laws their pages show."""
    stats = corpus_stats_run(job=job, progress=lambda f, m="": progress(0.5 * f, m))
    family_ids = [pk for pk, in Family.objects.filter(name__in=stats["families"]).values_list("pk")]
    laws = laws_warm(family_ids=family_ids, progress=lambda f, m="": progress(0.5 + 0.5 * f, m))
    progress(1.0, f"{stats['families_refreshed']} families refreshed, {laws['laws_computed']} laws computed")
    return {**stats, **laws}


def _plot(family: Family, frame: pd.DataFrame, result, used: pd.DataFrame) -> bytes:
    figure = fit_figure(frame, result, used=used, title=f"{family.name}: {family.primary_metric} and the fitted law")
    _say_what_marks_are(figure)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=100)
    return out.getvalue()


def _say_what_marks_are(figure) -> None:
    """Legend entries saying which marks are data and which the law (fits.fit_figure labels the sizes only)."""
    ax = figure.axes[0]
    handles, labels = ax.get_legend_handles_labels()
    key = [Line2D([], [], marker="o", linestyle="none", color="0.35", markersize=4,
                  label="points = data (faded: not fitted)"),
           Line2D([], [], color="0.35", lw=1.2, label="lines = law (fitted)")]
    ax.legend(handles=key + handles, labels=[h.get_label() for h in key] + labels, fontsize=8, loc="upper right")

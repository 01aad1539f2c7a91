"""Figures of a fitted family: data and fitted curves per size, and a target's prediction.

Functions return a :class:`matplotlib.figure.Figure` built without pyplot, so
they are safe in a web process or worker (no global figure state, no GUI
backend): the caller saves it (``fig.savefig(path)``) or renders it to bytes.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure


def _label_size(n: float) -> str:
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.3g}"


def _epochs_along(rows: pd.DataFrame, tokens: np.ndarray):
    """Epochs at ``tokens`` for one size, interpolated in log-tokens (None when the data never repeats)."""
    if "epochs" not in rows.columns:
        return None
    known = rows[np.isfinite(rows["epochs"].to_numpy(dtype=float))]
    if known.empty:
        return None
    known = known.sort_values("tokens")
    return np.interp(np.log(tokens), np.log(known["tokens"].to_numpy()), known["epochs"].to_numpy(dtype=float))


def fit_figure(
    observations: pd.DataFrame,
    result,
    *,
    used: pd.DataFrame | None = None,
    heldout: pd.DataFrame | None = None,
    target_params: float | None = None,
    target_tokens=None,
    target_prediction=None,
    target_lower=None,
    target_upper=None,
    coverage: float | None = None,
    title: str | None = None,
    figsize=(8.0, 5.0),
) -> Figure:
    """Loss against tokens (log x) for one family and its fitted law.

    ``observations``: the family's fit frame (``params, tokens, value``, optional
    ``seed``, ``epochs``), drawn faded; ``used``: the rows the fit used (drawn
    solid), so the checkpoint policy's cut is visible; ``heldout``: rows the fit
    did not see (e.g. the backtest's target), drawn as black crosses.
    ``result``: a :class:`fits.fitting.FitResult`; its curve is drawn for every
    size in ``used`` (or ``observations``). With ``target_params`` and
    ``target_tokens`` (an increasing array), the target's predicted curve is drawn,
    with its interval band when ``target_lower``/``target_upper`` are given.
    """
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    fitted = used if used is not None else observations
    sizes = np.sort(np.unique(np.concatenate([observations["params"].to_numpy(dtype=float),
                                              [target_params] if target_params is not None else []])))
    norm = LogNorm(sizes.min(), sizes.max()) if sizes.size > 1 and sizes.min() > 0 else Normalize(0, 2)
    cmap = colormaps["viridis"]
    many = sizes.size > 12  # a legend of 40 sizes hides the plot; a colour bar says the same

    for n in sizes:
        colour = cmap(norm(n))
        rows = observations[observations["params"] == n]
        if not rows.empty:
            ax.scatter(rows["tokens"], rows["value"], s=6, color=colour, alpha=0.25, linewidths=0)
        fit_rows = fitted[fitted["params"] == n]
        if not fit_rows.empty:
            ax.scatter(fit_rows["tokens"], fit_rows["value"], s=9, color=colour, linewidths=0,
                       label=None if many else f"N={_label_size(n)}")
            lo, hi = fit_rows["tokens"].min(), fit_rows["tokens"].max()
            grid = np.geomspace(lo, hi, 100) if hi > lo else np.array([lo])
            # The run's own curve: checkpoints of a run ending at its last one (the schedule term, if any).
            run_end = float(fit_rows["run_tokens"].max()) if "run_tokens" in fit_rows.columns else hi
            curve = result.predict(np.full_like(grid, n), grid, _epochs_along(fit_rows, grid), run_end)
            ax.plot(grid, curve, color=colour, lw=1.2)

    if heldout is not None and not heldout.empty:
        ax.scatter(heldout["tokens"], heldout["value"], marker="x", s=18, color="black", lw=0.8,
                   label="held out", zorder=4)

    if target_params is not None and target_tokens is not None:
        tt = np.atleast_1d(np.asarray(target_tokens, dtype=float))
        pred = (np.atleast_1d(np.asarray(target_prediction, dtype=float)) if target_prediction is not None
                else result.predict(np.full_like(tt, target_params), tt))
        label = f"target N={_label_size(target_params)}"
        if tt.size > 1:
            ax.plot(tt, pred, color="crimson", lw=1.8, ls="--", label=label + " (predicted)", zorder=5)
        else:
            ax.scatter(tt, pred, color="crimson", marker="*", s=90, label=label + " (predicted)", zorder=5)
        if target_lower is not None and target_upper is not None:
            band = f"{coverage:.0%} interval" if coverage else "interval"
            lower = np.atleast_1d(np.asarray(target_lower, dtype=float))
            upper = np.atleast_1d(np.asarray(target_upper, dtype=float))
            if tt.size > 1:
                ax.fill_between(tt, lower, upper, color="crimson", alpha=0.18, lw=0, label=band)
            else:
                ax.errorbar(tt, pred, yerr=[pred - lower, upper - pred], color="crimson", capsize=4,
                            lw=1.2, label=band, zorder=5)

    ax.set_xscale("log")
    ax.set_xlabel("tokens seen (D)")
    ax.set_ylabel("loss")
    ax.grid(True, which="major", alpha=0.3)
    if title:
        ax.set_title(title)
    if many:
        fig.colorbar(_mappable(cmap, norm), ax=ax, label="parameters (N)")
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=8, loc="upper right")
    return fig


def _mappable(cmap, norm):
    from matplotlib.cm import ScalarMappable

    mappable = ScalarMappable(norm=norm, cmap=cmap)
    mappable.set_array([])
    return mappable


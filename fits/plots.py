"""Figures: a fitted family (data and fitted curves per size, a target's prediction) and a plan's iso-FLOP frontier.

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

from .compute_optimal import law_loss, optimal_split
from .schedule import size_label


_label_size = size_label


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


def iso_flop_figure(plan: dict, *, figsize=(8.0, 5.0)) -> Figure:
    """Loss against parameters along iso-FLOP curves, under the plan's compute-optimal law.

    ``plan``: a plan's ``to_dict()`` (as stored). Drawn: the curve at the target's compute with the target
    on it and the compute-optimal split (its 10-90% range as a bar), the curve at the whole budget, each
    planned run on its own curve, and the frontier of optima across budgets. The loss is the reference law's
    (``plan["compute_optimal"]["law"]``), not the user's: it shows where the runs sit, not what they will reach.
    """
    opt = plan["compute_optimal"]
    law = opt["law"]
    request = plan["request"]
    runs = (plan.get("recommended") or {}).get("models") or plan["models"]
    n_t, d_t, c_t = (float(request[k]) for k in ("target_params", "target_tokens", "target_compute"))
    budget = float(request["budget_flops"])
    run_n = np.array([float(m["params"]) for m in runs])
    run_d = np.array([float(m["tokens"]) for m in runs])
    opt_b, _ = optimal_split(budget, law)
    lo = min(run_n.min(), float(opt_b), n_t) / 10
    hi = max(run_n.max(), float(opt["params"]), n_t) * 10
    grid = np.geomspace(lo, hi, 300)

    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    ax.plot(grid, law_loss(law, grid, c_t / (6 * grid)), color="crimson", lw=1.8,
            label=f"iso-FLOP at the target's compute ({c_t:.3g} FLOPs)")
    ax.plot(grid, law_loss(law, grid, budget / (6 * grid)), color="tab:blue", lw=1.4, ls="--",
            label=f"iso-FLOP at the whole budget ({budget:.3g} FLOPs)")
    for i, (n, d) in enumerate(zip(run_n, run_d)):
        ax.plot(grid, law_loss(law, grid, 6 * n * d / (6 * grid)), color="tab:blue", lw=0.6, alpha=0.35,
                label="iso-FLOP of each planned run" if i == 0 else None)
    computes = np.geomspace(min(6 * run_n * run_d) / 3, c_t * 3, 60)
    fn, fd = optimal_split(computes, law)
    ax.plot(fn, law_loss(law, fn, fd), color="0.3", lw=1.0, ls=":", label="compute-optimal frontier (each compute's best)")
    ax.scatter(run_n, law_loss(law, run_n, run_d), s=36, color="tab:blue", edgecolors="white", zorder=5,
               label=f"planned runs ({len(runs)}, circles)")
    ax.scatter([n_t], [law_loss(law, n_t, d_t)], marker="*", s=180, color="crimson", edgecolors="black", lw=0.5,
               zorder=6, label=f"target ({size_label(n_t)} on {d_t:.3g} tokens, star)")
    n_o, d_o = float(opt["params"]), float(opt["tokens"])
    l_o = float(law_loss(law, n_o, d_o))
    lo_o, hi_o = (float(v) for v in opt.get("params_interval", [n_o, n_o]))
    ax.errorbar([n_o], [l_o], xerr=[[n_o - lo_o], [hi_o - n_o]], fmt="D", color="tab:green", ms=7, capsize=4,
                zorder=6, label=f"compute-optimal split of the target's compute ({size_label(n_o)}, "
                                f"{d_o / n_o:.0f} tokens/param; bar: 10-90% range)")
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    marks = np.concatenate([law_loss(law, run_n, run_d), [law_loss(law, n_t, d_t), l_o]])
    span = marks.max() - marks.min()
    ax.set_ylim(marks.min() - 0.3 * span - 0.05, marks.max() + 0.6 * span + 0.05)
    ax.set_xlabel("parameters (N); tokens D = compute / (6 N)")
    ax.set_ylabel("loss under the reference law")
    ax.set_title(f"Iso-FLOP curves under {opt.get('source', 'the reference law')}", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    return fig

"""What the user's own fit says a run not yet trained would do for the target's prediction.

A candidate run is simulated from the current law: its checkpoints (every
``tokens / checkpoints`` tokens, as it would be evaluated) take the law's
values. The runs are then bootstrapped as :mod:`fits.interval` does it - each
real run rebuilt from the fitted curve with a fresh run offset (the run-to-run
sd the fit measured) and its own residual curve with a random sign; a simulated
run gets a fresh offset and no residual curve, since none has been seen - and
the fit's method is refitted on every replicate. The spread of the target's
log prediction, with the extrapolation error of the design's scale-up added in
quadrature (the interval's own rule), gives the quantiles of |log error| the
user should expect with and without the run.

Draws for the real runs come first from one generator and the simulated runs'
from another, so every candidate sees the same replicates of the real runs:
candidates differ by their run, not by the draw.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .interval import method_error, run_offsets
from .targets import targets
from .trainset import FitInputError, TrainSet

QUANTILES = (0.1, 0.5, 0.9)
DEFAULT_CHECKPOINTS = 50


def simulated_run(fit, params: float, tokens: float, *, checkpoints: int = DEFAULT_CHECKPOINTS,
                  name: str | None = None) -> pd.DataFrame:
    """A run of ``params`` parameters planned for ``tokens`` tokens, as the current law says it would log."""
    grid = tokens * np.arange(1, checkpoints + 1) / checkpoints
    n = np.full(grid.size, float(params))
    value = fit.result.predict(n, grid, None, np.full(grid.size, float(tokens)))
    return pd.DataFrame({"model": name or f"simulated-{params:.4g}", "seed": "", "params": n, "tokens": grid,
                         "value": value, "epochs": np.nan, "run_tokens": float(tokens)})


def expected_log_error(scale_up: float, sd_log: float, dof: int) -> dict:
    """p10/p50/p90 of |log(predicted / actual)| (about the ARE) for a statistical sd and a scale-up.

    The q-quantile is the half-width of the q-coverage interval by :mod:`fits.interval`'s rule:
    the corpus-measured extrapolation error at that coverage and Student's t times the sd, in quadrature.
    """
    out = {}
    for q in QUANTILES:
        method = float(method_error(q, scale_up))
        statistical = float(stats.t.ppf(0.5 + q / 2, df=max(dof, 1))) * sd_log
        out[f"p{int(round(100 * q))}"] = float(np.hypot(method, statistical))
    return out


def own_fit_spread(fit, target_params: float, target_tokens: float, added=(), *, n_boot: int = 16,
                   seed: int = 0) -> dict:
    """The target's prediction spread from a run-level bootstrap of the fit's runs plus ``added`` (simulated
    runs, frames as :func:`simulated_run` gives), refitting the fit's method each time (module docstring).

    Returns ``boot_sd_log``, ``run_sd_log``, ``sd_log`` (both in quadrature: the target is one more run),
    ``dof``, ``scale_up``, ``n_failed`` and ``expected`` (:func:`expected_log_error`).
    """
    n_t, d_t = targets([target_params], [target_tokens])
    base, result = fit.train, fit.result
    fitted = result.predict(base.params, base.tokens, base.epochs, base.run_tokens)
    used_fitted = result.predict(fit.used.params, fit.used.tokens, fit.used.epochs, fit.used.run_tokens)
    resid = np.log(fit.used.value) - np.log(used_fitted)
    _, n_used_runs, _, run_sd, _ = run_offsets(fit.used.run, fit.weight, resid)
    labels = np.unique(fit.used.run)
    offsets = np.zeros(base.n_runs if base.run.size else 0)
    sums = np.bincount(fit.used.run, weights=fit.weight * resid, minlength=offsets.size)
    totals = np.bincount(fit.used.run, weights=fit.weight, minlength=offsets.size)
    offsets[labels] = sums[labels] / np.where(totals[labels] > 0, totals[labels], 1.0)
    within = np.log(base.value) - np.log(fitted) - offsets[base.run]

    parts = [base.frame()] + [pd.DataFrame(a) for a in added]
    aug = TrainSet.from_frame(pd.concat(parts, ignore_index=True))
    n_base_rows, n_base_runs = len(base), base.n_runs
    n_runs = aug.n_runs
    # The base rows keep their order, so their run codes are the base's (factorised in order of appearance).
    center = np.concatenate([fitted, aug.value[n_base_rows:]])
    shape = np.concatenate([within, np.zeros(len(aug) - n_base_rows)])

    rng_base, rng_added = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    signs = np.hstack([rng_base.choice((-1.0, 1.0), size=(n_boot, n_base_runs)),
                       np.ones((n_boot, n_runs - n_base_runs))])
    shifts = np.hstack([rng_base.normal(0.0, run_sd, size=(n_boot, n_base_runs)) if run_sd > 0
                        else np.zeros((n_boot, n_base_runs)),
                        rng_added.normal(0.0, run_sd, size=(n_boot, n_runs - n_base_runs)) if run_sd > 0
                        else np.zeros((n_boot, n_runs - n_base_runs))])
    preds, failed = [], 0
    for b in range(n_boot):
        y = center * np.exp(shifts[b][aug.run] + signs[b][aug.run] * shape)
        try:
            pred = fit.method.fit(aug.with_values(y), stderr=False).predict(n_t, d_t)
        except FitInputError:
            failed += 1
            continue
        if np.all(np.isfinite(pred)) and np.all(pred > 0):
            preds.append(float(np.log(pred[0])))
        else:
            failed += 1
    boot_sd = float(np.std(preds)) if len(preds) > 1 else float("nan")
    sd = float(np.hypot(boot_sd, run_sd)) if np.isfinite(boot_sd) else float("nan")
    dof = max(n_runs - 3, 1)
    scale_up = float(n_t[0] / aug.params.max())
    expected = expected_log_error(scale_up, sd, dof) if np.isfinite(sd) else {
        f"p{int(round(100 * q))}": float("nan") for q in QUANTILES}
    return {"boot_sd_log": boot_sd, "run_sd_log": float(run_sd), "sd_log": sd, "dof": int(dof),
            "scale_up": scale_up, "n_boot": int(n_boot), "n_failed": int(failed), "runs_fitted": int(n_used_runs),
            "expected": expected}

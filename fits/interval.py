"""Prediction intervals for a target's loss.

Two sources of error, added in log space:

1. *Statistical error* - a run-level bootstrap. Checkpoints of one run are
   strongly correlated (one seed, one data order), so resampling checkpoints
   would overstate certainty. Each replicate keeps the design and rebuilds
   every run from the fitted curve: a fresh run offset drawn with the
   run-to-run sd (estimated from the runs' mean residuals, corrected for the
   degrees of freedom the fit absorbed), plus the run's within-run residual
   curve times one random sign. The law is refitted and the targets
   predicted. That keeps every size in every replicate (a plain resample of
   runs loses sizes when a family has two or three), and the target, being
   one more run, adds its own run-to-run offset. A plain wild bootstrap of
   the residuals understates the spread: the fit absorbs most run offsets
   into E and alpha, so flipping what is left is too little.
2. *Extrapolation error* - what the bootstrap cannot see: the law itself is
   an approximation, and its error grows with the scale-up s from the largest
   trained size. Its distribution is heavy-tailed (most families within ~1%,
   a few - repeated-data overfitting, synthetic phase changes - far off), so
   it is taken as the empirical quantiles of |log(actual / predicted)| over
   the corpus backtest, normalised by (1 + ln s)^1.3, each family weighing one.
   ``bench/interval_calibration.py`` re-derives the table and prints the
   coverage it gives.

The two are combined in quadrature: half-width (log) =
sqrt((q_c * shape(s))^2 + (z_c * bootstrap sd)^2). With an error model
(:meth:`fits.method.Fit.interval`'s ``error_model``) the half-width is instead
what that model expects of this very design given the fit's own evidence: it
learned from realised errors, which already hold every source of error.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from .fitting import fit_law
from .targets import resolve_target_run_tokens, targets

# Coverage -> quantile of the default method's |log error| normalised by the scale-up shape, from the
# backtest of both corpora, families weighing the same (re-derived by bench/interval_calibration.py).
METHOD_ERROR_QUANTILES = (
    (0.0, 0.0),
    (0.5, 0.0035),
    (0.6, 0.0048),
    (0.7, 0.0089),
    (0.8, 0.0147),
    (0.9, 0.0355),
    (0.95, 0.0383),
    (0.99, 0.2000),  # beyond the table's support: a guess at the tail, kept deliberately wide
)
SCALE_UP_POWER = 1.3
# The largest scale-up the corpus's backtests reach (the sweep's designs): beyond it the table has seen
# nothing, so its half-width grows with the square of the extrapolation in log scale-up, not the fitted shape.
MEASURED_SCALE_UP = 1400.0


@dataclass
class Interval:
    prediction: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    coverage: float
    boot_sd_log: np.ndarray
    method_sd_log: float
    n_boot: int
    run_sd_log: float = 0.0

    def to_dict(self) -> dict:
        return {
            "prediction": self.prediction.tolist(),
            "lower": self.lower.tolist(),
            "upper": self.upper.tolist(),
            "coverage": self.coverage,
            "boot_sd_log": self.boot_sd_log.tolist(),
            "method_sd_log": self.method_sd_log,
            "n_boot": self.n_boot,
            "run_sd_log": self.run_sd_log,
        }


def scale_up_shape(scale_up) -> np.ndarray:
    """How the law's extrapolation error grows with the scale-up factor (1 at s = 1)."""
    s = np.maximum(np.asarray(scale_up, dtype=float), 1.0)
    return (1.0 + np.log(s)) ** SCALE_UP_POWER


def method_error(coverage: float, scale_up) -> np.ndarray:
    """Half-width (log) that covers the law's own error with probability ``coverage``."""
    cov, q = np.array(METHOD_ERROR_QUANTILES).T
    s = np.maximum(np.asarray(scale_up, dtype=float), 1.0)
    beyond = np.maximum(np.log(s) / np.log(MEASURED_SCALE_UP), 1.0) ** 2
    return np.interp(coverage, cov, q) * scale_up_shape(s) * beyond


def run_offsets(runs: np.ndarray, weight: np.ndarray, resid: np.ndarray):
    """Each run's weighted mean log residual, the within-run remainder, and the run-to-run sd.

    The sd is corrected for what the fit absorbed: with R runs, the size part
    of the law (E, A, alpha) soaks up about 3 of the R run offsets, so their
    sum of squares has about R - 3 degrees of freedom (at least 1).
    """
    labels, inverse = np.unique(runs, return_inverse=True)
    sums = np.bincount(inverse, weights=weight * resid, minlength=labels.size)
    totals = np.bincount(inverse, weights=weight, minlength=labels.size)
    offsets = sums / np.where(totals > 0, totals, 1.0)
    within = resid - offsets[inverse]
    dof = max(labels.size - 3, 1)
    sd = float(np.sqrt(np.sum(offsets**2) / dof)) if labels.size > 1 else 0.0
    return inverse, labels.size, within, sd, dof


def bootstrap_predictions(fit, target_params, target_tokens, *, target_epochs=None, target_run_tokens=None,
                          n_boot: int = 100, seed: int = 0) -> tuple[np.ndarray, float, int]:
    """(n_boot, n_targets) refit predictions, the run-to-run sd of log loss and its degrees of freedom.

    Each replicate rebuilds every run from the fitted curve: a fresh run offset
    drawn with the estimated run-to-run sd (a seed's worth of difference), plus
    the run's own within-run residual curve with one random sign (wild
    bootstrap: the curve's shape and correlation are kept). The law is refitted
    the way the fit was made (form, prior, overfitting shape, weights).
    """
    rng = np.random.default_rng(seed)
    used, result = fit.used, fit.result
    fitted = result.predict(used.params, used.tokens, used.epochs, used.run_tokens)
    resid = np.log(used.value) - np.log(fitted)
    inverse, n_runs, within, run_sd, dof = run_offsets(used.run, fit.weight, resid)
    out = np.empty((n_boot, np.size(target_params)))
    for b in range(n_boot):
        signs = rng.choice((-1.0, 1.0), size=n_runs)
        shift = rng.normal(0.0, run_sd, size=n_runs) if run_sd > 0 else np.zeros(n_runs)
        y = fitted * np.exp(shift[inverse] + signs[inverse] * within)
        boot = fit_law(used.params, used.tokens, y, form=result.form, epochs=used.epochs,
                       run_tokens=used.run_tokens, runs=used.run, weights=fit.weight, delta=fit.method.delta,
                       loss=fit.method.loss, refine=fit.method.refine, prior=result.prior,
                       overfit_shape=result.overfit_shape, stderr=False)
        out[b] = boot.predict(target_params, target_tokens, target_epochs, target_run_tokens)
    return out, run_sd, dof


def fit_interval(fit, target_params, target_tokens, *, coverage: float = 0.8, epochs=None, run_tokens=None,
                 n_boot: int = 100, seed: int = 0, include_method_error: bool = True,
                 method_half_width=None) -> Interval:
    """A ``coverage`` interval for the targets' loss from a fit (see the module docstring).

    The target is itself one more run, so its own run-to-run offset is part of
    the interval. ``include_method_error=False`` leaves the statistical part
    only: the right interval when the law is known to be the true model
    (synthetic checks). ``method_half_width`` (log, per target) is the whole
    half-width instead: what an error model expects of this design's error, all
    of it (run-to-run noise included, since the designs it learned from had
    theirs), so no bootstrap is added to it.
    """
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be between 0 and 1, not {coverage}")
    n, d = targets(np.atleast_1d(target_params), np.atleast_1d(target_tokens))
    run = resolve_target_run_tokens(n, d, run_tokens)
    center = fit.result.predict(n, d, epochs, run)
    if method_half_width is not None and include_method_error:
        half = np.broadcast_to(np.asarray(method_half_width, dtype=float).ravel(), center.shape)
        return Interval(prediction=center, lower=center * np.exp(-half), upper=center * np.exp(half),
                        coverage=coverage, boot_sd_log=np.zeros_like(center), method_sd_log=float(np.max(half)),
                        n_boot=0, run_sd_log=0.0)
    boots, run_sd, dof = bootstrap_predictions(fit, n, d, target_epochs=epochs, target_run_tokens=run,
                                               n_boot=n_boot, seed=seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_boot = np.log(np.where(boots > 0, boots, np.nan))
    boot_sd = np.nan_to_num(np.nanstd(log_boot, axis=0), nan=0.0)
    scale_up = n / fit.used.params.max()
    # Student's t, not the normal: the run-to-run spread is estimated from a
    # handful of runs (R - 3 degrees of freedom), and an interval that ignores
    # that is too narrow exactly when the user has few models.
    z = stats.t.ppf(0.5 + coverage / 2, df=dof)
    method = method_error(coverage, scale_up) if include_method_error else np.zeros_like(center)
    statistical = z * np.sqrt(boot_sd**2 + run_sd**2)
    half = np.sqrt(method**2 + statistical**2)
    return Interval(prediction=center, lower=center * np.exp(-half), upper=center * np.exp(half),
                    coverage=coverage, boot_sd_log=boot_sd, method_sd_log=float(np.max(method)), n_boot=n_boot,
                    run_sd_log=run_sd)

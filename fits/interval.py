"""Prediction intervals for a target's loss.

Two sources of error, added in log space:

1. *Fit uncertainty* - a wild cluster bootstrap. Checkpoints of one run are
   strongly correlated (one seed, one data order), so resampling checkpoints
   would overstate certainty. Instead each replicate keeps the design, takes
   the fitted curve, and adds back each run's whole residual curve multiplied
   by one random sign (Rademacher) per run; the law is refitted and the
   targets predicted. That keeps every size in every replicate (a plain
   resample of runs loses sizes when a family has two or three), yet varies
   the data run by run.
2. *Extrapolation error* - what the bootstrap cannot see: the law itself is
   an approximation whose error grows with the scale-up from the largest
   trained size. Its size is learned from the corpus backtest
   (``python -m fits backtest`` prints the calibration): the log error of
   the default method has scale ``sigma(s) = a + b * ln(s)`` for scale-up s.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .data import run_key
from .fitting import fit_law
from .policy import DEFAULT_POLICY

# Scale of the log prediction error of the default method, from the
# leave-one-out backtest on the reference corpus (bench/interval_calibration.py
# re-derives these; see the README). Families whose "loss" is pathological
# (repeated-data overfitting, synthetic phase changes) were not excluded:
# the interval must be honest for them too.
METHOD_SIGMA_INTERCEPT = 0.006
METHOD_SIGMA_SLOPE = 0.006


@dataclass
class Interval:
    prediction: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    coverage: float
    boot_sd_log: np.ndarray
    method_sd_log: float
    n_boot: int

    def to_dict(self) -> dict:
        return {
            "prediction": self.prediction.tolist(),
            "lower": self.lower.tolist(),
            "upper": self.upper.tolist(),
            "coverage": self.coverage,
            "boot_sd_log": self.boot_sd_log.tolist(),
            "method_sd_log": self.method_sd_log,
            "n_boot": self.n_boot,
        }


def method_sigma(scale_up) -> np.ndarray:
    s = np.maximum(np.asarray(scale_up, dtype=float), 1.0)
    return METHOD_SIGMA_INTERCEPT + METHOD_SIGMA_SLOPE * np.log(s)


def bootstrap_predictions(selected: pd.DataFrame, result, target_params, target_tokens, *, target_epochs=None,
                          n_boot: int = 100, seed: int = 0, delta: float = 3e-3) -> np.ndarray:
    """(n_boot, n_targets) predictions from refits on run-level wild-bootstrap replicates."""
    rng = np.random.default_rng(seed)
    fitted = result.predict(selected["params"], selected["tokens"], selected["epochs"])
    resid = np.log(selected["value"].to_numpy()) - np.log(fitted)
    runs, inverse = np.unique(run_key(selected).to_numpy(), return_inverse=True)
    out = np.empty((n_boot, np.size(target_params)))
    fixed = (result.alpha if not result.form.size_term else None, None)
    for b in range(n_boot):
        signs = rng.choice((-1.0, 1.0), size=runs.size)
        y = fitted * np.exp(signs[inverse] * resid)
        boot = fit_law(selected["params"], selected["tokens"], y, form=result.form, epochs=selected["epochs"],
                       weights=selected["weight"], delta=delta,
                       fixed_exponents=fixed if fixed[0] is not None else None)
        out[b] = boot.predict(target_params, target_tokens, target_epochs)
    return out


def prediction_interval(train, target_params, target_tokens, *, coverage: float = 0.8, target_epochs=None,
                        n_boot: int = 100, seed: int = 0, policy=DEFAULT_POLICY) -> Interval:
    from .api import DEFAULT_DELTA, fit_train

    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be between 0 and 1, not {coverage}")
    result, selected = fit_train(train, policy=policy)
    n = np.atleast_1d(np.asarray(target_params, dtype=float))
    d = np.atleast_1d(np.asarray(target_tokens, dtype=float))
    n, d = np.broadcast_arrays(n, d)
    center = result.predict(n, d, target_epochs)
    boots = bootstrap_predictions(selected, result, n, d, target_epochs=target_epochs, n_boot=n_boot, seed=seed,
                                  delta=DEFAULT_DELTA)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_boot = np.log(np.where(boots > 0, boots, np.nan))
    boot_sd = np.nanstd(log_boot, axis=0)
    scale_up = n / selected["params"].max()
    sigma = np.sqrt(boot_sd**2 + method_sigma(scale_up) ** 2)
    z = stats.norm.ppf(0.5 + coverage / 2)
    lower = center * np.exp(-z * sigma)
    upper = center * np.exp(z * sigma)
    return Interval(prediction=center, lower=lower, upper=upper, coverage=coverage, boot_sd_log=boot_sd,
                    method_sd_log=float(np.max(method_sigma(scale_up))), n_boot=n_boot)

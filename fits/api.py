"""The library's public contract: fit a family's small models, predict a bigger one.

``predict_loss(train, target_params, target_tokens)`` and
``predict_interval(train, target_params, target_tokens, coverage=0.8)`` use the
default method (:data:`fits.method.DEFAULT_METHOD`, which chooses among
candidate methods from the family's own data), so a user with a DataFrame of
their small runs needs nothing else. ``fit(train)`` returns the
:class:`fits.method.Fit` itself: its law, how it was chosen, ``predict`` and
``interval`` without refitting.

Runs are taken to be complete: each run's last checkpoint is the end of its
training (a ``run_tokens`` column can say otherwise, e.g. for runs still in
progress). Targets of one size are taken to be checkpoints of one run that
ends at the largest of their token counts (``target_run_tokens`` can say
otherwise); ask for a single token count to get a run's final loss.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .interval import Interval
from .method import DEFAULT_METHOD, Fit
from .targets import default_run_tokens
from .trainset import TrainSet


def fit(train: pd.DataFrame, method=DEFAULT_METHOD) -> Fit:
    """Fit ``method`` (default: the library's) to one family's runs."""
    return method.fit(train)


def predict_loss(train: pd.DataFrame, target_params, target_tokens, target_epochs=None,
                 target_run_tokens=None) -> np.ndarray:
    """Predicted loss of the targets from one family's smaller runs (the default method)."""
    return DEFAULT_METHOD.fit(train, stderr=False).predict(target_params, target_tokens, target_epochs,
                                                           target_run_tokens)


def predict_interval(train: pd.DataFrame, target_params, target_tokens, coverage: float = 0.8,
                     target_epochs=None, n_boot: int = 100, seed: int = 0, target_run_tokens=None):
    """(lower, upper) arrays in the targets' shape: a ``coverage`` prediction interval for the targets' loss.

    See :mod:`fits.interval`: a run-level bootstrap of the fit plus the
    extrapolation error the method is expected to make.
    """
    n, d = np.broadcast_arrays(np.asarray(target_params, dtype=float), np.asarray(target_tokens, dtype=float))
    epochs = None if target_epochs is None else np.broadcast_to(np.asarray(target_epochs, dtype=float), n.shape).ravel()
    run = None if target_run_tokens is None else np.broadcast_to(np.asarray(target_run_tokens, dtype=float),
                                                                 n.shape).ravel()
    if run is None:  # the contract's default, taken on the targets as given
        run = default_run_tokens(n, d).ravel()
    out = prediction_interval(train, n.ravel(), d.ravel(), coverage=coverage, target_epochs=epochs, n_boot=n_boot,
                              seed=seed, target_run_tokens=run)
    return out.lower.reshape(n.shape), out.upper.reshape(n.shape)


def prediction_interval(train, target_params, target_tokens, *, coverage: float = 0.8, target_epochs=None,
                        target_run_tokens=None, n_boot: int = 100, seed: int = 0, method=DEFAULT_METHOD,
                        include_method_error: bool = True) -> Interval:
    """Fit ``method`` to ``train`` and give the targets' :class:`fits.interval.Interval`."""
    return method.fit(train).interval(target_params, target_tokens, coverage=coverage, epochs=target_epochs,
                                      run_tokens=target_run_tokens, n_boot=n_boot, seed=seed,
                                      method_error=include_method_error)


def prepare_train(train: pd.DataFrame) -> pd.DataFrame:
    """The training frame validated and normalised (errors name the column and row), as a DataFrame."""
    return TrainSet.from_frame(train).frame()


def make_predictor(method=DEFAULT_METHOD):
    """A method as a backtest predictor: ``f(train, params, tokens, epochs, run_tokens) -> losses``."""

    def predict(train, target_params, target_tokens, target_epochs=None, target_run_tokens=None):
        return method.fit(train, stderr=False).predict(target_params, target_tokens, target_epochs,
                                                       target_run_tokens)

    return predict

"""scaleplan's scaling-law engine: a pure library (numpy, scipy, pandas, matplotlib; never Django).

The public surface, all importable as ``from fits import name`` (the service imports nothing else):

- corpus files (fits.canonical): ``read_canonical``, ``validate_canonical``, ``frame_to_raw``,
  ``read_families``, ``CANONICAL_COLUMNS``, ``FAMILIES_COLUMNS``; errors ``CorpusValidationError``,
  ``CorpusTooLarge``, ``Problem``.
- fit frames (fits.data): ``FIT_COLUMNS``, ``as_fit_frame``, ``load_primary``, ``primary_observations``,
  ``run_key``; the one primary-metric rule ``choose_primary_metric`` / ``primary_metrics``, ``is_loss_metric``.
- fitting a law (fits.api, fits.fitting, fits.policy): ``predict_loss``, ``predict_interval``, ``prepare_train``,
  ``fit_train``, ``make_predictor``, ``fit_law``, ``FitResult``, ``FitInputError``, ``ExponentPrior``,
  ``DEFAULT_PRIOR``, ``DEFAULT_POLICY``; intervals ``prediction_interval`` (fits.interval).
- backtests (fits.backtest): ``backtest_family``, ``split_target``, ``eligible_families``, ``MIN_SIZES``.
- sweeps, error model, plans (fits.sweep, fits.errormodel, fits.plan): ``sweep_family``, ``fit_error_model``,
  ``ErrorModel``, ``ARE_CAP``, ``PlanRequest``, ``PlanInputError``, ``recommend``.
- output: ``fit_figure`` (fits.plots, a matplotlib Figure without pyplot), ``json_safe`` (fits.jsonsafe).
"""
from .api import fit_train, make_predictor, predict_interval, predict_loss, prepare_train
from .backtest import MIN_SIZES, backtest_family, eligible_families, split_target
from .canonical import (
    CANONICAL_COLUMNS,
    FAMILIES_COLUMNS,
    CorpusTooLarge,
    CorpusValidationError,
    Problem,
    frame_to_raw,
    read_canonical,
    read_families,
    validate_canonical,
)
from .data import (
    FIT_COLUMNS,
    as_fit_frame,
    choose_primary_metric,
    is_loss_metric,
    load_primary,
    primary_metrics,
    primary_observations,
    run_key,
)
from .errormodel import ARE_CAP, ErrorModel, fit_error_model
from .fitting import DEFAULT_PRIOR, ExponentPrior, FitInputError, FitResult, fit_law
from .interval import prediction_interval
from .jsonsafe import json_safe
from .plan import PlanInputError, PlanRequest, recommend
from .plots import fit_figure
from .policy import DEFAULT_POLICY
from .sweep import sweep_family

__all__ = [
    "ARE_CAP",
    "CANONICAL_COLUMNS",
    "CorpusTooLarge",
    "CorpusValidationError",
    "DEFAULT_POLICY",
    "DEFAULT_PRIOR",
    "ErrorModel",
    "ExponentPrior",
    "FAMILIES_COLUMNS",
    "FIT_COLUMNS",
    "FitInputError",
    "FitResult",
    "MIN_SIZES",
    "PlanInputError",
    "PlanRequest",
    "Problem",
    "as_fit_frame",
    "backtest_family",
    "choose_primary_metric",
    "eligible_families",
    "fit_error_model",
    "fit_figure",
    "fit_law",
    "fit_train",
    "frame_to_raw",
    "is_loss_metric",
    "json_safe",
    "load_primary",
    "make_predictor",
    "predict_interval",
    "predict_loss",
    "prediction_interval",
    "prepare_train",
    "primary_metrics",
    "primary_observations",
    "read_canonical",
    "read_families",
    "recommend",
    "run_key",
    "split_target",
    "sweep_family",
    "validate_canonical",
]

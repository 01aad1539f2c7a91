"""scaleplan's scaling-law engine: a pure library (numpy, scipy, pandas, matplotlib; never Django).

The public surface, all importable as ``from fits import name`` (the service imports nothing else):

- corpus files (fits.canonical): ``read_canonical``, ``validate_canonical``, ``frame_to_raw``,
  ``read_families``, ``CANONICAL_COLUMNS``, ``FAMILIES_COLUMNS``; the name rule ``name_problem`` and
  ``text_problem``; errors ``CorpusValidationError``,
  ``CorpusTooLarge``, ``Problem``.
- a user's runs for a prediction (fits.runtable): ``read_run_table``, ``validate_run_table``,
  ``RUN_TABLE_COLUMNS`` (the importer's value rules, fewer required columns).
- fit frames (fits.data): ``FIT_COLUMNS``, ``as_fit_frame``, ``load_primary``, ``primary_observations``,
  ``run_key``; the one primary-metric rule ``choose_primary_metric`` / ``primary_metrics``, ``is_loss_metric``.
- the method (fits.method, fits.api): ``fit`` (-> ``Fit``: ``predict``, ``interval``, ``to_dict``, ``choice``),
  ``Method``, ``AutoMethod``, ``DEFAULT_METHOD``, ``CheckpointPolicy``; ``predict_loss``, ``predict_interval``,
  ``prediction_interval``, ``prepare_train``, ``make_predictor``; ``fit_law``, ``FitResult``, ``FitInputError``,
  ``ExponentPrior``, ``DEFAULT_PRIOR``, ``TrainSet``.
- backtests (fits.backtest): ``backtest_family``, ``split_target``, ``eligible_families``, ``MIN_SIZES``.
- sweeps, error model, plans (fits.sweep, fits.errormodel, fits.plan): ``sweep_family``, ``fit_error_model``,
  ``ErrorModel``, ``ARE_CAP``, ``PlanRequest``, ``PlanInputError`` (``field``, ``fields``), ``recommend`` (-> ``Plan``,
  whose ``to_dict()`` the service stores); a plan as files (fits.schedule): ``plan_csv`` (one row per run),
  ``prediction_template_csv`` (the runs' evaluation points, ``model, params, tokens, value`` with ``value`` empty);
  the compute-optimal split (fits.compute_optimal): ``compute_optimal``, ``REFERENCE_LAW``.
- runs from trackers (fits.trackers): ``read_runs``, ``RunsImport``, ``RunsImportError``, ``ImportLimits``,
  ``ImportReport``.
- runs in progress and the next run (fits.progress, fits.advice): ``prediction_history`` (-> ``PredictionHistory``),
  ``runs_as_of``, ``history_figure``; ``advise`` (-> ``Advice``), ``validate_advice_request``,
  ``AdviceInputError``.
- output: ``fit_figure``, ``iso_flop_figure`` (a plan's iso-FLOP curves) (fits.plots, matplotlib Figures without
  pyplot), ``json_safe`` (fits.jsonsafe).
"""
from .advice import Advice, AdviceInputError, advise, validate_advice_request
from .api import fit, make_predictor, predict_interval, predict_loss, prediction_interval, prepare_train
from .backtest import MIN_SIZES, backtest_family, eligible_families, split_target
from .canonical import (
    CANONICAL_COLUMNS,
    FAMILIES_COLUMNS,
    CorpusTooLarge,
    CorpusValidationError,
    Problem,
    frame_to_raw,
    name_problem,
    read_canonical,
    read_families,
    text_problem,
    validate_canonical,
)
from .compute_optimal import REFERENCE_LAW, compute_optimal
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
from .fitting import fit_law
from .jsonsafe import json_safe
from .method import DEFAULT_METHOD, AutoMethod, Fit, Method
from .plan import Plan, PlanInputError, PlanRequest, recommend
from .plots import fit_figure, iso_flop_figure
from .policy import DEFAULT_POLICY, CheckpointPolicy
from .posterior import DEFAULT_PRIOR, ExponentPrior
from .progress import PredictionHistory, history_figure, prediction_history, runs_as_of
from .result import FitResult
from .runtable import RUN_TABLE_COLUMNS, read_run_table, validate_run_table
from .schedule import plan_csv, prediction_template_csv
from .sweep import sweep_family
from .trackers import ImportLimits, ImportReport, RunsImport, RunsImportError, read_runs
from .trainset import FitInputError, TrainSet

__all__ = [
    "ARE_CAP",
    "Advice",
    "AdviceInputError",
    "AutoMethod",
    "CANONICAL_COLUMNS",
    "CheckpointPolicy",
    "CorpusTooLarge",
    "CorpusValidationError",
    "DEFAULT_METHOD",
    "DEFAULT_POLICY",
    "DEFAULT_PRIOR",
    "ErrorModel",
    "ExponentPrior",
    "FAMILIES_COLUMNS",
    "FIT_COLUMNS",
    "Fit",
    "FitInputError",
    "FitResult",
    "ImportLimits",
    "ImportReport",
    "MIN_SIZES",
    "Method",
    "Plan",
    "PlanInputError",
    "PlanRequest",
    "PredictionHistory",
    "Problem",
    "REFERENCE_LAW",
    "RUN_TABLE_COLUMNS",
    "RunsImport",
    "RunsImportError",
    "TrainSet",
    "advise",
    "as_fit_frame",
    "backtest_family",
    "choose_primary_metric",
    "compute_optimal",
    "eligible_families",
    "fit",
    "fit_error_model",
    "fit_figure",
    "fit_law",
    "frame_to_raw",
    "history_figure",
    "is_loss_metric",
    "iso_flop_figure",
    "json_safe",
    "load_primary",
    "make_predictor",
    "name_problem",
    "plan_csv",
    "predict_interval",
    "predict_loss",
    "prediction_history",
    "prediction_interval",
    "prediction_template_csv",
    "prepare_train",
    "primary_metrics",
    "primary_observations",
    "read_canonical",
    "read_families",
    "read_run_table",
    "read_runs",
    "recommend",
    "run_key",
    "runs_as_of",
    "split_target",
    "sweep_family",
    "text_problem",
    "validate_advice_request",
    "validate_canonical",
    "validate_run_table",
]

"""Predictions from the user's own small runs: a target's loss with an interval, as a job.

The web layer (API, form) turns a JSON body or a canonical CSV into a list of
runs (`prediction_runs_from_csv`) and calls `prediction_enqueue`, which checks
the runs the way the fitter will (fits.api.prepare_train) so that bad input is
refused before any job row exists. The worker calls `prediction_run`, the one
function of the `prediction` job kind. The plot is drawn on request from the
stored input and the law in the result (`prediction_plot_png`), never refitted.
"""
from __future__ import annotations

import io
import math
import re

import numpy as np
import pandas as pd

from fits import (
    DEFAULT_POLICY,
    MIN_SIZES,
    CheckpointPolicy,
    CorpusValidationError,
    FitInputError,
    FitResult,
    choose_primary_metric,
    fit,
    fit_figure,
    json_safe,
    prepare_train,
    read_run_table,
    run_key,
    validate_run_table,
)

from ..errormodels.services import error_model_loaded
from ..jobs.models import Job
from ..jobs.services import JobFailure, job_create

# One job row holds the runs as JSON and is read on every poll: cap its size.
MAX_PREDICTION_ROWS = 50_000
DEFAULT_COVERAGE = 0.8
N_BOOT = 100

# Diagnostic thresholds (see prediction_diagnostics); fewer than fits.MIN_SIZES sizes is "few".
MAX_SCALE_UP = 10.0
EARLY_TOKENS = 1e9
OUTLIER_FACTOR = 3.0
# Mean |log residual| below 0.1% is digitisation noise: a median run that fits
# better than that would make every run look like an outlier.
OUTLIER_FLOOR = 1e-3
EXPONENT_RANGE = (0.05, 1.0)
# An interval whose upper bound is more than this many times its lower one says little (wide_interval);
# targets this many times the runs' largest tokens are a long extrapolation in data (large_token_extrapolation).
WIDE_INTERVAL_RATIO = 10.0
MAX_TOKEN_SCALE_UP = 100.0
# Run parameter counts are 64-bit integers in the store (fits.canonical); no target is larger either.
MAX_PARAMS = 2**62

RESULT_VERSION = 1
RUN_FIELDS = ("model", "params", "tokens", "value", "seed", "epochs", "run_tokens")
# A runs file is read by a web process: at most this many lines (four metrics of MAX_PREDICTION_ROWS) and
# bytes once decompressed (the whole reference corpus, 200k rows, is 42 MB), refused while it is read.
MAX_PREDICTION_FILE_LINES = 4 * MAX_PREDICTION_ROWS
MAX_PREDICTION_FILE_BYTES = 64 * 1024 * 1024


class PredictionInputError(ValueError):
    """Input the fitter cannot use. ``field`` names the input field at fault; ``messages``, when
    several, the problems one by one (a list of runs)."""

    def __init__(self, message: str, *, field: str = "runs", messages: list[str] | None = None):
        super().__init__(message)
        self.field = field
        self.messages = messages or [message]


# --- input ---------------------------------------------------------------------


def prediction_file_limits() -> dict:
    """Limits on a runs file from a user, checked while it is read (before it is parsed): lines and bytes."""
    from django.conf import settings

    return {"max_rows": min(settings.SCALEPLAN_MAX_IMPORT_ROWS, MAX_PREDICTION_FILE_LINES),
            "max_bytes": min(settings.SCALEPLAN_MAX_DECOMPRESSED_BYTES, MAX_PREDICTION_FILE_BYTES)}


def prediction_runs_from_csv(*, source, metric: str | None = None) -> tuple[list[dict], dict]:
    """The runs of a CSV(.gz) upload (a file object or bytes): one family, one metric.

    The columns of ../shared/CORPUS_FORMAT.md "Runs for a prediction" (model, params, tokens, value;
    seed, step, epochs, metric, family, run_tokens and the other canonical columns optional), validated by
    the importer's rules (fits.read_run_table). Returns ``(runs, about)`` as :func:`prediction_runs_select`.
    Raises fits.CorpusValidationError (line, column, reason; CorpusTooLarge over the limits, while the file
    is read), PredictionInputError for one that cannot be used for a prediction (several families, an
    unknown metric).
    """
    frame = read_run_table(io.BytesIO(source) if isinstance(source, bytes) else source, **prediction_file_limits())
    if frame.empty:
        raise PredictionInputError("The file has no data rows.", field="file")
    return prediction_runs_select(frame, metric=metric, field="file")


def prediction_runs_from_json(*, runs: list[dict], metric: str | None = None) -> tuple[list[dict], dict]:
    """The runs of a JSON body (one dict per checkpoint, the same columns as a file), validated by the same
    rules and reduced to one metric as :func:`prediction_runs_select`; problems name ``runs[i].field``."""
    if not runs:
        raise PredictionInputError("Give at least one run's losses.")
    if len(runs) > MAX_PREDICTION_ROWS:
        raise PredictionInputError(f"{len(runs)} rows given; at most {MAX_PREDICTION_ROWS} are accepted.")
    try:
        frame = validate_run_table(pd.DataFrame(list(runs)))
    except CorpusValidationError as exc:
        messages = runs_problems_message(exc)
        raise PredictionInputError(messages[0], messages=messages) from None
    runs, about = prediction_runs_select(frame, metric=metric, field="runs")
    return runs, {k: v for k, v in about.items() if v}  # a JSON body says nothing of a family or metric it lacks


def prediction_runs_select(frame: pd.DataFrame, *, metric: str | None, field: str) -> tuple[list[dict], dict]:
    """One family's rows of one metric, as the list of runs a job stores.

    The metric is the one named, else the family's primary one by the canonical rule (a validation loss
    first), else the only one there is (no metric column: every row is the loss). Rows of other metrics
    are not fitted, and not lost silently either: ``about["other_metrics"]`` counts them by metric, and the
    result reports them. ``about`` also says which family and metric were used.
    """
    families = sorted(frame["family"].unique())
    if len(families) > 1:
        raise PredictionInputError(
            f"The {'file' if field == 'file' else 'runs'} hold {len(families)} families ({', '.join(families)}); a "
            "prediction uses one family's runs: give one family at a time.",
            field=field,
        )
    metrics = sorted(frame["metric"].unique())
    if metric:
        if metric not in metrics:
            raise PredictionInputError(
                f"The {'file' if field == 'file' else 'runs list'} has no rows of metric {metric!r}; it has "
                f"{', '.join(metrics)}.", field="metric",
            )
    elif len(metrics) == 1:
        metric = metrics[0]  # one metric (or none named): every row is the loss to fit
    else:
        metric = choose_primary_metric(frame)
        if not metric:
            raise PredictionInputError(f"None of the metrics {', '.join(repr(m) for m in metrics)} is a loss; name "
                                       "the metric to fit.", field="metric")
    chosen = frame["metric"] == metric
    rows = frame[chosen]
    if len(rows) > MAX_PREDICTION_ROWS:
        raise PredictionInputError(
            f"The {'file' if field == 'file' else 'runs list'} has {len(rows)} rows of {metric!r}; at most "
            f"{MAX_PREDICTION_ROWS} are accepted.", field=field
        )
    others = frame.loc[~chosen, "metric"].value_counts().sort_index()
    runs = [
        {
            "model": model,
            "params": int(params),
            "tokens": float(tokens),
            "value": float(value),
            "seed": seed,
            **({"epochs": float(epochs)} if not math.isnan(epochs) else {}),
            **({"run_tokens": float(run_tokens)} if not math.isnan(run_tokens) else {}),
            **({"step": int(step)} if not pd.isna(step) else {}),
        }
        for model, params, tokens, value, seed, epochs, run_tokens, step in zip(
            rows["model"], rows["params"], rows["tokens"], rows["value"], rows["seed"], rows["epochs"],
            rows["run_tokens"], rows["step"],
        )
    ]
    about = {"family": families[0], "metric": metric}
    if len(others):
        about["other_metrics"] = {str(m): int(n) for m, n in others.items()}
    return runs, about


def runs_problems_message(error: CorpusValidationError, *, shown: int = 20) -> list[str]:
    """The problems of runs given as a list (JSON), each as ``runs[i].field: reason``."""
    # The importer's reasons point to other rows by their file line; here a row is its list index.
    lines = [f"runs[{p.line}].{p.column}: " + re.sub(r"\bline (\d+)", r"runs[\1]", p.reason)
             for p in error.problems[:shown]]
    if len(error.problems) > shown:
        lines.append(f"... and {len(error.problems) - shown} more problem(s).")
    return lines


def runs_frame(runs: list[dict]) -> pd.DataFrame:
    """The runs as the training frame fits takes (model, params, tokens, value, seed, epochs, run_tokens)."""
    frame = pd.DataFrame(list(runs), columns=list(RUN_FIELDS))
    frame["seed"] = frame["seed"].astype(object).fillna("").astype(str)
    frame["epochs"] = pd.to_numeric(frame["epochs"], errors="coerce")
    frame["run_tokens"] = pd.to_numeric(frame["run_tokens"], errors="coerce")
    return frame


def _targets(target_params, target_tokens) -> tuple[float, list[float]]:
    tokens = list(target_tokens) if isinstance(target_tokens, (list, tuple)) else [target_tokens]
    if not tokens:
        raise PredictionInputError("Give at least one target token count.", field="target_tokens")
    for name, values in (("target_params", [target_params]), ("target_tokens", tokens)):
        for v in values:
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
                raise PredictionInputError(f"{v!r} is not a positive number.", field=name)
    if target_params > MAX_PARAMS:
        raise PredictionInputError(f"{target_params:g} parameters is more than any model can have (the largest "
                                   f"count stored is 2**62 = {MAX_PARAMS:.3g}).", field="target_params")
    return float(target_params), [float(t) for t in tokens]


def prediction_check(*, runs: list[dict], target_params, target_tokens, coverage: float) -> None:
    """Refuse what the fitter would refuse, with the run index and field at fault."""
    _targets(target_params, target_tokens)
    if not 0 < coverage < 1:
        raise PredictionInputError(f"coverage must be between 0 and 1 (exclusive), not {coverage}.", field="coverage")
    if not runs:
        raise PredictionInputError("Give at least one run's losses.")
    if len(runs) > MAX_PREDICTION_ROWS:
        raise PredictionInputError(f"{len(runs)} rows given; at most {MAX_PREDICTION_ROWS} are accepted.")
    try:
        # The importer's value rules (names, ranges, epochs, one params per run, conflicting duplicates).
        validate_run_table(pd.DataFrame(list(runs)))
    except CorpusValidationError as exc:
        messages = runs_problems_message(exc)
        raise PredictionInputError(messages[0], messages=messages) from None
    try:
        frame = prepare_train(runs_frame(runs))
    except FitInputError as exc:
        # fits numbers rows from 0 like the runs list, so "row i" is runs[i].
        raise PredictionInputError(str(exc).replace("train column", "runs field")) from None
    if DEFAULT_POLICY.select(frame).empty:
        raise PredictionInputError("The checkpoint policy keeps none of these rows.")


def prediction_enqueue(
    *, runs: list[dict], target_params, target_tokens, coverage: float = DEFAULT_COVERAGE, source: dict | None = None,
    created_by=None,
) -> Job:
    """Check the input and queue a prediction job. Raises PredictionInputError and creates nothing on bad input.

    ``source`` (e.g. {"filename", "family", "metric"}) is kept on the job to say where the runs came from.
    """
    prediction_check(runs=runs, target_params=target_params, target_tokens=target_tokens, coverage=coverage)
    job_input = {
        "runs": list(runs),
        "target_params": target_params,
        "target_tokens": target_tokens,
        "coverage": coverage,
        "n_rows": len(runs),
        **(source or {}),
    }
    return job_create(kind=Job.Kind.PREDICTION, input=job_input, created_by=created_by)


# --- the job -------------------------------------------------------------------


def _diag(code: str, level: str, message: str) -> dict:
    return {"code": code, "level": level, "message": message}


def run_residuals(result, selected: pd.DataFrame) -> pd.Series:
    """Mean |log residual| of each run over the rows the fit used, by run label."""
    fitted = result.predict(selected["params"], selected["tokens"], selected["epochs"], selected["run_tokens"])
    resid = np.abs(np.log(selected["value"].to_numpy()) - np.log(fitted))
    keys = run_key(selected).str.replace("\x1f", " seed ", regex=False).str.removesuffix(" seed ")
    return pd.Series(resid, index=keys.to_numpy()).groupby(level=0).mean()


def prediction_diagnostics(frame: pd.DataFrame, selected: pd.DataFrame, result, target_params: float) -> list[dict]:
    """What a user should know before trusting the number (each with a code for scripts)."""
    out = []
    sizes = np.unique(frame["params"])
    if sizes.size == 1:
        out.append(_diag(
            "single_size", "warning",
            f"One size only ({sizes[0]:.3g} parameters): how loss falls with size cannot be learned from it (the "
            f"size term is not identified), so the law used is L = {result.to_dict().get('formula', '?')}, in tokens "
            "alone, and the target's size does not enter the prediction. Train two or more sizes.",
        ))
    elif sizes.size < MIN_SIZES:
        out.append(_diag(
            "few_sizes", "warning",
            f"Only {sizes.size} model size(s); a law fitted to fewer than {MIN_SIZES} sizes is poorly constrained "
            "(five sizes spread across scales are a safe start).",
        ))
    scale_up = target_params / sizes.max()
    if scale_up > MAX_SCALE_UP:
        out.append(_diag(
            "large_extrapolation", "warning",
            f"The target is {scale_up:.3g}x the largest run ({sizes.max():.3g} parameters); beyond "
            f"{MAX_SCALE_UP:g}x the law's error grows quickly (the interval accounts for it).",
        ))
    early = frame["tokens"] < EARLY_TOKENS
    if early.any():
        kept_early = int((selected["tokens"] < EARLY_TOKENS).sum())
        dropped = int(early.sum()) - kept_early
        message = (f"{int(early.sum())} checkpoint(s) before {EARLY_TOKENS:.0e} tokens are noisy (warm-up, high "
                   f"learning rate); the checkpoint policy dropped {dropped}")
        if kept_early:
            message += f" and kept {kept_early} from runs too short to have later ones"
        out.append(_diag("early_checkpoints", "note", message + "."))
    per_run = run_residuals(result, selected)
    if per_run.size >= 3:
        threshold = OUTLIER_FACTOR * max(float(per_run.median()), OUTLIER_FLOOR)
        for run, err in per_run[per_run > threshold].sort_values(ascending=False).items():
            out.append(_diag(
                "outlier_run", "warning",
                f"Run {run!r} is off the fitted law by {err:.2%} on average (log), more than {OUTLIER_FACTOR:g}x the "
                f"median run ({float(per_run.median()):.2%}): a bad seed or a different recipe? Check it or leave it out.",
            ))
    low, high = EXPONENT_RANGE
    for name in ("alpha", "beta"):
        value = result.params.get(name)
        if value is not None and not low <= value <= high:
            out.append(_diag(
                "unusual_exponent", "warning",
                f"The fitted {name} = {value:.3g} is outside the corpus's range ({low:g}-{high:g}); the runs may not "
                "follow one law, or cover too narrow a range of sizes or tokens.",
            ))
    if not result.success:
        out.append(_diag("fit_not_converged", "warning", f"The fit did not converge: {result.message}"))
    return out


def extreme_diagnostics(frame: pd.DataFrame, points: list[dict]) -> list[dict]:
    """Words for the far ends: targets far beyond the runs' tokens, and intervals too wide to decide on."""
    out = []
    largest = float(frame["tokens"].max())
    furthest = max(p["tokens"] for p in points)
    if furthest / largest > MAX_TOKEN_SCALE_UP:
        out.append(_diag(
            "large_token_extrapolation", "warning",
            f"The target's {furthest:.3g} tokens are {furthest / largest:.3g}x the most any run saw ({largest:.3g}); "
            f"beyond {MAX_TOKEN_SCALE_UP:g}x the law is extrapolated far outside its data.",
        ))
    widest = max(points, key=lambda p: p["upper"] / p["lower"] if p["lower"] > 0 else math.inf)
    ratio = widest["upper"] / widest["lower"] if widest["lower"] > 0 else math.inf
    if not ratio <= WIDE_INTERVAL_RATIO:
        out.append(_diag(
            "wide_interval", "warning",
            f"The interval ({widest['lower']:.3g} to {widest['upper']:.3g} at {widest['tokens']:.3g} tokens) spans "
            f"{ratio:.3g}x, more than {WIDE_INTERVAL_RATIO:g}x: at this distance from the runs the prediction "
            "says little. Train runs closer to the target, or predict a nearer one.",
        ))
    return out


def prediction_run(*, job: Job, progress) -> dict:
    """The `prediction` job: fit the law, predict the target with an interval, diagnose."""
    data = job.input
    progress(0.05, "validating")
    try:
        target_params, tokens = _targets(data["target_params"], data["target_tokens"])
        frame = prepare_train(runs_frame(data["runs"]))
        progress(0.15, "fitting")
        fitted = fit(frame)
        result, selected = fitted.result, fitted.used_frame()
        progress(0.3, "interval")
        # The interval reuses the fit. With an error model it is what that model expects of this design
        # given this fit's evidence; without one, a run-level bootstrap plus the corpus's table of errors.
        loaded = error_model_loaded()
        coverage = float(data.get("coverage", DEFAULT_COVERAGE))
        interval = fitted.interval(target_params, tokens, coverage=coverage, n_boot=N_BOOT,
                                   error_model=loaded[1] if loaded else None)
        expected = _expected_are(fitted, loaded, target_params, tokens)
    except (FitInputError, PredictionInputError) as exc:
        raise JobFailure(f"The runs cannot be fitted: {exc}") from exc
    progress(0.95, "diagnosing")
    scalar = not isinstance(data["target_tokens"], (list, tuple))
    points = [
        {"tokens": t, "prediction": float(p), "lower": float(lo), "upper": float(hi)}
        for t, p, lo, hi in zip(tokens, interval.prediction, interval.lower, interval.upper)
    ]

    def shaped(key):
        values = [p[key] for p in points]
        return values[0] if scalar else values

    result_dict = {
        "version": RESULT_VERSION,
        "target_params": target_params,
        "target_tokens": tokens[0] if scalar else tokens,
        "prediction": shaped("prediction"),
        "lower": shaped("lower"),
        "upper": shaped("upper"),
        "coverage": interval.coverage,
        "points": points,
        "law": result.to_dict(),
        "method": fitted.method.get_params(),
        "choice": json_safe(fitted.choice),
        "interval": {"n_boot": interval.n_boot, "boot_sd_log": interval.boot_sd_log.tolist(),
                     "method_sd_log": interval.method_sd_log,
                     "from": (f"error model v{loaded[0].version}: what it expects of this design with this fit's "
                              "evidence") if loaded else
                             "run-level bootstrap and the corpus's table of errors (no error model built yet)"},
        "expected_are": expected,
        "data": {"n_rows": len(frame), "n_rows_fitted": len(selected), "n_runs": int(frame.groupby(["model", "seed"]).ngroups),
                 "sizes": sorted(float(n) for n in frame["params"].unique()), "metric": data.get("metric", ""),
                 "other_metrics": data.get("other_metrics", {})},
        "diagnostics": prediction_diagnostics(frame, selected, result, target_params)
        + extreme_diagnostics(frame, points) + _outside(expected) + _other_metrics(data),
    }
    progress(1.0, "done")
    return result_dict


def _other_metrics(data: dict) -> list[dict]:
    others = data.get("other_metrics") or {}
    if not others:
        return []
    counts = ", ".join(f"{metric or '(none)'}: {n:,}" for metric, n in others.items())
    return [_diag("other_metrics", "note",
                  f"{sum(others.values()):,} row(s) of other metrics were not fitted ({counts}); the fit used "
                  f"{data.get('metric') or 'the rows without a metric'!s}. Name another metric to fit that one.")]


def _outside(expected: dict | None) -> list[dict]:
    if not expected or not expected["outside"]:
        return []
    return [_diag("outside_corpus", "warning",
                  "This design lies outside what the error model's corpus covered ("
                  + ", ".join(name.replace("log_", "").replace("_", " ") for name in expected["outside"])
                  + "): its expected error and interval are widened for it.")]


def _expected_are(fitted, loaded, target_params: float, tokens: list[float]) -> dict | None:
    """What the error model expects of this fit's ARE on the target's last token count (its fit level)."""
    if loaded is None:
        return None
    artifact, model = loaded
    design = pd.DataFrame([fitted.design(target_params, max(tokens))])
    q = model.predict(design, level="fit").iloc[0]
    return json_safe({"p10": q["p10"], "p50": q["p50"], "p90": q["p90"], "outside": list(q["outside"]),
                      "error_model_version": artifact.version})


# --- the plot --------------------------------------------------------------------


def law_from_dict(law: dict):
    """Rebuild the fitted law stored on a job's result (FitResult.to_dict()), to evaluate it again."""
    return FitResult.from_dict(law)


def _policy_of(result: dict) -> CheckpointPolicy:
    """The checkpoint policy the stored fit used (results made before the method was recorded: the default)."""
    policy = (result.get("method") or {}).get("policy")
    return CheckpointPolicy(**policy) if policy else DEFAULT_POLICY


def prediction_plot_png(*, job: Job) -> bytes:
    """PNG of a succeeded prediction: the runs, the fitted curves, the target's prediction and interval."""
    result = job.result
    frame = prepare_train(runs_frame(job.input["runs"]))
    points = sorted(result["points"], key=lambda p: p["tokens"])
    title = job.input.get("family") or f"prediction {job.pk}"
    figure = fit_figure(
        frame, law_from_dict(result["law"]), used=_policy_of(result).select(frame),
        target_params=result["target_params"],
        target_tokens=[p["tokens"] for p in points],
        target_prediction=[p["prediction"] for p in points],
        target_lower=[p["lower"] for p in points],
        target_upper=[p["upper"] for p in points],
        coverage=result["coverage"], title=f"{title}: predicted loss of the target",
    )
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=100)
    return out.getvalue()

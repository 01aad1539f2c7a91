"""Runs uploaded as a tracker logs them: TensorBoard event files (a .zip or .tar(.gz) of a log directory, or one
event file), W&B exports, MLflow metric histories or file stores, read into a prediction's runs.

The upload is read in the request, like a runs CSV (planner.predictions), so that bad input is refused with the
file and field at fault before any job exists: ``fits.read_runs`` with the service's upload limits
(:func:`tracker_limits`: bytes an archive may extract to, members, values read, all counted while reading).
The upload itself was counted while it streamed in (planner.corpus.uploads). What comes back is the canonical
runs table - one row per checkpoint: model = run name, params, tokens, value, step, and run_tokens where a
run's planned length is known - and the import report: every value read that is not a row, with its reason.

A prediction job row holds at most MAX_PREDICTION_ROWS checkpoints. Logs often hold more (a loss logged every
10 steps); the runs are then thinned to those nearest a grid evenly spaced in log tokens (:func:`thin_runs`),
and the report says so. fits.CheckpointPolicy thins the same way for the fit, which uses at most 60
checkpoints per run, so the prediction loses nothing it would have used.
"""
from __future__ import annotations

import math
import re
import tempfile
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd

from fits import ImportLimits, RunsImportError, read_runs

from ..predictions.services import MAX_PREDICTION_ROWS, prediction_file_limits

SOURCES = ("auto", "tensorboard", "wandb", "mlflow")
# Members an uploaded archive may hold (a log directory: a few files per run).
MAX_TRACKER_FILES = 10_000
# The report kept on the job: grouped skipped values, runs and files are capped (their totals are kept).
SKIPPED_KEPT = 300
RUNS_KEPT = 1000
IGNORED_KEPT = 100
REPORT_LINES = 40
# Fields of the import (besides the upload and the params), as the form and the API name them.
# An uploaded file keeps its name in the scratch directory (suffixes tell formats apart), at most this long.
MAX_NAME_BYTES = 200
OPTION_FIELDS = ("source", "metric", "tokens_per_step", "tokens_column", "params_key", "only_runs", "experiment")
# fits' error fields that are a form field of the same name; the others concern the logs or the params.
_OPTION_ERRORS = {"metric", "tokens_per_step", "tokens_column", "source", "params_key", "experiment"}


class TrackerInputError(ValueError):
    """Logs that cannot be imported; ``field`` is the form/API field at fault (logs, params, metric, ...)."""

    def __init__(self, message: str, *, field: str = "logs"):
        super().__init__(message)
        self.field = field
        self.messages = [message]


def tracker_limits() -> ImportLimits:
    """The service's upload limits for logs: what a runs CSV may decompress to (bytes) and hold (values read)."""
    limits = prediction_file_limits()
    return ImportLimits(max_bytes=int(limits["max_bytes"]), max_files=MAX_TRACKER_FILES,
                        max_rows=int(limits["max_rows"]))


def upload_name(name: str | None, default: str) -> str:
    """The base name of an uploaded file, safe to create in a scratch directory; its suffixes are kept (they
    say .tar.gz or .json, and a W&B history names its run)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch) not in ("Cc", "Cf")).strip().lstrip(".")
    if len(base.encode()) > MAX_NAME_BYTES:  # file systems take 255 bytes: keep the start and the suffixes
        head, tail = base[:60], base[-60:]
        while len((head + "~" + tail).encode()) > MAX_NAME_BYTES:
            head, tail = head[:-1], tail[1:]
        base = head + "~" + tail
    return base or default


def _save(upload, directory: Path, default: str) -> Path:
    path = directory / upload_name(getattr(upload, "name", None), default)
    with open(path, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return path


def clean_options(data: dict) -> dict:
    """The import's options as stored on the job: blank text is None, runs a list of names."""
    out = {}
    for key in OPTION_FIELDS:
        value = data.get(key)
        if isinstance(value, str):
            value = value.strip() or None
        out[key] = value
    out["source"] = out["source"] or "auto"
    if isinstance(out["only_runs"], str):
        out["only_runs"] = [r.strip() for r in out["only_runs"].split(",") if r.strip()] or None
    return out


def _params_argument(directory: Path, *, upload, text: str, mapping: dict | None):
    """What fits.read_runs takes as ``params``: a saved file (upload or text) or a mapping, or None."""
    if upload is not None:
        return str(_save(upload, directory, "params.csv"))
    text = (text or "").strip()
    if text:
        path = directory / ("params-text.json" if text.startswith("{") else "params-text.csv")
        path.write_text(text + "\n", encoding="utf-8")
        return str(path)
    return mapping or None


def _message(exc: RunsImportError, scratch: str) -> str:
    """The error as the user should read it: paths relative to what they uploaded, no server paths."""
    text = str(exc).replace(scratch + "/", "")
    return re.sub(r"/\S*?scaleplan-(?:runs|upload)-[^/\s]+/", "", text)


def _field(exc: RunsImportError, params_path: str | None, params_field: str) -> str:
    if exc.field in _OPTION_ERRORS:
        return exc.field
    about_params_file = (params_path is not None and exc.path is not None
                         and Path(exc.path).name == Path(params_path).name)
    if about_params_file or exc.field == "params":
        return params_field
    return "logs"


def tracker_runs(*, logs, options: dict, params_upload=None, params_text: str = "",
                 params_mapping: dict | None = None) -> tuple[list[dict], dict]:
    """Read uploaded logs into a prediction's runs; returns ``(runs, tracker)``.

    ``options``: source, metric, tokens_per_step or tokens_column, params_key, only_runs (fits.read_runs'
    ``runs``: the runs to import), experiment (see fits.read_runs). Each run's parameter count from
    ``params_upload`` (a CSV ``run,params`` or JSON file), ``params_text`` (the same as text) or ``params_mapping`` ({run: params or {params, tokens_per_step,
    run_tokens}}), else from the tracker's own config. ``tracker`` is what the job keeps: the options, each
    run's resolved parameters (the defaults of the next update), the report and the thinning.
    Raises TrackerInputError naming the field at fault.
    """
    opts = clean_options(options)
    if opts["source"] not in SOURCES:
        raise TrackerInputError(f"must be one of {', '.join(SOURCES)}.", field="source")
    if not opts["metric"]:
        raise TrackerInputError("Name the loss metric: its TensorBoard tag, W&B column or MLflow key.",
                                field="metric")
    params_field = "params_file" if params_upload is not None else "params"
    with tempfile.TemporaryDirectory(prefix="scaleplan-upload-") as scratch:
        directory = Path(scratch)
        logs_path = _save(logs, directory, "logs")
        params = _params_argument(directory, upload=params_upload, text=params_text, mapping=params_mapping)
        params_path = params if isinstance(params, str) else None
        try:
            imported = read_runs(
                str(logs_path), metric=opts["metric"], source=opts["source"], tokens_per_step=opts["tokens_per_step"],
                tokens_column=opts["tokens_column"], params=params,
                params_key=None if isinstance(params, dict) else opts["params_key"], runs=opts["only_runs"],
                experiment=opts["experiment"], limits=tracker_limits(), name=logs_path.name,
            )
        except RunsImportError as exc:
            raise TrackerInputError(_message(exc, scratch), field=_field(exc, params_path, params_field)) from None
    frame, thinned = thin_runs(imported.frame, MAX_PREDICTION_ROWS)
    report = report_summary(imported.report)
    tracker = {"filename": logs_path.name, "options": opts, "params": resolved_params(report["runs"]),
               "report": report, "thinned": thinned}
    return runs_of(frame), tracker


def runs_of(frame: pd.DataFrame) -> list[dict]:
    """The runs table's rows as a prediction's runs (model, params, tokens, value, seed, step, run_tokens)."""
    planned = frame["run_tokens"] if "run_tokens" in frame else pd.Series(np.nan, index=frame.index)
    runs = []
    for model, params, tokens, value, step, run_tokens in zip(frame["model"], frame["params"], frame["tokens"],
                                                              frame["value"], frame["step"], planned):
        row = {"model": str(model), "params": int(params), "tokens": float(tokens), "value": float(value), "seed": "",
               "step": int(step)}
        if run_tokens is not None and not (isinstance(run_tokens, float) and math.isnan(run_tokens)):
            row["run_tokens"] = float(run_tokens)
        runs.append(row)
    return runs


def _log_even(log_tokens: np.ndarray, k: int) -> np.ndarray:
    """Positions of at most k (+1) of a run's sorted checkpoints spaced evenly in log tokens, first and last kept
    (fits.CheckpointPolicy's thinning)."""
    if log_tokens.size <= k:
        return np.arange(log_tokens.size)
    grid = np.linspace(log_tokens[0], log_tokens[-1], k)
    return np.union1d(np.searchsorted(log_tokens, grid).clip(0, log_tokens.size - 1), [log_tokens.size - 1])


def thin_runs(frame: pd.DataFrame, max_rows: int) -> tuple[pd.DataFrame, dict | None]:
    """At most ``max_rows`` checkpoints: if over, each run keeps those nearest a grid of ``per_run`` points
    evenly spaced in its log tokens (first and last kept), ``per_run`` the largest that fits. Returns the frame
    and what was thinned (None if nothing)."""
    if len(frame) <= max_rows:
        return frame, None
    parts = [part.sort_values("tokens") for _, part in frame.groupby("model", sort=False)]
    logs = [np.log(part["tokens"].to_numpy(dtype=float)) for part in parts]
    if 2 * len(parts) > max_rows:
        raise TrackerInputError(f"{len(parts)} runs are too many for one prediction (at most {max_rows // 2}); "
                                "select the runs to import.", field="only_runs")

    def kept(k: int) -> int:
        return sum(_log_even(x, k).size for x in logs)

    # Where checkpoints are sparser than the grid, several grid points take one: the largest grid that fits.
    low, high = 1, max(x.size for x in logs)  # kept(low) <= max_rows < kept(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if kept(middle) <= max_rows else (low, middle)
    out = pd.concat([part.iloc[_log_even(x, low)] for part, x in zip(parts, logs)], ignore_index=True)
    thinned = [str(part["model"].iloc[0]) for part, x in zip(parts, logs) if x.size > low]
    return out, {"per_run": int(low), "rows_read": int(len(frame)), "rows_kept": int(len(out)),
                 "runs": thinned[:50], "n_runs": len(thinned),
                 "reason": f"a prediction holds at most {max_rows} checkpoints: the runs with more than {low} were "
                           f"thinned to those nearest {low} points spaced evenly in log tokens, the first and last "
                           "kept (the fit uses at most 60 per run)"}


def _group_skipped(rows: list[dict]) -> list[dict]:
    """Skipped values per (run, metric, reason): count and step range (each value is still counted)."""
    groups: dict[tuple, dict] = {}
    for row in rows:
        key = (row["run"], row["metric"], row["reason"])
        group = groups.get(key)
        if group is None:
            groups[key] = {"run": row["run"], "metric": row["metric"], "reason": row["reason"], "count": row["count"],
                           "first_step": row["first_step"], "last_step": row["last_step"]}
            continue
        group["count"] += row["count"]
        for name, pick in (("first_step", min), ("last_step", max)):
            values = [v for v in (group[name], row[name]) if v is not None]
            group[name] = pick(values) if values else None
    return sorted(groups.values(), key=lambda g: -g["count"])


def report_summary(report) -> dict:
    """fits' ImportReport as the job keeps it: counts, the report's lines, runs, skipped values grouped per
    run, series and reason (capped; the totals say how many there were), files not read."""
    data = report.to_dict()
    skipped = _group_skipped(data["skipped"])
    keys = ("version", "source", "input", "metric", "tokens", "values_read", "rows_kept", "tokens_values_used",
            "values_skipped", "unknown_params", "notes")
    return {**{k: data[k] for k in keys}, "lines": report.lines(max_lines=REPORT_LINES),
            "runs": data["runs"][:RUNS_KEPT], "n_runs": len(data["runs"]),
            "skipped": skipped[:SKIPPED_KEPT], "n_skipped_groups": len(skipped),
            "ignored_files": data["ignored_files"][:IGNORED_KEPT], "n_ignored_files": len(data["ignored_files"])}


def resolved_params(runs: list[dict]) -> dict:
    """Each imported run's parameters as fits.read_runs takes a params mapping: the next update's defaults."""
    out = {}
    for run in runs:
        if run["status"] != "imported":
            continue
        entry = {"params": run["params"]}
        for key in ("tokens_per_step", "run_tokens"):
            if run.get(key):
                entry[key] = run[key]
        out[run["run"]] = entry
    return out


def params_csv(mapping: dict) -> str:
    """A params mapping as the CSV a user edits: run,params,tokens_per_step,run_tokens."""
    lines = ["run,params,tokens_per_step,run_tokens"]
    for run, entry in mapping.items():
        cells = [run, entry["params"], entry.get("tokens_per_step", ""), entry.get("run_tokens", "")]
        lines.append(",".join(_csv_cell(c) for c in cells))
    return "\n".join(lines) + "\n"


def _csv_cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.17g}"
    text = str(value)
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text

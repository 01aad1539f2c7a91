"""Weights & Biases run-history exports, read without the ``wandb`` package.

Two shapes, in CSV (``.csv``, ``.csv.gz``), JSON Lines (``.jsonl``) or JSON (``.json``, a list of rows):

* a chart panel's "Export CSV" (wide): the x-axis first (``Step`` by default), then for every run
  ``<run> - <metric>``, with ``<run> - <metric>__MIN`` and ``__MAX`` band columns (not data) and, when
  the x-axis is not the step, ``<run> - _step``; empty cells are steps a run did not log;
* a run's history, as ``run.history()`` / ``run.scan_history()`` give it (long): one row per logged
  step with ``_step`` and one column per metric (``train/loss``, ``_runtime``, ``_timestamp``, ...). The
  run is named by a ``run`` / ``name`` / ``run_name`` / ``run_id`` column if there is one, else by the
  file name, so one file per run works as exported.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .core import OTHER_SERIES, RowBudget, RunInfo, RunsImportError, Scalars, other_frame, scalars_frame

STEP_COLUMNS = ("_step", "Step", "step", "global_step", "trainer/global_step", "train/global_step")
RUN_COLUMNS = ("run", "run_name", "name", "Name", "Run", "run_id", "model")
SEPARATOR = " - "
BANDS = ("__MIN", "__MAX")
SUFFIXES = (".csv", ".csv.gz", ".jsonl", ".json")


def load_table(path: Path, label: str, budget: RowBudget) -> pd.DataFrame:
    """The export as a table of text/number cells; empty cells are NaN (not logged)."""
    name = path.name.lower()
    try:
        if name.endswith(".jsonl"):
            rows = []
            with open(path, encoding="utf-8") as fh:
                for line_no, line in enumerate(fh, 1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as exc:
                            raise RunsImportError(f"line {line_no} is not JSON: {exc.msg}", path=label,
                                                  field="file") from None
                        budget.take(1, label)
            if not all(isinstance(r, dict) for r in rows):
                raise RunsImportError("each line must be one JSON object (a history row)", path=label, field="file")
            return pd.DataFrame.from_records(rows)
        if name.endswith(".json"):
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            if isinstance(data, dict) and isinstance(data.get("history"), list):
                data = data["history"]
            if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                raise RunsImportError("expected a JSON list of history rows (objects)", path=label, field="file")
            budget.take(len(data), label)
            return pd.DataFrame.from_records(data)
        table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
    except RunsImportError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError,
            OSError, ValueError) as exc:
        raise RunsImportError(f"cannot read: {exc}", path=label, field="file") from None
    budget.take(len(table), label)
    return table


def numbers(column: pd.Series) -> np.ndarray:
    """Cells as float64: empty -> NaN; text that is not a number -> NaN as well (told apart by ``logged``)."""
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)


def logged(column: pd.Series) -> np.ndarray:
    """True where the cell holds something (a number, or text that should have been one)."""
    return column.notna().to_numpy()


def read_wandb(files: list[Path], *, tags: set[str], budget: RowBudget, label_root: Path | None,
               step_column: str | None = None) -> Scalars:
    runs: dict[str, RunInfo] = {}
    parts, others, notes = [], [], []
    offset = 0
    for path in files:
        label = path.relative_to(label_root).as_posix() if label_root else str(path)
        table = load_table(path, label, budget)
        table = table.loc[:, [c for c in table.columns if not str(c).startswith("Unnamed:")]]
        table.columns = [str(c) for c in table.columns]
        if any(SEPARATOR in c and any(c.endswith(SEPARATOR + t) for t in tags) for c in table.columns):
            frame, other = _wide(table, tags, label, runs, step_column, notes)
        else:
            frame, other = _long(table, tags, label, runs, step_column, path)
        frame["order"] = frame["order"] + offset
        offset += len(table)
        parts.append(frame)
        others.extend(other)
    frame = pd.concat(parts, ignore_index=True) if parts else scalars_frame([], [], [], [], [], [])
    return Scalars(runs=runs, frame=frame, other=other_frame(others), notes=notes)


def _series(run, metric, steps, values, present, label, order):
    keep = present
    return scalars_frame(np.full(keep.sum(), run, dtype=object), np.full(keep.sum(), metric, dtype=object),
                         steps[keep], values[keep], order[keep], np.full(keep.sum(), label, dtype=object))


def _wide(table, tags, label, runs, step_column, notes):
    columns = list(table.columns)
    x_name = step_column or columns[0]
    if x_name not in table.columns:
        raise RunsImportError(f"no column {x_name!r} (the step column)", path=label, field=x_name)
    order = np.arange(len(table), dtype=np.float64)
    frames, other = [], []
    series = {}  # (run, metric) -> column name
    for col in columns:
        if col == x_name or SEPARATOR not in col:
            continue
        run, metric = col.rsplit(SEPARATOR, 1)
        for tag in tags:  # a run name may hold " - " itself: prefer the split that names a requested series
            if col.endswith(SEPARATOR + tag):
                run, metric = col[: -len(SEPARATOR + tag)], tag
        series[(run, metric)] = col
    run_names = sorted({run for run, _ in series})
    x_values = numbers(table[x_name])
    for run in run_names:
        if run not in runs:
            runs[run] = RunInfo(name=run, source=label)
            if run.startswith("Group: "):
                notes.append(f"{label}: {run!r} is W&B's aggregate of a group of runs, imported as one run")
        step_col = series.get((run, "_step"))
        if step_col is not None:
            steps = numbers(table[step_col])
        elif x_name in STEP_COLUMNS or x_name == step_column:
            steps = x_values
        else:
            raise RunsImportError(f"the panel's x-axis is {x_name!r}, not the step, and there is no "
                                  f"'{run} - _step' column; export the panel with Step as its x-axis (or name the "
                                  "step column)", path=label, field=x_name)
        for (r, metric), col in series.items():
            if r != run or metric == "_step":
                continue
            present = logged(table[col])
            if metric in tags:
                frames.append(_series(run, metric, steps, numbers(table[col]), present, label, order))
            elif metric.endswith(BANDS) and metric[:-5] in tags:
                other.append((run, metric, int(present.sum()), "the panel's min/max band, not a logged value", label))
            else:
                other.append((run, metric, int(present.sum()), OTHER_SERIES, label))
        # A tokens series may be the panel's x-axis itself.
        if x_name in tags and x_name not in ("_step",):
            any_value = np.zeros(len(table), dtype=bool)
            for (r, metric), col in series.items():
                if r == run and metric in tags:
                    any_value |= logged(table[col])
            frames.append(_series(run, x_name, steps, x_values, any_value, label, order))
    if not run_names:
        raise RunsImportError("no '<run> - <metric>' columns", path=label, field="header")
    frame = pd.concat(frames, ignore_index=True) if frames else scalars_frame([], [], [], [], [], [])
    return frame, other


def _long(table, tags, label, runs, step_column, path):
    columns = list(table.columns)
    if step_column is not None:
        if step_column not in table.columns:
            raise RunsImportError(f"no column {step_column!r} (the step column); columns: "
                                  f"{', '.join(columns[:20])}", path=label, field=step_column)
        step_name = step_column
    else:
        step_name = next((c for c in STEP_COLUMNS if c in table.columns), None)
        if step_name is None:
            raise RunsImportError("no step column (one of " + ", ".join(STEP_COLUMNS) + "); name it with "
                                  "step_column / --step-column", path=label, field="_step")
    run_name = next((c for c in RUN_COLUMNS if c in table.columns), None)
    if run_name is None:
        stem = path.name
        for suffix in sorted((".csv.gz", ".csv", ".jsonl", ".json"), key=len, reverse=True):
            if stem.lower().endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        run_values = np.full(len(table), stem, dtype=object)
    else:
        run_values = table[run_name].astype(str).to_numpy(dtype=object)
        if table[run_name].isna().any():
            i = int(np.flatnonzero(table[run_name].isna().to_numpy())[0])
            raise RunsImportError(f"row {i + 1} has no run name", path=label, field=run_name)
    steps = numbers(table[step_name])
    order = np.arange(len(table), dtype=np.float64)
    frames, other = [], []
    skip = {step_name, run_name}
    for run in pd.unique(run_values):
        runs.setdefault(run, RunInfo(name=run, source=label))
        mine = run_values == run
        for col in columns:
            if col in skip:
                continue
            present = logged(table[col]) & mine
            if col in tags:
                frames.append(_series(run, col, steps, numbers(table[col]), present, label, order))
            elif present.any():
                other.append((run, col, int(present.sum()), OTHER_SERIES, label))
    frame = pd.concat(frames, ignore_index=True) if frames else scalars_frame([], [], [], [], [], [])
    return frame, other

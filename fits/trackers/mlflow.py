"""MLflow: a metric-history export, an ``mlruns`` file store, or (with the ``mlflow`` package) a tracking URI.

* Metric history (``.csv``, ``.csv.gz``, ``.jsonl``, ``.json``): the rows ``MlflowClient.get_metric_history``
  gives, one per logged value: ``key, value, timestamp, step`` (``metric`` for ``key`` is accepted too), and
  for several runs in one file a run column (``run_name``, ``run``, ``run_id``, ...); without one the
  file name names the run.
* File store: ``mlruns/<experiment id>/<run id>/`` with ``meta.yaml`` (``run_name``, ``lifecycle_stage``),
  ``metrics/<key>`` (lines ``timestamp value step``; a ``/`` in a key is a sub-directory), ``params/<key>``
  and ``tags/mlflow.runName``. The input may be the store, one experiment's directory or one run's.
  Deleted runs (``lifecycle_stage: deleted``, and the store's ``.trash``) are reported, not imported.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from .core import OTHER_SERIES, RowBudget, RunInfo, RunsImportError, Scalars, other_frame, scalars_frame
from .wandb import load_table, logged, numbers

KEY_COLUMNS = ("key", "metric", "Metric", "metric_name")
RUN_COLUMNS = ("run_name", "Run Name", "run", "Run", "name", "run_id", "Run ID", "run_uuid")
HISTORY_SUFFIXES = (".csv", ".csv.gz", ".jsonl", ".json")


def looks_like_history(columns) -> bool:
    columns = set(columns)
    return bool(columns & set(KEY_COLUMNS)) and "value" in columns


# ---------------------------------------------------------------------------
# metric-history exports


def read_history(files: list[Path], *, tags: set[str], budget: RowBudget, label_root: Path | None) -> Scalars:
    runs: dict[str, RunInfo] = {}
    parts, others = [], []
    offset = 0
    for path in files:
        label = path.relative_to(label_root).as_posix() if label_root else str(path)
        table = load_table(path, label, budget)
        table.columns = [str(c) for c in table.columns]
        key_col = next((c for c in KEY_COLUMNS if c in table.columns), None)
        if key_col is None or "value" not in table.columns:
            raise RunsImportError("an MLflow metric history needs the columns key (or metric) and value; found "
                                  + ", ".join(map(str, table.columns[:20])), path=label, field="header")
        if "step" not in table.columns:
            raise RunsImportError("no 'step' column: the tokens seen are computed from each value's step",
                                  path=label, field="step")
        run_col = next((c for c in RUN_COLUMNS if c in table.columns), None)
        if run_col is None:
            stem = path.name
            for suffix in sorted(HISTORY_SUFFIXES, key=len, reverse=True):
                if stem.lower().endswith(suffix):
                    stem = stem[: -len(suffix)]
                    break
            run_values = np.full(len(table), stem, dtype=object)
        else:
            if table[run_col].isna().any():
                i = int(np.flatnonzero(table[run_col].isna().to_numpy())[0])
                raise RunsImportError(f"row {i + 1} has no run", path=label, field=run_col)
            run_values = table[run_col].astype(str).to_numpy(dtype=object)
        keys = table[key_col].astype(str).to_numpy(dtype=object)
        steps = numbers(table["step"])
        values = numbers(table["value"])
        present = logged(table["value"])
        stamps = numbers(table["timestamp"]) if "timestamp" in table.columns else np.zeros(len(table))
        # Later writes win: by timestamp, then by row.
        order = np.lexsort((np.arange(len(table)), np.nan_to_num(stamps))).argsort().astype(np.float64) + offset
        offset += len(table)
        wanted = np.isin(keys, list(tags)) & present
        parts.append(scalars_frame(run_values[wanted], keys[wanted], steps[wanted], values[wanted], order[wanted],
                                   np.full(wanted.sum(), label, dtype=object)))
        for run in pd.unique(run_values):
            runs.setdefault(run, RunInfo(name=run, source=label))
        rest = ~np.isin(keys, list(tags)) & present
        for (run, key), n in Counter(zip(run_values[rest], keys[rest])).items():
            others.append((run, key, n, OTHER_SERIES, label))
    frame = pd.concat(parts, ignore_index=True) if parts else scalars_frame([], [], [], [], [], [])
    return Scalars(runs=runs, frame=frame, other=other_frame(others))


# ---------------------------------------------------------------------------
# mlruns file store


def _yaml(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RunsImportError(f"cannot read: {exc}", path=path, field="meta.yaml") from None
    return data if isinstance(data, dict) else {}


def is_run_dir(path: Path) -> bool:
    return (path / "meta.yaml").is_file() and any((path / d).is_dir() for d in ("metrics", "params", "tags"))


def find_run_dirs(root: Path) -> list[Path]:
    """Run directories at the root, one level down (an experiment) or two (a store); ``.trash`` left out."""
    if is_run_dir(root):
        return [root]
    found = []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in (".trash", "models")):
        if is_run_dir(child):
            found.append(child)
            continue
        found.extend(sorted(g for g in child.iterdir() if g.is_dir() and is_run_dir(g)))
    return found


def _files_below(folder: Path) -> dict[str, Path]:
    """key (path below ``folder``, ``/``-separated) -> file."""
    out = {}
    if folder.is_dir():
        for here, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(files):
                path = Path(here) / name
                out[path.relative_to(folder).as_posix()] = path
    return out


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise RunsImportError(f"cannot read: {exc}", path=path, field=path.name) from None


def read_mlruns(root: Path, *, tags: set[str], budget: RowBudget, experiment: str | None,
                label_root: Path) -> Scalars:
    run_dirs = find_run_dirs(root)
    if not run_dirs:
        raise RunsImportError("no MLflow runs (directories with meta.yaml and metrics/) here or below", path=root,
                              field="file")
    runs: dict[str, RunInfo] = {}
    parts, others, notes = [], [], []
    experiments: dict[Path, dict] = {}
    offset = 0
    for run_dir in run_dirs:
        label = run_dir.relative_to(label_root).as_posix() or run_dir.name
        meta = _yaml(run_dir / "meta.yaml")
        exp_dir = run_dir.parent
        if exp_dir not in experiments:
            experiments[exp_dir] = _yaml(exp_dir / "meta.yaml") if (exp_dir / "meta.yaml").is_file() else {}
        exp_meta = experiments[exp_dir]
        run_id = str(meta.get("run_id") or meta.get("run_uuid") or run_dir.name)
        tag_files = _files_below(run_dir / "tags")
        name = _text(tag_files["mlflow.runName"]) if "mlflow.runName" in tag_files else str(meta.get("run_name") or "")
        name = name or run_id
        key = name
        if key in runs:
            key = f"{name} ({run_id[:8]})"
            notes.append(f"{label}: another run is also named {name!r}; this one is imported as {key!r}")
        params = {k: _text(p) for k, p in _files_below(run_dir / "params").items()}
        info = RunInfo(name=key, source=label, aliases=(run_id,), config=params)
        exp_names = {str(exp_meta.get("name", "")), str(exp_meta.get("experiment_id", "")), exp_dir.name}
        if meta.get("lifecycle_stage") == "deleted" or exp_meta.get("lifecycle_stage") == "deleted":
            info.status = "deleted in MLflow"
        elif experiment is not None and experiment not in exp_names:
            info.status = f"in experiment {exp_meta.get('name') or exp_dir.name!r}, not {experiment!r}"
        runs[key] = info
        for metric, path in _files_below(run_dir / "metrics").items():
            rel = path.relative_to(label_root).as_posix()
            if metric not in tags or info.status:
                with open(path, "rb") as fh:
                    n = sum(1 for line in fh if line.strip())
                reason = info.status or OTHER_SERIES
                others.append((key, metric, n, reason, rel))
                continue
            frame = _metric_file(path, rel, budget)
            frame.insert(0, "run", key)
            frame.insert(1, "metric", metric)
            frame["order"] += offset
            offset += len(frame)
            frame["source"] = rel
            parts.append(frame)
    frame = pd.concat(parts, ignore_index=True) if parts else scalars_frame([], [], [], [], [], [])
    return Scalars(runs=runs, frame=frame, other=other_frame(others), notes=notes)


def _metric_file(path: Path, label: str, budget: RowBudget) -> pd.DataFrame:
    """Lines ``timestamp value step`` (step absent in stores older than MLflow 1.0: step 0, as MLflow reads it)."""
    try:
        table = pd.read_csv(path, sep=" ", header=None, names=["timestamp", "value", "step"], dtype=str,
                            keep_default_na=False, na_values=[""], skip_blank_lines=True, engine="c")
    except pd.errors.EmptyDataError:
        table = pd.DataFrame(columns=["timestamp", "value", "step"])
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise RunsImportError(f"not MLflow metric lines 'timestamp value step': {exc}", path=label,
                              field="metrics") from None
    budget.take(len(table), label)
    stamps = numbers(table["timestamp"])
    values = numbers(table["value"])
    steps = numbers(table["step"])
    steps[table["step"].isna().to_numpy()] = 0
    if np.isnan(stamps).any():
        line = int(np.flatnonzero(np.isnan(stamps))[0]) + 1
        raise RunsImportError(f"line {line} is not 'timestamp value step'", path=label, field="metrics")
    order = np.lexsort((np.arange(len(table)), stamps)).argsort().astype(np.float64)
    return pd.DataFrame({"step": steps, "value": values, "order": order})


# ---------------------------------------------------------------------------
# a tracking server (needs the mlflow package, imported only here)

_URI = re.compile(r"^(?:https?|databricks(?:-uc)?|file|sqlite|postgresql|mysql|mssql)(?:\+\w+)?:", re.I)


def is_tracking_uri(text) -> bool:
    return isinstance(text, str) and bool(_URI.match(text)) and not Path(text).exists()


def read_tracking_server(uri: str, *, tags: set[str], budget: RowBudget, experiment: str | None) -> Scalars:
    """Runs of a tracking server (or any MLflow backend URI) through ``MlflowClient``: names, params and
    the full history of the requested metrics; other metrics are counted by their latest value only."""
    try:
        from mlflow.entities import ViewType
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise RunsImportError("reading an MLflow tracking URI needs the mlflow package (pip install "
                              "'scaleplan[mlflow]', or mlflow-skinny)", path=uri, field="source") from None
    client = MlflowClient(tracking_uri=uri)
    runs: dict[str, RunInfo] = {}
    parts, others, notes = [], [], []
    offset = 0
    try:
        if experiment is not None:
            found = client.get_experiment_by_name(experiment)
            if found is None and experiment.isdigit():
                try:
                    found = client.get_experiment(experiment)
                except MlflowException:
                    found = None
            if found is None:
                raise RunsImportError(f"no experiment named or numbered {experiment!r}", path=uri, field="experiment")
            exp_ids = [found.experiment_id]
        else:
            exp_ids = [e.experiment_id for e in _all_pages(lambda token: client.search_experiments(page_token=token))]
        listed = _all_pages(lambda token: client.search_runs(exp_ids, run_view_type=ViewType.ACTIVE_ONLY,
                                                             max_results=1000, page_token=token))
        for run in listed:
            run_id = run.info.run_id
            name = run.info.run_name or run.data.tags.get("mlflow.runName") or run_id
            key = name if name not in runs else f"{name} ({run_id[:8]})"
            if key != name:
                notes.append(f"run {run_id}: another run is also named {name!r}; this one is imported as {key!r}")
            runs[key] = RunInfo(name=key, source=f"run {run_id}", aliases=(run_id,), config=dict(run.data.params))
            for metric in run.data.metrics:
                if metric not in tags:
                    others.append((key, metric, 1, OTHER_SERIES + " (its latest value only was read)",
                                   f"run {run_id}"))
                    continue
                history = client.get_metric_history(run_id, metric)
                budget.take(len(history), uri)
                stamps = np.array([m.timestamp for m in history], dtype=np.float64)
                order = np.lexsort((np.arange(len(history)), stamps)).argsort().astype(np.float64) + offset
                offset += len(history)
                parts.append(scalars_frame([key] * len(history), [metric] * len(history),
                                           [m.step for m in history], [m.value for m in history], order,
                                           [f"run {run_id}"] * len(history)))
    except MlflowException as exc:
        raise RunsImportError(f"the tracking server refused: {exc.message}", path=uri, field="source") from None
    if not runs:
        raise RunsImportError("no active runs" + (f" in experiment {experiment!r}" if experiment else ""),
                              path=uri, field="experiment" if experiment else "source")
    frame = pd.concat(parts, ignore_index=True) if parts else scalars_frame([], [], [], [], [], [])
    return Scalars(runs=runs, frame=frame, other=other_frame(others), notes=notes)


def _all_pages(fetch) -> list:
    items, token = [], None
    while True:
        page = fetch(token)
        items.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return items

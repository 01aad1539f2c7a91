"""``read_runs``: a team's runs, from where they are logged, as the canonical runs table."""
from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from .archive import archive_kind, archive_stem, extract_archive
from .assemble import RunsImport, assemble
from .core import SOURCES, ImportLimits, RowBudget, RunsImportError, Scalars, parse_positive
from .mlflow import (HISTORY_SUFFIXES, find_run_dirs, is_tracking_uri, looks_like_history, read_history, read_mlruns,
                     read_tracking_server)
from .params import read_params
from .tensorboard import find_event_dirs, is_event_file, read_tensorboard
from .wandb import SEPARATOR as WANDB_SEPARATOR
from .wandb import STEP_COLUMNS as WANDB_STEP_COLUMNS
from .wandb import SUFFIXES as WANDB_SUFFIXES
from .wandb import read_wandb

TABLE_SUFFIXES = tuple(sorted(set(WANDB_SUFFIXES) | set(HISTORY_SUFFIXES)))


def read_runs(inputs, *, metric: str, source: str = "auto", tokens_per_step=None, tokens_column: str | None = None,
              params=None, params_key: str | None = None, runs: Iterable[str] | None = None,
              experiment: str | None = None, step_column: str | None = None, limits: ImportLimits | None = None,
              name: str | None = None) -> RunsImport:
    """Read runs logged by TensorBoard, W&B or MLflow into the canonical runs table.

    ``inputs``: a directory (TensorBoard runs, one sub-directory per run, nested allowed; an MLflow
    ``mlruns`` store, experiment or run; or a folder of exports), a .zip / .tar(.gz) of one, one file
    (an event file, a W&B export, an MLflow metric history), a list of files, or an MLflow tracking
    URI (``http(s)://...``, ``databricks``, ``sqlite:///...``; needs the ``mlflow`` package).
    ``source``: "auto" (from the files), "tensorboard", "wandb" or "mlflow".
    ``metric``: the scalar tag / metric / column that is the loss.
    Tokens: ``tokens_per_step`` (a number, or a mapping run -> number; a params file may also give a
    ``tokens_per_step`` column per run) so that tokens = step x K, or ``tokens_column``: a series logged
    alongside (e.g. ``train/tokens_seen``) read at the same step.
    ``params``: each run's parameter count: a mapping run -> count (or -> config), or a CSV (run,params)
    or JSON file; runs it does not list take it from their tracker config (MLflow params, a W&B config)
    under ``params_key`` or a known name (n_params, num_params, ...).
    ``runs``: import only these runs (names, MLflow run ids or TensorBoard paths); ``experiment``: only
    this MLflow experiment (name or id); ``step_column``: the step column of a W&B export when not
    ``_step`` / ``Step``; ``limits``: bounds on archives and rows (:class:`ImportLimits`); ``name``: the
    input's name in messages and for a run at an archive's root (default: the file name).

    Returns :class:`RunsImport` (``frame``: model, params, tokens, value, step, metric, and run_tokens
    where known; ``report``: every value read that is not in the frame, with its reason). Bad input
    raises :class:`RunsImportError` naming the file and the field.
    """
    limits = limits or ImportLimits()
    if not isinstance(metric, str) or not metric.strip():
        raise RunsImportError("name the loss metric (a scalar tag, metric key or column)", field="metric")
    if source not in ("auto", *SOURCES):
        raise RunsImportError(f"must be auto or one of {', '.join(SOURCES)}, got {source!r}", field="source")
    table = read_params(params, params_key=params_key)
    _check_tokens(tokens_per_step, tokens_column, table)
    select = None if runs is None else {str(r) for r in ([runs] if isinstance(runs, str) else runs)}
    tags = {metric} | ({tokens_column} if tokens_column else set())

    if is_tracking_uri(inputs) and source in ("auto", "mlflow"):
        scalars = read_tracking_server(inputs, tags=tags, budget=RowBudget(limits, inputs), experiment=experiment)
        return assemble(scalars, source="mlflow", input_label=name or inputs, metric=metric,
                        tokens_per_step=tokens_per_step, tokens_column=tokens_column, params=table,
                        params_key=params_key, select=select)

    paths = [Path(p) for p in inputs] if isinstance(inputs, (list, tuple)) else [Path(inputs)]
    if not paths:
        raise RunsImportError("no input given", field="inputs")
    for p in paths:
        if not p.exists():
            raise RunsImportError("not found", path=p, field="inputs")
    label = name or (paths[0].name if len(paths) == 1 else f"{len(paths)} files")
    budget = RowBudget(limits, label)

    with tempfile.TemporaryDirectory(prefix="scaleplan-runs-") as scratch:
        root_name = name or paths[0].name
        if len(paths) == 1 and paths[0].is_file() and archive_kind(paths[0]) is not None:
            root_name = name or archive_stem(paths[0])
            paths = [extract_archive(paths[0], Path(scratch), limits)]
        kind, scalars = _read(paths, source=source, tags=tags, budget=budget, experiment=experiment,
                              step_column=step_column, root_name=root_name)
        return assemble(scalars, source=kind, input_label=label, metric=metric, tokens_per_step=tokens_per_step,
                        tokens_column=tokens_column, params=table, params_key=params_key, select=select)


def _check_tokens(tokens_per_step, tokens_column, table) -> None:
    per_run_in_params = table is not None and any(r.tokens_per_step for r in table.rows.values())
    if tokens_column is not None and (tokens_per_step is not None or per_run_in_params):
        raise RunsImportError("give tokens per step or a tokens column, not both", field="tokens_column")
    if tokens_column is not None:
        if not isinstance(tokens_column, str) or not tokens_column.strip():
            raise RunsImportError("must name a series", field="tokens_column")
        return
    if tokens_per_step is None:
        if not per_run_in_params:
            raise RunsImportError("give tokens per step (tokens = step x K; a number, or per run) or a tokens "
                                  "column (a series such as train/tokens_seen)", field="tokens_per_step")
        return
    if isinstance(tokens_per_step, Mapping):
        for run, value in tokens_per_step.items():
            if parse_positive(value) is None:
                raise RunsImportError(f"run {run!r}: must be a positive number, got {value!r}", field="tokens_per_step")
    elif isinstance(tokens_per_step, bool) or parse_positive(tokens_per_step) is None:
        raise RunsImportError(f"must be a positive number, got {tokens_per_step!r}", field="tokens_per_step")


def _read(paths: list[Path], *, source, tags, budget, experiment, step_column, root_name) -> tuple[str, Scalars]:
    if len(paths) == 1 and paths[0].is_dir():
        root = paths[0]
        kind = source if source != "auto" else _detect_dir(root)
        if kind == "tensorboard":
            return kind, read_tensorboard(root, tags=tags, budget=budget, root_name=root_name)
        if kind == "mlflow" and find_run_dirs(root):
            return kind, read_mlruns(root, tags=tags, budget=budget, experiment=experiment, label_root=root)
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(TABLE_SUFFIXES))
        if not files:
            raise RunsImportError(f"no {kind or 'tracker'} files here: no TensorBoard event files, MLflow runs, or "
                                  "CSV / JSON exports", path=root, field="inputs")
        return _read_tables(files, kind=kind if kind else "auto", tags=tags, budget=budget, step_column=step_column,
                            label_root=root)
    for p in paths:
        if p.is_dir():
            raise RunsImportError("give one directory, or a list of files", path=p, field="inputs")
    if all(is_event_file(p.name) for p in paths):
        if source not in ("auto", "tensorboard"):
            raise RunsImportError(f"is a TensorBoard event file, not a {source} export", path=paths[0], field="source")
        if len(paths) == 1:
            return "tensorboard", read_tensorboard(paths[0], tags=tags, budget=budget, root_name=paths[0].parent.name)
        raise RunsImportError("give the directory holding the event files (one sub-directory per run)",
                              path=paths[0], field="inputs")
    return _read_tables(paths, kind=source, tags=tags, budget=budget, step_column=step_column, label_root=None)


def _detect_dir(root: Path) -> str | None:
    event_dirs, _ = find_event_dirs(root)
    if event_dirs:
        return "tensorboard"
    if find_run_dirs(root):
        return "mlflow"
    return None


def _table_kind(columns, step_column) -> str | None:
    """"mlflow" (a metric history), "wandb" (a panel or run history) or None (neither: e.g. a params file)."""
    if looks_like_history(columns):
        return "mlflow"
    if (step_column in columns or any(c in WANDB_STEP_COLUMNS for c in columns)
            or any(WANDB_SEPARATOR in str(c) for c in columns)):
        return "wandb"
    return None


def _read_tables(files: list[Path], *, kind, tags, budget, step_column, label_root) -> tuple[str, Scalars]:
    """Read exports. Files found by scanning a directory (``label_root`` set) that are no export at all
    (a params file kept beside them) are reported as not read; a file named on its own must be one."""
    kinds, ignored = {}, []
    for f in files:
        if not f.name.lower().endswith(TABLE_SUFFIXES):
            raise RunsImportError("not a TensorBoard event file, W&B export or MLflow metric history (.csv, "
                                  ".csv.gz, .jsonl, .json)", path=f, field="file")
        found = _table_kind(_columns(f), step_column)
        if found is None and label_root is not None:
            ignored.append((f.relative_to(label_root).as_posix(), "not a W&B or MLflow export (no step, key or "
                                                                  "'<run> - <metric>' column)"))
            continue
        kinds[f] = found or "wandb"  # a W&B reader's error says what is missing
    if not kinds:
        raise RunsImportError("no W&B or MLflow exports here (" + "; ".join(f"{p}: {r}" for p, r in ignored[:5])
                              + ")", path=label_root, field="inputs")
    if kind in ("auto", None):
        found = set(kinds.values())
        if len(found) > 1:
            listed = ", ".join(f"{f.name} ({k})" for f, k in kinds.items())
            raise RunsImportError(f"the files are of different kinds ({listed}); import one kind at a time",
                                  field="source")
        kind = found.pop()
    files = list(kinds)
    if kind == "mlflow":
        scalars = read_history(files, tags=tags, budget=budget, label_root=label_root)
    elif kind == "wandb":
        scalars = read_wandb(files, tags=tags, budget=budget, label_root=label_root, step_column=step_column)
    else:
        raise RunsImportError("no TensorBoard event files here", path=files[0], field="source")
    scalars.ignored.extend(ignored)
    return kind, scalars


def _columns(path: Path) -> list[str]:
    """The column names of a CSV / JSON(L) export, from its start."""
    name = path.name.lower()
    try:
        if name.endswith(".jsonl"):
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        row = json.loads(line)
                        return list(row) if isinstance(row, dict) else []
            return []
        if name.endswith(".json"):
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            if isinstance(data, dict) and isinstance(data.get("history"), list):
                data = data["history"]
            return list(data[0]) if isinstance(data, list) and data and isinstance(data[0], dict) else []
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
            return next(csv.reader(io.StringIO(fh.readline())), [])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, EOFError) as exc:
        raise RunsImportError(f"cannot read: {exc}", path=path, field="file") from None

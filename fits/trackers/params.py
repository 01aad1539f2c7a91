"""Each run's parameter count (and optionally tokens per step and planned length), given by the user.

A params table is a mapping ``{run: params}`` (or ``{run: {"params": N, "tokens_per_step": K,
"run_tokens": T}}``, or ``{run: config}`` with the count under a known key, W&B's
``{"value": ...}`` wrapping included), a JSON file holding such a mapping, or a CSV file with a run column
(``run``, ``model``, ``name``, ``Name`` (W&B's runs-table export), ``run_name``, ``run_id``) and a
params column (``params`` or another known name, or the one given as ``params_key``), optionally
``tokens_per_step``, ``run_tokens`` and ``run_steps``.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .core import PARAM_KEYS, RunsImportError, find_param_count, parse_count, parse_positive

RUN_COLUMNS = ("run", "model", "name", "Name", "run_name", "Run", "run_id", "Run ID")
EXTRA_COLUMNS = ("tokens_per_step", "run_tokens", "run_steps")


@dataclass(frozen=True)
class RunParams:
    params: int | None = None
    params_from: str = ""
    tokens_per_step: float | None = None
    run_tokens: float | None = None
    run_steps: float | None = None


@dataclass
class ParamsTable:
    rows: dict[str, RunParams]
    label: str  # where it came from, for messages ("params file P.csv", "params mapping")

    def lookup(self, names) -> tuple[str, RunParams] | None:
        for name in names:
            if name in self.rows:
                return name, self.rows[name]
        return None


def read_params(params, *, params_key: str | None = None) -> ParamsTable | None:
    if params is None:
        return None
    if isinstance(params, Mapping):
        return _from_mapping(params, "params mapping", params_key)
    path = Path(params)
    if not path.is_file():
        raise RunsImportError("params file not found", path=path, field="params")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunsImportError(f"cannot read: {exc}", path=path, field="params") from None
        if not isinstance(data, dict):
            raise RunsImportError("a JSON params file maps each run name to its parameter count (or config)",
                                  path=path, field="params")
        return _from_mapping(data, str(path), params_key)
    return _from_csv(path, params_key)


def _entry(value, where: str, run: str, params_key: str | None) -> RunParams:
    if isinstance(value, Mapping):
        extras = {k: parse_positive(value.get(k)) for k in EXTRA_COLUMNS}
        for k in EXTRA_COLUMNS:
            if value.get(k) not in (None, "") and extras[k] is None:
                raise RunsImportError(f"run {run!r}: {k} must be a positive number, got {value.get(k)!r}",
                                      path=where, field=k)
        found = find_param_count(dict(value), params_key, where=where)
        if found is None:
            raise RunsImportError(f"run {run!r} has no parameter count (a key among {', '.join(PARAM_KEYS)}, or "
                                  "name it with params_key)", path=where, field=params_key or "params")
        return RunParams(params=found[0], params_from=f"{where}: {found[1]}", **extras)
    count = parse_count(value)
    if count is None:
        raise RunsImportError(f"run {run!r}: {value!r} is not a parameter count (a positive integer, or e.g. 125M)",
                              path=where, field="params")
    return RunParams(params=count, params_from=where)


def _from_mapping(data: Mapping, where: str, params_key: str | None) -> ParamsTable:
    rows = {str(run): _entry(value, where, str(run), params_key) for run, value in data.items()}
    return ParamsTable(rows=rows, label=where)


def _from_csv(path: Path, params_key: str | None) -> ParamsTable:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
        raise RunsImportError(f"cannot read: {exc}", path=path, field="params") from None
    table.columns = [c.strip() for c in table.columns]
    run_col = next((c for c in RUN_COLUMNS if c in table.columns), None)
    if run_col is None:
        raise RunsImportError("no run column (one of " + ", ".join(RUN_COLUMNS) + "); the file needs columns "
                              "run,params", path=path, field="run")
    if params_key is not None:
        if params_key not in table.columns:
            raise RunsImportError(f"no column {params_key!r}; columns: {', '.join(table.columns[:20])}", path=path,
                                  field=params_key)
        params_col = params_key
    else:
        lower = {c.lower(): c for c in table.columns}
        params_col = next((lower[k] for k in PARAM_KEYS if k in lower), None)
        if params_col is None:
            raise RunsImportError("no params column (params, or one of " + ", ".join(PARAM_KEYS[1:]) + ")",
                                  path=path, field="params")
    rows: dict[str, RunParams] = {}
    first_line: dict[str, int] = {}
    for i, record in enumerate(table.to_dict(orient="records")):
        line = i + 2
        run = record[run_col].strip()
        if not run:
            if not any(str(v).strip() for v in record.values()):
                continue  # a blank line
            raise RunsImportError(f"line {line}: empty run name", path=path, field=run_col)
        count = parse_count(record[params_col])
        if count is None:
            raise RunsImportError(f"line {line}: run {run!r}: {record[params_col]!r} is not a parameter count "
                                  "(a positive integer, or e.g. 125M, 1.3B)", path=path, field=params_col)
        extras = {}
        for k in EXTRA_COLUMNS:
            text = str(record.get(k, "")).strip()
            extras[k] = parse_positive(text) if text else None
            if text and extras[k] is None:
                raise RunsImportError(f"line {line}: run {run!r}: {text!r} is not a positive number", path=path,
                                      field=k)
        entry = RunParams(params=count, params_from=f"{path.name}: {params_col}", **extras)
        if run in rows and rows[run] != entry:
            raise RunsImportError(f"line {line}: run {run!r} is also on line {first_line[run]} with other values",
                                  path=path, field=run_col)
        rows[run] = entry
        first_line.setdefault(run, line)
    if not rows:
        raise RunsImportError("no runs listed", path=path, field=run_col)
    return ParamsTable(rows=rows, label=str(path))

"""A user's own runs, to predict a target from them (../shared/CORPUS_FORMAT.md, "Runs for a prediction").

The canonical columns, of which only ``model, params, tokens, value`` are required, plus ``run_tokens``
(the run's planned length, for runs still training). Validated by the importer's own value rules
(fits.canonical.validate_canonical: names, params > 0 integer, tokens > 0, finite values, epochs >= 0,
one params per run, conflicting duplicates), so a file or a JSON list of runs is refused for the same
reasons as a corpus file, with the line (or the list index) and column of each problem.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .canonical import (
    CANONICAL_COLUMNS,
    CorpusValidationError,
    Problem,
    _check_header,
    _check_row_count,
    _drop_blank_rows,
    _parse_table,
    _read_bytes,
    _without_bom,
    format_column,
    validate_canonical,
)

RUN_TABLE_COLUMNS = CANONICAL_COLUMNS + ("run_tokens",)
RUN_TABLE_REQUIRED = ("model", "params", "tokens", "value")


def read_run_table(source, *, max_rows: int | None = None, max_bytes: int | None = None) -> pd.DataFrame:
    """Read and validate a runs CSV(.gz) (a path or file object); limits as fits.read_canonical's.

    Returns the typed rows (fits.validate_canonical's columns plus ``run_tokens``, NaN where not given,
    and ``line``); raises CorpusValidationError (CorpusTooLarge over a limit) listing every problem.
    """
    data = _without_bom(_read_bytes(source, max_bytes=max_bytes, max_rows=max_rows))
    header = _check_header(data, RUN_TABLE_COLUMNS, required=RUN_TABLE_REQUIRED)
    raw = _parse_table(data, header)
    raw = _drop_blank_rows(raw, header)
    _check_row_count(raw, max_rows)
    return validate_run_table(raw)


def validate_run_table(runs: pd.DataFrame, *, what: str = "runs") -> pd.DataFrame:
    """Validate runs given as strings (read from a file) or as values (a list of dicts from JSON).

    Columns beyond RUN_TABLE_REQUIRED are optional; ``line`` numbers the rows in problems (default:
    0, 1, ... as the list's indexes).
    """
    raw = pd.DataFrame(index=runs.index)
    for col in RUN_TABLE_COLUMNS:
        if col not in runs.columns:
            raw[col] = ""
        elif runs[col].dtype == object and runs[col].map(lambda v: isinstance(v, str) or v is None).all():
            raw[col] = runs[col].fillna("").astype(str)
        else:
            raw[col] = format_column(runs[col])
    raw["line"] = runs["line"].to_numpy() if "line" in runs.columns else np.arange(len(runs))
    raw = raw.reset_index(drop=True)
    problems = _run_tokens_problems(raw)
    try:
        rows, _ = validate_canonical(raw[list(CANONICAL_COLUMNS) + ["line"]], required=RUN_TABLE_REQUIRED, what=what)
    except CorpusValidationError as exc:
        problems += exc.problems
    if problems:
        raise CorpusValidationError(sorted(problems, key=lambda p: (p.line, p.column)), what=what)
    run_tokens = pd.to_numeric(raw["run_tokens"].replace("", np.nan), errors="coerce")
    rows["run_tokens"] = rows["line"].map(pd.Series(run_tokens.to_numpy(), index=raw["line"].to_numpy()))
    return rows


def _run_tokens_problems(raw: pd.DataFrame) -> list[Problem]:
    """run_tokens: a run's final tokens, a finite number at least its checkpoint's tokens, one per run."""
    given = raw["run_tokens"] != ""
    if not given.any():
        return []
    value = pd.to_numeric(raw["run_tokens"].where(given), errors="coerce").to_numpy(dtype=float)
    tokens = pd.to_numeric(raw["tokens"], errors="coerce").to_numpy(dtype=float)
    problems = []
    lines = raw["line"].to_numpy()
    with np.errstate(invalid="ignore"):
        for i in np.flatnonzero(given.to_numpy()):
            if not np.isfinite(value[i]) or value[i] <= 0:
                problems.append(Problem(int(lines[i]), "run_tokens", f"must be a finite number > 0, got "
                                                                     f"{raw['run_tokens'].iloc[i]!r}"))
            elif np.isfinite(tokens[i]) and value[i] < tokens[i] * (1 - 1e-9):
                problems.append(Problem(int(lines[i]), "run_tokens", f"is the run's final tokens, so it cannot be "
                                                                     f"below this checkpoint's {tokens[i]:g}"))
    per_run = pd.DataFrame({"run": raw["model"].str.strip() + "\x1f" + raw["seed"].str.strip(), "v": value,
                            "line": lines})[given.to_numpy() & np.isfinite(value)]
    first = per_run.groupby("run")[["v", "line"]].transform("first")
    for line, v, v0, line0 in zip(per_run["line"], per_run["v"], first["v"], first["line"]):
        if v != v0:
            problems.append(Problem(int(line), "run_tokens", f"the run's final tokens are {v0:g} on line {line0}; "
                                                             "a run has one length"))
    return problems

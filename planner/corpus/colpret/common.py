"""Shared pieces of the ColPret readers: the canonical row builder, family metadata, W&B exports."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fits import CANONICAL_COLUMNS

VIA_COLPRET = "via ColPret (arXiv:2410.11840)"
# No ColPret file carries a usable seed (README 1.5), so every run is seed 0.
SEED = "0"


def cite(text: str) -> str:
    return f"{text} {VIA_COLPRET}"


@dataclass(frozen=True)
class Family:
    name: str
    arch: str
    dataset: str
    primary_metric: str
    source: str
    notes: str = ""


@dataclass
class Part:
    """What one reader produced: canonical rows, the families they belong to, and remarks."""

    rows: pd.DataFrame
    families: list[Family]
    warnings: list[str] = field(default_factory=list)


def observations(**columns) -> pd.DataFrame:
    """Canonical rows from column arrays and scalars (scalars are broadcast).

    Optional columns left out are empty. Rows whose value is missing are dropped:
    an empty cell in a source file means that metric was not measured there.
    """
    lengths = {len(v) for v in columns.values() if isinstance(v, (list, tuple, np.ndarray, pd.Series, pd.Index))}
    if len(lengths) > 1:
        raise ValueError(f"column arrays differ in length: {sorted(lengths)}")
    n = lengths.pop() if lengths else 1
    data = {}
    for name in CANONICAL_COLUMNS:
        value = columns.pop(name, None)
        if isinstance(value, pd.Series):
            value = value.to_numpy()
        data[name] = np.full(n, value, dtype=object) if np.ndim(value) == 0 else value
    if columns:
        raise ValueError(f"not canonical columns: {sorted(columns)}")
    frame = pd.DataFrame(data)
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame[frame["value"].notna()].reset_index(drop=True)


def ln(values) -> np.ndarray:
    return np.log(np.asarray(values, dtype=float))


def parse_size(text: str) -> float:
    """'1.3b' -> 1.3e9, '350M' -> 3.5e8, '64B' -> 6.4e10 (ColPret's size and token labels)."""
    text = str(text).strip()
    scale = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}.get(text[-1:].lower())
    if scale is None:
        raise ValueError(f"not a size label: {text!r}")
    return float(text[:-1]) * scale


def parse_sizes(values: pd.Series, *, path: str, column: str, first_line: int = 2) -> pd.Series:
    """parse_size over a column read from `path`; a bad cell is reported by file line and column.

    `first_line` is the file line of index 0 (2 below a header row, 1 without one).
    """
    parsed = []
    for index, text in values.items():
        try:
            parsed.append(parse_size(text))
        except ValueError:
            raise ValueError(f"{path}, line {index + first_line}, column {column!r}: {text!r} is not a size "
                             "such as '1.3b', '350M' or '64B'") from None
    return pd.Series(parsed, index=values.index, dtype=float)


def read_wandb(path: Path) -> pd.DataFrame:
    """A W&B export as long rows (Step, column, value), without the __MIN/__MAX envelopes.

    `column` is the export's `<run> - <metric>` header; empty cells are dropped.
    """
    wide = pd.read_csv(path)
    if "Step" not in wide.columns:
        raise ValueError(f"{path}: not a W&B export (no 'Step' column)")
    value_columns = [c for c in wide.columns if c != "Step" and not c.endswith(("__MIN", "__MAX"))]
    long = wide.melt(id_vars="Step", value_vars=value_columns, var_name="column", value_name="value")
    long["value"] = pd.to_numeric(long["value"], errors="coerce")
    return long.dropna(subset=["value"]).reset_index(drop=True)

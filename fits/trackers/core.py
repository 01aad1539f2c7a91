"""What every tracker reader shares: the error, the limits, the scalars a reader hands back, run names.

A reader turns its input into :class:`Scalars`: the values of the requested series (the loss metric
and, if asked, a tokens series) as a long table, a count of every other series it met, the runs with
whatever configuration the tracker keeps, and the files it did not read with the reason.
:mod:`fits.trackers.assemble` turns that into the canonical runs table and the report.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import numpy as np
import pandas as pd

SOURCES = ("tensorboard", "wandb", "mlflow")

# Names of a parameter count in a tracker's config or params, most specific first (matched
# case-insensitively against the last part of a key, so `model/n_params` and `model.num_params` count).
PARAM_KEYS = ("n_params", "num_params", "params", "num_parameters", "n_parameters", "parameters",
              "model_params", "param_count", "nparams", "n_param")

SCALAR_COLUMNS = ["run", "metric", "step", "value", "order", "source"]
OTHER_COLUMNS = ["run", "metric", "count", "reason", "source"]
OTHER_SERIES = "not the metric or tokens series"


class RunsImportError(ValueError):
    """Input that cannot be imported; the message names the file (``path``) and the field (``field``)."""

    def __init__(self, message: str, *, path=None, field: str | None = None):
        self.path = None if path is None else str(path)
        self.field = field
        self.reason = message
        where = [p for p in (self.path, f"field {field!r}" if field else None) if p]
        super().__init__(": ".join([*where, message]))


@dataclass(frozen=True)
class ImportLimits:
    """Bounds for untrusted input (the service passes its upload limits).

    ``max_bytes``: total bytes an archive may extract to (counted while extracting, whatever the
    archive declares); ``max_files``: members an archive may hold; ``max_rows``: observations read
    (scalars of the requested TensorBoard tags, rows of a CSV or JSON export, lines of the MLflow
    metric files read). Over any of them the import stops with :class:`RunsImportError`.
    """

    max_bytes: int = 1 << 30
    max_files: int = 10_000
    max_rows: int = 2_000_000

    def __post_init__(self):
        for name in ("max_bytes", "max_files", "max_rows"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise RunsImportError(f"must be a positive integer, got {value!r}", field=name)


@dataclass
class RunInfo:
    """One run as its tracker names it. ``aliases``: other names a params file may use (run id, path)."""

    name: str
    source: str
    aliases: tuple[str, ...] = ()
    config: dict = field(default_factory=dict)
    status: str = ""  # non-empty: the run is left out for this reason (e.g. deleted in MLflow)


@dataclass
class Scalars:
    """What a reader found. ``frame``: one row per value of a requested series (SCALAR_COLUMNS;
    ``order`` grows with the time of writing, so the later of two writes of one step wins);
    ``other``: counts of everything else (OTHER_COLUMNS); ``ignored``: (path, reason) of files not read."""

    runs: dict[str, RunInfo]
    frame: pd.DataFrame
    other: pd.DataFrame
    ignored: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class RowBudget:
    """Counts observations read against ``max_rows``; raises naming the input once over."""

    def __init__(self, limits: ImportLimits, label: str):
        self.left = limits.max_rows
        self.limit = limits.max_rows
        self.label = label

    def take(self, n: int, path=None) -> None:
        self.left -= int(n)
        if self.left < 0:
            raise RunsImportError(f"more than {self.limit} observations to read, the limit for one import; "
                                  "import fewer runs at a time", path=path or self.label, field="rows")


def scalars_frame(runs, metrics, steps, values, orders, sources) -> pd.DataFrame:
    return pd.DataFrame({
        "run": pd.Series(runs, dtype=object),
        "metric": pd.Series(metrics, dtype=object),
        "step": np.asarray(steps, dtype=np.float64),  # float until checked: exports write 1e3 or 12.0
        "value": np.asarray(values, dtype=np.float64),
        "order": np.asarray(orders, dtype=np.float64),
        "source": pd.Series(sources, dtype=object),
    })


def other_frame(rows) -> pd.DataFrame:
    """``rows``: iterable of (run, metric, count, reason, source)."""
    return pd.DataFrame(list(rows), columns=OTHER_COLUMNS).astype({"count": np.int64})


# ---------------------------------------------------------------------------
# names and numbers


_SUFFIX = {"k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}
_COUNT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBgGtT]?)\s*$")


def parse_count(value) -> int | None:
    """A parameter count from a number or text such as ``125000000``, ``1.25e8``, ``125M``, ``1.3B``.

    None when the value is not one (empty, not a number, not positive, below 1 after rounding).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value) if value >= 1 else None
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value) or value < 0.5:
            return None
        return int(round(float(value)))
    found = _COUNT.match(str(value))
    if not found:
        return None
    try:
        number = Decimal(found.group(1)) * _SUFFIX.get(found.group(2).lower(), 1)
    except InvalidOperation:
        return None
    count = int(number.to_integral_value())
    return count if count >= 1 else None


def parse_positive(value) -> float | None:
    """A positive finite number from a number or text; None otherwise."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value) if isinstance(value, (int, float, np.number)) else float(str(value).strip())
    except ValueError:
        return None
    return x if np.isfinite(x) and x > 0 else None


_BAD_START = ("=", "+", "-", "@")
_NAME_LIMIT = 200


def model_name(run: str) -> str:
    """The canonical model name of a run: no ``/``, no control or bidi characters, not starting with
    ``= + - @`` (spreadsheet formulas), at most 200 characters (../shared/CORPUS_FORMAT.md, "Names")."""
    name = "".join(ch for ch in str(run) if unicodedata.category(ch) not in ("Cc", "Cf"))
    name = name.replace("/", "-").replace("\\", "-").strip()
    while name.startswith(_BAD_START):
        name = "_" + name[1:]
    if not name:
        name = "run"
    return name[:_NAME_LIMIT]


def flatten_config(config, prefix: str = "") -> dict:
    """Nested config (W&B ``{"key": {"value": ...}}``, ``model: {n_params: ...}``) as ``{"a.b": value}``."""
    out = {}
    if not isinstance(config, dict):
        return out
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and "value" in value and set(value) <= {"value", "desc"}:
            value = value["value"]  # W&B's config.yaml / json_config wrapping
        if isinstance(value, dict):
            out.update(flatten_config(value, name + "."))
        else:
            out[name] = value
    return out


def find_param_count(config: dict, key: str | None, *, where: str) -> tuple[int, str] | None:
    """(count, key) from a run's config: ``key`` if given, else one of PARAM_KEYS; None if absent.

    Found by name, a key whose value is not a count is passed over (``model_params: "see paper"``);
    named by ``key``, it raises. Two candidate keys that disagree raise naming both.
    """
    flat = flatten_config(config)
    if key is not None:
        candidates = [k for k in flat if k == key]
    else:
        by_last: dict[str, list[str]] = {}
        for k in flat:
            last = re.split(r"[./]", k)[-1].lower()
            if last in PARAM_KEYS:
                by_last.setdefault(last, []).append(k)
        candidates = [k for name in PARAM_KEYS for k in by_last.get(name, [])]
    found = []
    for k in candidates:
        count = parse_count(flat[k])
        if count is not None:
            found.append((count, k))
        elif key is not None:  # asked for by name: say what is wrong with it
            raise RunsImportError(f"is {flat[k]!r}, not a parameter count (a positive integer, or e.g. 125M, 1.3B)",
                                  path=where, field=k)
    if not found:
        return None
    if len({c for c, _ in found}) > 1:
        listed = ", ".join(f"{k}={c}" for c, k in found)
        raise RunsImportError(f"config gives different parameter counts ({listed}); name the one to use "
                              "(params_key / --params-key)", path=where, field=found[0][1])
    return found[0]

"""A family's training runs as validated arrays: what every fit, policy and bootstrap works on.

``TrainSet.from_frame(train)`` checks a DataFrame of runs (``model, params,
tokens, value``; optional ``seed``, ``epochs``, ``run_tokens``, ``family``) once
and keeps plain numpy arrays, so that the many fits of a method choice (inner
validation, bootstrap) never go back through pandas.

Runs are taken to be complete: each run's last checkpoint ends its training,
unless a ``run_tokens`` column gives the run's planned final tokens (a run
still in progress).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("model", "params", "tokens", "value")


class FitInputError(ValueError):
    """The data cannot be fitted with the requested law or method; the message says why."""


@dataclass(frozen=True)
class TrainSet:
    """Rows of one family's runs (all arrays of one length); ``run`` numbers the (model, seed) runs."""

    model: np.ndarray
    seed: np.ndarray
    params: np.ndarray
    tokens: np.ndarray
    value: np.ndarray
    epochs: np.ndarray  # NaN where unknown
    run_tokens: np.ndarray  # each row's run's final tokens
    run: np.ndarray  # int code of (model, seed)
    family: str = "family"

    # -- building ----------------------------------------------------------------
    @classmethod
    def from_frame(cls, train: pd.DataFrame) -> "TrainSet":
        """Validate a training DataFrame; errors name the column and the row (numbered from 0)."""
        if isinstance(train, TrainSet):
            return train
        if not isinstance(train, pd.DataFrame):
            raise FitInputError(f"train must be a pandas DataFrame, not {type(train).__name__}")
        missing = [c for c in REQUIRED_COLUMNS if c not in train.columns]
        if missing:
            raise FitInputError(f"train is missing column(s) {missing}; it needs {list(REQUIRED_COLUMNS)}")
        if train.empty:
            raise FitInputError("train has no rows")
        numbers = {}
        for col in ("params", "tokens", "value"):
            raw = train[col]
            vals = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(vals)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise FitInputError(f"train column {col!r} has a missing, non-numeric or infinite value at row {i}: "
                                    f"{raw.iloc[i]!r}")
            if (vals <= 0).any():
                i = int(np.flatnonzero(vals <= 0)[0])
                raise FitInputError(f"train column {col!r} must be positive; row {i} has {float(vals[i])!r}")
            numbers[col] = vals
        model = train["model"].astype(str).to_numpy()
        seed = train["seed"].fillna("").astype(str).to_numpy() if "seed" in train.columns else np.full(len(train), "")
        epochs = (pd.to_numeric(train["epochs"], errors="coerce").to_numpy(dtype=float) if "epochs" in train.columns
                  else np.full(len(train), np.nan))
        run = pd.factorize(pd.Series(model) + "\x1f" + pd.Series(seed))[0]
        last = _group_max(numbers["tokens"], run)[run]
        if "run_tokens" in train.columns:
            given = pd.to_numeric(train["run_tokens"], errors="coerce").to_numpy(dtype=float)
            bad = np.isfinite(given) & (given < numbers["tokens"] * (1 - 1e-9))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise FitInputError(f"train column 'run_tokens' is the run's final tokens and cannot be below the "
                                    f"checkpoint's tokens; row {i} has {float(given[i])!r} < "
                                    f"{float(numbers['tokens'][i])!r}")
            last = np.where(np.isfinite(given), given, last)
        family = str(train["family"].iloc[0]) if "family" in train.columns else "family"
        return cls(model=model, seed=seed, params=numbers["params"], tokens=numbers["tokens"],
                   value=numbers["value"], epochs=epochs, run_tokens=last, run=run, family=family)

    def take(self, index) -> "TrainSet":
        """The rows at ``index`` (a boolean mask or integer positions)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return TrainSet(**{k: (v[index] if isinstance(v, np.ndarray) else v) for k, v in values.items()})

    def with_values(self, value: np.ndarray) -> "TrainSet":
        """The same design with other losses (bootstrap replicates)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["value"] = np.asarray(value, dtype=float)
        return TrainSet(**values)

    # -- reading -----------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.value.size)

    @property
    def sizes(self) -> np.ndarray:
        return np.unique(self.params)

    @property
    def n_runs(self) -> int:
        return int(np.unique(self.run).size)

    def run_max_tokens(self) -> np.ndarray:
        """Per row: the largest tokens its run reached among these rows."""
        return _group_max(self.tokens, self.run)[self.run]

    def is_last(self) -> np.ndarray:
        """Per row: is it its run's last checkpoint here."""
        return self.tokens >= self.run_max_tokens() * (1 - 1e-12)

    def run_labels(self) -> np.ndarray:
        """A readable label per row: the model, with its seed when one is given."""
        return np.where(self.seed == "", self.model, np.char.add(np.char.add(self.model.astype(str), " seed "),
                                                                   self.seed.astype(str)))

    def frame(self) -> pd.DataFrame:
        """As a DataFrame (plots, reports)."""
        return pd.DataFrame({"family": self.family, "model": self.model, "seed": self.seed, "params": self.params,
                             "tokens": self.tokens, "value": self.value, "epochs": self.epochs,
                             "run_tokens": self.run_tokens})


def _group_max(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    out = np.full(int(groups.max()) + 1 if groups.size else 0, -np.inf)
    np.maximum.at(out, groups, values)
    return out

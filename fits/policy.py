"""Which checkpoints a fit uses, and how much each one weighs.

A policy turns a family's training frame into the rows a law is fitted to,
with a ``weight`` column:

* an early-token cut: checkpoints before ``min_tokens`` are noisy (warm-up,
  high learning rate) and are dropped - but a fixed cut empties families whose
  runs stop before it, so the cut adapts: it is never later than
  ``max_run_fraction`` of a run's own final tokens, so every run keeps its tail;
* thinning: at most ``max_per_run`` checkpoints per run, spaced evenly in
  log-tokens (a 4,000-point digitised curve says little more than 60 points
  of it, and costs 60x the time);
* weights: each run's checkpoints share one unit of weight, so one long curve
  does not drown the short ones, and a final-loss-only run counts as much as
  a curve; and a run weighs in proportion to its size (N / largest N), since
  the models closest in size to the target say most about it (the paper's
  finding; measured here, see the README's policy table).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .data import run_key


@dataclass(frozen=True)
class CheckpointPolicy:
    name: str = "default"
    min_tokens: float = 1e9
    max_run_fraction: float = 0.5
    min_run_fraction: float = 0.0
    max_per_run: int | None = 60
    equal_run_weight: bool = True
    size_weight_power: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)

    def select(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows to fit, with a ``weight`` column. ``frame`` is one family's fit frame."""
        if frame.empty:
            return frame.assign(weight=pd.Series(dtype=float))
        keys = run_key(frame)
        run_max = frame.groupby(keys)["tokens"].transform("max")
        cut = np.minimum(self.min_tokens, self.max_run_fraction * run_max)
        cut = np.maximum(cut, self.min_run_fraction * run_max)
        kept = frame[frame["tokens"] >= cut * (1 - 1e-12)].copy()
        kept_keys = keys[kept.index]
        if self.max_per_run:
            kept = _thin(kept, kept_keys, self.max_per_run)
            kept_keys = keys[kept.index]
        counts = kept_keys.map(kept_keys.value_counts())
        weight = 1.0 / counts.to_numpy() if self.equal_run_weight else np.ones(len(kept))
        if self.size_weight_power:
            weight = weight * (kept["params"].to_numpy() / kept["params"].max()) ** self.size_weight_power
        kept["weight"] = weight
        return kept


def _thin(frame: pd.DataFrame, keys: pd.Series, limit: int) -> pd.DataFrame:
    """Keep at most ``limit`` checkpoints per run, evenly spaced in log-tokens, always the last."""
    keep = []
    for _, idx in frame.groupby(keys, sort=False).indices.items():
        if idx.size <= limit:
            keep.append(idx)
            continue
        lt = np.log(frame["tokens"].to_numpy()[idx])
        order = np.argsort(lt)
        targets = np.linspace(lt[order[0]], lt[order[-1]], limit)
        pos = np.searchsorted(lt[order], targets)
        pos = np.clip(pos, 0, idx.size - 1)
        keep.append(idx[order[np.unique(pos)]])
    return frame.iloc[np.sort(np.concatenate(keep))]


DEFAULT_POLICY = CheckpointPolicy()
# Named policies the backtests and the sweep compare (see the note of each in the README).
POLICIES = {
    "default": DEFAULT_POLICY,
    # Each differs from the default in one respect, so the backtest prices each choice.
    "no-cut": CheckpointPolicy("no-cut", min_tokens=0.0),
    "cut10b": CheckpointPolicy("cut10b", min_tokens=1e10),
    "no-thinning": CheckpointPolicy("no-thinning", max_per_run=None),
    "point-weights": CheckpointPolicy("point-weights", equal_run_weight=False),
    "no-size-weights": CheckpointPolicy("no-size-weights", size_weight_power=0.0),
    "final-only": CheckpointPolicy("final-only", min_tokens=0.0, max_run_fraction=0.0, min_run_fraction=1.0),
    # The paper's plain recipe: every checkpoint after 10B tokens, equally weighted.
    "paper": CheckpointPolicy("paper", min_tokens=1e10, max_run_fraction=1.0, max_per_run=None,
                              equal_run_weight=False, size_weight_power=0.0),
}

"""Which checkpoints a fit uses, and how much each one weighs.

A policy turns a family's training frame into the rows a law is fitted to,
with a ``weight`` column:

* an early-token cut: checkpoints before ``min_tokens`` are noisy (warm-up,
  high learning rate) and are dropped - but a fixed cut empties families whose
  runs stop before it, so the cut adapts: it is never later than
  ``max_run_fraction`` of a run's own final tokens, so every run keeps its tail;
* thinning: at most ``max_per_run`` checkpoints per run, spaced evenly in
  log-tokens (a 4,000-point digitised curve says little more than 60 points
  of it, and costs far more time);
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

from .trainset import TrainSet


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

    def select(self, data):
        """The rows to fit and their weights.

        ``data`` a :class:`fits.trainset.TrainSet` - returns ``(rows, weights)`` - or a training
        DataFrame - returns the kept rows with a ``weight`` column (for plots and reports).
        """
        if isinstance(data, pd.DataFrame):
            ts = TrainSet.from_frame(data)
            idx, weight = self.select_index(ts)
            return ts.take(idx).frame().assign(weight=weight)
        idx, weight = self.select_index(data)
        return data.take(idx), weight

    def select_index(self, ts: TrainSet) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the kept rows (sorted) and their weights."""
        if len(ts) == 0:
            return np.zeros(0, dtype=int), np.zeros(0)
        run_max = ts.run_max_tokens()
        cut = np.minimum(self.min_tokens, self.max_run_fraction * run_max)
        cut = np.maximum(cut, self.min_run_fraction * run_max)
        kept = np.flatnonzero(ts.tokens >= cut * (1 - 1e-12))
        if self.max_per_run:
            kept = _thin(ts.tokens, ts.run, kept, self.max_per_run)
        runs = ts.run[kept]
        _, inverse, counts = np.unique(runs, return_inverse=True, return_counts=True)
        weight = 1.0 / counts[inverse] if self.equal_run_weight else np.ones(kept.size)
        if self.size_weight_power and kept.size:
            params = ts.params[kept]
            weight = weight * (params / params.max()) ** self.size_weight_power
        return kept, weight


def _thin(tokens: np.ndarray, run: np.ndarray, kept: np.ndarray, limit: int) -> np.ndarray:
    """Of ``kept``, at most ``limit`` checkpoints per run, evenly spaced in log-tokens, always the last."""
    order = kept[np.lexsort((tokens[kept], run[kept]))]
    runs = run[order]
    bounds = np.flatnonzero(np.diff(runs)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [runs.size]])
    if np.all(ends - starts <= limit):
        return np.sort(kept)
    out = []
    for a, b in zip(starts, ends):
        idx = order[a:b]
        if idx.size <= limit:
            out.append(idx)
            continue
        lt = np.log(tokens[idx])
        pos = np.clip(np.searchsorted(lt, np.linspace(lt[0], lt[-1], limit)), 0, idx.size - 1)
        out.append(idx[np.unique(pos)])
    return np.sort(np.concatenate(out))


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

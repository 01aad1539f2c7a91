"""Targets of a prediction: checked (params, tokens) arrays and the length of each target's run.

The contract: targets of one size are checkpoints of one run, which ends at the
largest tokens asked for that size, unless ``run_tokens`` says otherwise (ask
for a single token count to get a run's final loss).
"""
from __future__ import annotations

import numpy as np

from .trainset import FitInputError

# The protocol's target window, also used to score a rollout: checkpoints from 70% of a size's final tokens on
# (the last 30% of its training).
TARGET_FRACTION = 0.7


def targets(target_params, target_tokens) -> tuple[np.ndarray, np.ndarray]:
    """Broadcast, checked target arrays (params, tokens)."""
    n, d = np.broadcast_arrays(np.asarray(target_params, dtype=float), np.asarray(target_tokens, dtype=float))
    for name, arr in (("target_params", n), ("target_tokens", d)):
        if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise FitInputError(f"{name} must be positive and finite")
    return n.astype(float), d.astype(float)


def default_run_tokens(target_params, target_tokens) -> np.ndarray:
    """Each target's run's final tokens, by the contract's default: the largest tokens asked for its size."""
    n = np.asarray(target_params, dtype=float)
    d = np.asarray(target_tokens, dtype=float)
    n, d = np.broadcast_arrays(n, d)
    out = np.empty(d.shape)
    flat_n, flat_d, flat_out = n.ravel(), d.ravel(), out.reshape(-1)
    for size in np.unique(flat_n):
        at = flat_n == size
        flat_out[at] = flat_d[at].max()
    return out


def resolve_target_run_tokens(n, d, given=None) -> np.ndarray:
    """``given`` (checked: at least each target's tokens), or the contract's default (:func:`default_run_tokens`)."""
    if given is None:
        return default_run_tokens(n, d)
    run = np.broadcast_to(np.asarray(given, dtype=float), np.shape(d))
    if not np.all(np.isfinite(run)) or np.any(run < np.asarray(d) * (1 - 1e-9)):
        raise FitInputError("target_run_tokens must be finite and at least each target's tokens")
    return run

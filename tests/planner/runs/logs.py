"""Runs as a team logs them, built in the tests from known curves: TensorBoard event files in a .zip or .tar.gz.

A synthetic family following a Chinchilla-like law (tests.planner.predictions.test_predictions.law), logged
by tensorboardX as a training script does (tests/fits/trackers/writers.py: the loss, the learning rate and
the tokens seen at every checkpoint), one sub-directory per run.
"""
from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from tests.fits.trackers.writers import LOSS, TOKENS, write_tensorboard
from tests.planner.predictions.test_predictions import law

TOKENS_PER_STEP = 1_000_000
SIZES = (1e8, 3e8, 1e9, 3e9)
TARGET_PARAMS, TARGET_TOKENS = 3e10, 2e11


def curves(sizes=SIZES, steps=np.arange(1, 41) * 500, planned_steps=None, noise=0.002, seed=0) -> pd.DataFrame:
    """model, params, tokens, value, step of each run's checkpoints (up to ``planned_steps``, if given,
    for runs still training: only the steps before it are logged)."""
    rng = np.random.default_rng(seed)
    parts = []
    for n in sizes:
        tokens = steps * TOKENS_PER_STEP
        value = law(n, tokens) * (1 + rng.normal(0, noise, size=len(steps)))
        parts.append(pd.DataFrame({"model": f"run-{n:.0e}", "params": n, "tokens": tokens.astype(float),
                                   "value": value, "step": steps}))
    frame = pd.concat(parts, ignore_index=True)
    return frame if planned_steps is None else frame[frame["step"] <= planned_steps].reset_index(drop=True)


def params_csv(frame: pd.DataFrame, *, run_steps: int | None = None) -> str:
    table = frame.groupby("model", sort=False)["params"].first()
    header = "run,params" + (",run_steps" if run_steps else "")
    rows = [f"{m},{int(n)}" + (f",{run_steps}" if run_steps else "") for m, n in table.items()]
    return "\n".join([header, *rows]) + "\n"


def tensorboard_dir(frame: pd.DataFrame, root: Path) -> Path:
    return write_tensorboard(frame, root)


def zipped(root: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            archive.write(path, path.relative_to(root.parent).as_posix())
    return buffer.getvalue()


def tarred(root: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(root, arcname=root.name)
    return buffer.getvalue()


def logs_zip(tmp_path: Path, frame: pd.DataFrame, name: str = "logs") -> bytes:
    return zipped(tensorboard_dir(frame, tmp_path / name))


__all__ = ["LOSS", "TOKENS", "TOKENS_PER_STEP", "curves", "logs_zip", "params_csv", "tarred", "zipped"]

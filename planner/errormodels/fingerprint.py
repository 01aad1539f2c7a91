"""The fingerprint of a corpus: what an error model learns from, counted and hashed (see planner.errormodels.shipped).

It covers each family's primary-metric observations (a fit frame, fits.FIT_COLUMNS): families, runs and
observations counted, and every row's family, model, seed, params, tokens, value and epochs hashed, in any
row order; numbers to 12 significant digits, so a value stored by one database and read back by another, or
read from the file it was imported from, hashes alike.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

FINGERPRINT_VERSION = 1


def corpus_fingerprint(frame: pd.DataFrame) -> dict:
    """Counts and a SHA-256 of a primary-metric fit frame (fits.FIT_COLUMNS), independent of row order."""
    if frame.empty:
        return {"version": FINGERPRINT_VERSION, "families": 0, "runs": 0, "observations": 0,
                "sha256": hashlib.sha256(b"").hexdigest()}
    text = pd.DataFrame({
        "family": frame["family"].astype(str), "model": frame["model"].astype(str),
        "seed": frame["seed"].astype(str) if "seed" in frame.columns else pd.Series("", index=frame.index),
        **{col: _numbers(frame[col]) for col in ("params", "tokens", "value", "epochs") if col in frame.columns},
    })
    joined = text[text.columns[0]]
    for col in text.columns[1:]:
        joined = joined + "\x1f" + text[col]
    rows = np.sort(joined.to_numpy(dtype=str))
    digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return {"version": FINGERPRINT_VERSION, "families": int(text["family"].nunique()),
            "runs": int(text[["family", "model", "seed"]].drop_duplicates().shape[0]),
            "observations": int(len(text)), "sha256": digest}


def _numbers(column: pd.Series) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
    return pd.Series(np.char.mod("%.12g", values), index=column.index)

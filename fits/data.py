"""Loading a corpus's primary-metric observations into the frame every fit uses.

A *fit frame* is a pandas DataFrame with one row per checkpoint of one family's
primary metric: ``family, model, params, tokens, value, seed`` (and ``epochs``
where the source gives it). Everything downstream (policies, fits, backtests,
the public API) takes such frames.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

FIT_COLUMNS = ["family", "model", "params", "tokens", "value", "seed", "epochs"]

# Metric names that are scores, not losses: never chosen as a family's primary metric.
_NOT_A_LOSS = re.compile(r"(?:acc|accuracy|err_|error|bpb|score|exact|f1|^BB |bleu|rouge)", re.I)  # no capture group: pandas warns on one
_SPLIT_RANK = {"validation": 0, "unknown": 1, "": 1, "train": 2}


def read_corpus(path) -> pd.DataFrame:
    """Read a canonical CSV (optionally gzipped) with the dtypes fits need."""
    return pd.read_csv(
        path,
        dtype={"family": str, "model": str, "arch": str, "seed": str, "metric": str, "split": str,
               "dataset": str, "source": str},
        keep_default_na=False,
        na_values={"params": [""], "tokens": [""], "value": [""], "step": [""], "epochs": [""],
                   "flops": [""]},
    )


def read_family_table(path) -> pd.DataFrame:
    """Read a families file (``family, primary_metric, ...``) as in shared/corpus/families.csv."""
    fams = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "family" not in fams.columns or "primary_metric" not in fams.columns:
        raise ValueError(f"{path}: a families file needs the columns 'family' and 'primary_metric'")
    return fams


def choose_primary_metric(rows: pd.DataFrame) -> str:
    """The canonical rule: a loss, validation over unknown over training, then the most reported."""
    metrics = rows[["metric", "split"]].copy()
    metrics = metrics[~metrics["metric"].str.contains(_NOT_A_LOSS)]
    if metrics.empty:
        raise ValueError(f"family {rows['family'].iloc[0]!r} reports no loss-like metric")
    metrics["rank"] = metrics["split"].map(_SPLIT_RANK).fillna(1)
    summary = metrics.groupby("metric").agg(rank=("rank", "min"), n=("rank", "size"))
    summary = summary.sort_values(["rank", "n"], ascending=[True, False])
    return str(summary.index[0])


def primary_observations(corpus: pd.DataFrame, families: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each family's primary-metric rows as a fit frame, sorted by family, params, model, tokens.

    ``families`` (optional) names the primary metric of each family; families it
    does not list fall back to :func:`choose_primary_metric`.
    """
    named = {} if families is None else dict(zip(families["family"], families["primary_metric"]))
    parts = []
    for family, rows in corpus.groupby("family", sort=True):
        metric = named.get(family) or choose_primary_metric(rows)
        part = rows[rows["metric"] == metric]
        if not part.empty:
            parts.append(part)
    if not parts:
        return pd.DataFrame(columns=FIT_COLUMNS)
    return as_fit_frame(pd.concat(parts, ignore_index=True))


def as_fit_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with the fit columns (``seed`` and ``epochs`` optional) as a typed, sorted fit frame."""
    out = rows.copy()
    if "epochs" not in out.columns:
        out["epochs"] = np.nan
    if "seed" not in out.columns:
        out["seed"] = ""
    out = out[FIT_COLUMNS].copy()
    for col in ("params", "tokens", "value"):
        out[col] = out[col].astype(float)
    out["epochs"] = pd.to_numeric(out["epochs"], errors="coerce")
    out["seed"] = out["seed"].fillna("").astype(str)
    return out.sort_values(["family", "params", "model", "seed", "tokens"], ignore_index=True)


def load_primary(corpus_path, families_path=None) -> pd.DataFrame:
    """Read a canonical CSV and return its primary-metric fit frame.

    Without ``families_path``, a ``families.csv`` beside the corpus file is used if present.
    """
    corpus_path = Path(corpus_path)
    if families_path is None:
        beside = corpus_path.with_name("families.csv")
        families_path = beside if beside.exists() else None
    families = read_family_table(families_path) if families_path else None
    return primary_observations(read_corpus(corpus_path), families)


def run_key(frame: pd.DataFrame) -> pd.Series:
    """One label per training run: a model name with its seed (the ``run`` column where a frame carries it)."""
    if "run" in frame.columns:
        return frame["run"]
    seed = frame["seed"].astype(str) if "seed" in frame.columns else ""
    return frame["model"].astype(str) + "\x1f" + seed

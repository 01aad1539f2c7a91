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

from .canonical import read_canonical, read_families

FIT_COLUMNS = ["family", "model", "params", "tokens", "value", "seed", "epochs"]

# A name is loss-like when it says loss / cross-entropy / NLL / log-perplexity;
# names that also say accuracy, error rate, bits-per-byte or score are not.
_LOSS_RE = re.compile(r"loss|cross.?ent|\bnll\b|log.?perplexity|log.?ppl", re.IGNORECASE)
_NOT_LOSS_RE = re.compile(r"(^|[^a-z])(acc|accuracy|err|error|bpb|score)([^a-z]|$)", re.IGNORECASE)
_AGGREGATE_RE = re.compile(r"(^|[^a-z])(avg|average|mean|overall|all)([^a-z]|$)", re.IGNORECASE)


def is_loss_metric(name: str) -> bool:
    """True for a loss-like metric name (loss, cross-entropy, NLL, log-perplexity), never for a score."""
    return bool(_LOSS_RE.search(name)) and not _NOT_LOSS_RE.search(name)


def _metric_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (family, metric) of loss-like metrics: runs reporting it, best split rank, rows, aggregate name."""
    names = pd.Series(rows["metric"].unique())
    losses = names[names.map(is_loss_metric)]
    sub = rows.loc[rows["metric"].isin(losses), ["family", "metric", "model", "split"]]
    split = sub["split"].to_numpy(dtype=object)
    sub = sub.assign(split=np.select([split == "validation", split == "train"], [0, 1], 2))
    per_run = sub.drop_duplicates(["family", "metric", "model"])
    table = pd.DataFrame({
        "runs": per_run.groupby(["family", "metric"], sort=False).size(),
        "split": per_run.groupby(["family", "metric"], sort=False)["split"].min(),
        "rows": sub.groupby(["family", "metric"], sort=False).size(),
    }).reset_index()
    table["aggregate"] = table["metric"].map(lambda m: 0 if _AGGREGATE_RE.search(m) else 1)
    return table.sort_values(
        ["family", "runs", "split", "rows", "aggregate", "metric"],
        ascending=[True, False, True, False, True, True],
    )


def primary_metrics(rows: pd.DataFrame) -> pd.Series:
    """family -> primary metric of canonical rows, by the rule of :func:`choose_primary_metric`.

    Families without a loss-like metric are absent. One pass over all families (the importer's case).
    """
    return _metric_table(rows).drop_duplicates("family").set_index("family")["metric"]


def choose_primary_metric(rows: pd.DataFrame) -> str:
    """Pick one family's primary (fitting) metric from its canonical rows: the one rule of scaleplan.

    Only loss-like names count (``loss``, cross-entropy, NLL, log-perplexity;
    never accuracy/acc/err/bpb/score names). Among them, in order:
    1. the metric reported for the most runs of the family (a fit needs sizes);
    2. validation over training over unknown split (the metric's best split);
    3. the most rows (the source's headline curve is the densest one);
    4. an aggregate name (avg/mean/overall) over a per-domain one;
    5. alphabetical, so the choice is deterministic.
    Returns "" when the family has no loss-like metric (a curator, or the caller, must choose).
    ``rows`` needs ``metric``, ``model`` and ``split``; ``family`` is optional (one family).
    """
    if "family" not in rows.columns:
        rows = rows.assign(family="")
    chosen = primary_metrics(rows)
    return str(chosen.iat[0]) if len(chosen) else ""


def primary_observations(corpus: pd.DataFrame, families: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each family's primary-metric rows as a fit frame, sorted by family, params, model, tokens.

    ``families`` (optional) names the primary metric of each family; families it
    does not list get :func:`choose_primary_metric`'s. A family with neither raises
    ValueError (it reports no loss-like metric).
    """
    named = {} if families is None else {k: v for k, v in zip(families["family"], families["primary_metric"]) if v}
    chosen = primary_metrics(corpus)
    parts = []
    for family, rows in corpus.groupby("family", sort=True):
        metric = named.get(family) or chosen.get(family)
        if not metric:
            raise ValueError(f"family {family!r} reports no loss-like metric")
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
    """Read and validate a canonical CSV (fits.canonical) and return its primary-metric fit frame.

    Without ``families_path``, a ``families.csv`` beside the corpus file is used if present.
    """
    corpus_path = Path(corpus_path)
    if families_path is None:
        beside = corpus_path.with_name("families.csv")
        families_path = beside if beside.exists() else None
    families = read_families(families_path) if families_path else None
    rows, _ = read_canonical(corpus_path)
    return primary_observations(rows, families)


def run_key(frame: pd.DataFrame) -> pd.Series:
    """One label per training run: a model name with its seed (the ``run`` column where a frame carries it)."""
    if "run" in frame.columns:
        return frame["run"]
    seed = frame["seed"].astype(str) if "seed" in frame.columns else ""
    return frame["model"].astype(str) + "\x1f" + seed

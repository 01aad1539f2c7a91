"""Fixtures for the fits tests: the reference corpus (read from ../shared, never copied) and synthetic families.

Nothing here touches Django: fits is a pure library and its tests run without a database.
"""
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SHARED = Path(os.environ.get("SCALEPLAN_SHARED_DIR", Path(__file__).resolve().parents[3] / "shared"))
CORPUS = SHARED / "corpus" / "colpret.csv.gz"

# A Chinchilla-like truth (Hoffmann et al. 2022's E, A and exponents; B at their published scale).
TRUTH = {"E": 1.8, "A": 400.0, "alpha": 0.34, "B": 410.0, "beta": 0.28}


def true_loss(n, d, truth=TRUTH):
    n = np.asarray(n, dtype=float)
    d = np.asarray(d, dtype=float)
    return truth["E"] + truth["A"] / n ** truth["alpha"] + truth["B"] / d ** truth["beta"]


def synthetic_family(seed, *, sizes=np.geomspace(5e7, 8e8, 5), tokens=np.geomspace(2e8, 3e10, 30),
                     point_noise=0.005, run_noise=0.0, truth=TRUTH, name="synthetic") -> pd.DataFrame:
    """A fit frame: every size trained over ``tokens``; log-normal noise per checkpoint and per run."""
    rng = np.random.default_rng(seed)
    parts = []
    for n in sizes:
        run_offset = rng.normal(0.0, run_noise) if run_noise else 0.0
        noise = rng.normal(0.0, point_noise, tokens.size) if point_noise else 0.0
        parts.append(pd.DataFrame({
            "family": name,
            "model": f"{name}-{n:.3g}",
            "params": float(n),
            "tokens": tokens,
            "value": true_loss(n, tokens, truth) * np.exp(run_offset + noise),
            "seed": "",
            "epochs": np.nan,
        }))
    return pd.concat(parts, ignore_index=True)


def write_corpus_slice(folder: Path, families, name: str = "slice.csv") -> Path:
    """A canonical CSV of some corpus families (every metric, as stored), with its families.csv beside it."""
    from fits.canonical import CANONICAL_COLUMNS

    if not CORPUS.exists():
        pytest.skip(f"reference corpus not found at {CORPUS}")
    raw = pd.read_csv(CORPUS, dtype=str, keep_default_na=False)
    raw[raw["family"].isin(families)][list(CANONICAL_COLUMNS)].to_csv(folder / name, index=False)
    table = pd.read_csv(CORPUS.with_name("families.csv"), dtype=str, keep_default_na=False)
    table[table["family"].isin(families)].to_csv(folder / "families.csv", index=False)
    return folder / name


@pytest.fixture(scope="session")
def corpus_frame():
    """The reference corpus's primary-metric fit frame (all families)."""
    from fits.data import load_primary

    if not CORPUS.exists():
        pytest.skip(f"reference corpus not found at {CORPUS} (set SCALEPLAN_SHARED_DIR)")
    return load_primary(CORPUS)


@pytest.fixture
def family(corpus_frame):
    """family(name) -> that family's fit frame."""
    def get(name):
        out = corpus_frame[corpus_frame["family"] == name]
        assert not out.empty, f"family {name} missing from the corpus"
        return out.reset_index(drop=True)

    return get

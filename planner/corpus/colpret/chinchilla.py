"""Chinchilla IsoFLOP points, digitised (README 2.9)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .common import Family, Part, SEED, cite, observations
from .manifest import CHINCHILLA

SOURCE = cite("Hoffmann+22 Chinchilla arXiv:2203.15556 (points digitised)")
# Digitised sizes form tight clusters (spread < 1e-4); the closest distinct sizes (1,424M, 1,429M) are 3.5e-3 apart.
CLUSTER_GAP = 1e-3


def _round_sig(x: np.ndarray, digits: int) -> np.ndarray:
    return np.array([float(f"{v:.{digits - 1}e}") for v in x])


def cluster_sizes(sizes: pd.Series) -> pd.Series:
    """Each digitised size replaced by its cluster's median, rounded to 4 significant digits."""
    order = sizes.sort_values()
    cluster = (order.pct_change().fillna(0) > CLUSTER_GAP).cumsum()
    medians = order.groupby(cluster).transform("median")
    return pd.Series(_round_sig(medians.to_numpy(), 4), index=order.index).reindex(sizes.index)


def read(root: Path, paths: tuple[str, ...]) -> Part:
    points = pd.read_csv(root / CHINCHILLA)
    points["N"] = cluster_sizes(points["Model Size"])
    # One marker was digitised twice: same size and loss, FLOPs equal to the 4 digits a run name carries.
    # The reference conversion keeps the later copy.
    points["flop_label"] = points["Training FLOP"].map(lambda f: f"{f:.3e}")
    twice = points.duplicated(subset=["N", "flop_label", "loss"], keep="last")
    warnings = [f"chinchilla: dropped {int(twice.sum())} point(s) digitised twice "
                f"({', '.join(points.loc[twice, 'flop_label'])} FLOPs)"] if twice.any() else []
    points = points[~twice]
    tokens = points["Training FLOP"] / (6 * points["N"])
    flop_label = points["flop_label"]
    rows = observations(
        family="chinchilla", model="chinchilla-N" + (points["N"] / 1e6).map(lambda n: f"{n:g}") + "M-C" + flop_label,
        arch="dec", params=points["N"].round().astype("int64"), tokens=tokens, seed=SEED, dataset="MassiveText",
        epochs=1.0, flops=points["Training FLOP"], metric="loss", value=points["loss"], split="unknown",
        source=SOURCE,
    )
    family = Family("chinchilla", "dec", "MassiveText", "loss", SOURCE,
                    "one run per IsoFLOP point (each had its own schedule); params = digitised size cluster median to "
                    "4 significant digits (43 sizes); tokens = FLOP / 6N; loss quantised by the colour map; "
                    "split not stated")
    return Part(rows, [family], warnings)

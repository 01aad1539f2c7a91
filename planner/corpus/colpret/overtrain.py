"""Over-training runs, final evaluations (README 2.15)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .common import Family, Part, SEED, cite, observations
from .manifest import OVERTRAIN

SOURCE = cite("Gadre+24 LMs scale reliably with over-training arXiv:2403.08540")
FAMILIES = {"c4_original": ("overtrain-C4", "C4"), "rpj": ("overtrain-RedPajama", "RedPajama"),
            "rw_original": ("overtrain-RefinedWeb", "RefinedWeb")}


def read(root: Path, paths: tuple[str, ...]) -> Part:
    # flops are exact integers, some above 2^63: read them as text and convert to float.
    runs = pd.read_csv(root / OVERTRAIN, index_col=0, dtype={"flops": str})
    unknown = set(runs["dataset_name"]) - set(FAMILIES)
    if unknown:
        raise ValueError(f"{OVERTRAIN}: unknown dataset_name {sorted(unknown)}")
    family = runs["dataset_name"].map(lambda d: FAMILIES[d][0])
    run = dict(
        family=family,
        model="overtrain-" + runs["dataset_name"] + "-" + runs["model_name"] + "-x" + runs["tok_mult"].map(lambda m: f"{m:g}"),
        arch="dec", params=runs["N"].astype("int64"), tokens=runs["D"].astype(float), seed=SEED,
        dataset=runs["dataset_name"].map(lambda d: FAMILIES[d][1]), epochs=1.0, flops=runs["flops"].astype(float),
        split="validation", source=SOURCE,
    )
    # Losses and error rates; the loss bounds are not observations.
    metrics = [c for c in runs.columns
               if (c.startswith("loss_") and not c.startswith(("loss_upper_", "loss_lower_"))) or c.startswith("err_")]
    rows = pd.concat([observations(**run, metric=m, value=runs[m]) for m in metrics], ignore_index=True)
    families = [
        Family(name, "dec", text, "loss_openlm", SOURCE,
               f"every over-training run on {text} (ColPret's scaled set keeps only the largest multiplier per size); "
               "params = N, tokens = D, flops from the file; final evaluations only (trajectories missing from "
               "ColPret's copy); err_* are error rates; loss bounds not imported")
        for name, text in FAMILIES.values() if name in set(family)
    ]
    return Part(rows, families)

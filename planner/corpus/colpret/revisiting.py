"""Revisiting Neural Scaling Laws, language part: LaMDA LM, its BIG-bench scores, NMT (README 2.12)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .common import Family, Part, SEED, cite, observations
from .manifest import REVISITING

SOURCE = cite("Alabdulmohsin+22 Revisiting Neural Scaling Laws arXiv:2209.06640")
BB_MODEL = "2.62e+08"  # the BIG-bench rows ('262M') are scores of this LM model
NMT_PARAMS = 300_000_000  # from the benchmark's README; ColPret has no count


def _nmt_slug(model: str) -> str:
    return model.replace(", ", "-").replace(" ", "")


def read(root: Path, paths: tuple[str, ...]) -> Part:
    # dtype=str keeps the LM Model labels ('1.68e+07') as written, for the run names.
    table = pd.read_csv(root / REVISITING, dtype={"Model": str})
    table = table.drop_duplicates()  # each LM curve appears several times
    table = table.drop(columns="Training")  # marks the fitted vs extrapolated part of a curve, not a split
    lm, bb, nmt = (table[table["Domain"] == domain] for domain in ("LM", "BB", "NMT"))
    unknown = set(table["Domain"]) - {"LM", "BB", "NMT"}
    if unknown:
        raise ValueError(f"{REVISITING}: unknown Domain {sorted(unknown)}")
    lm_params = {label: round(float(label)) for label in lm["Model"].unique()}
    if BB_MODEL not in lm_params:
        raise ValueError(f"{REVISITING}: no LM model {BB_MODEL} to attach the BIG-bench scores to")
    common = dict(seed=SEED, epochs=1.0, split="validation", source=SOURCE)
    parts = [
        observations(family="lambda", model="lamda-lm-" + lm["Model"], arch="dec", params=lm["Model"].map(lm_params),
                     tokens=lm["Seen Examples"], dataset="LaMDA pretraining data", metric=lm["Task"],
                     value=lm["Loss"], **common),
        observations(family="lambda", model=f"lamda-lm-{BB_MODEL}", arch="dec", params=lm_params[BB_MODEL],
                     tokens=bb["Seen Examples"], dataset="LaMDA pretraining data", metric="BB " + bb["Task"],
                     value=bb["Loss"], **common),
        observations(family="revisiting-nmt-" + nmt["Model"].map(_nmt_slug), model="nmt-" + nmt["Model"].map(_nmt_slug),
                     arch=(nmt["Model"] == "Dec-only").map({True: "dec", False: "enc-dec"}), params=NMT_PARAMS,
                     tokens=nmt["Seen Examples"], dataset="NMT", metric=nmt["Task"], value=nmt["Loss"], **common),
    ]
    families = [Family("lambda", "dec", "LaMDA pretraining data", "val_loss", SOURCE,
                       "5 decoder-only LaMDA-architecture sizes (ColPret mislabels them enc-dec); val_loss is a "
                       "normalised loss (0.85-0.999, every curve starts at 0.999), not nats; BIG-bench scores of the "
                       "262M model attached to lamda-lm-2.62e+08; duplicate rows dropped")]
    for model in nmt["Model"].unique():
        slug = _nmt_slug(model)
        families.append(Family(f"revisiting-nmt-{slug}", "dec" if model == "Dec-only" else "enc-dec", "NMT",
                               "log_perplexity", SOURCE,
                               "single run; translation log-perplexity; params 300M from the benchmark README; "
                               "tokens = Seen Examples, whose unit ('examples or tokens') is uncertain"))
    return Part(pd.concat(parts, ignore_index=True), families)

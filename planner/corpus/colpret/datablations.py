"""Datablations: validation curves (2.7a), contour final losses (2.7b), C4+Python mixes (2.7c)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from .common import Family, Part, SEED, cite, observations
from .manifest import DATABLATIONS_CODE, DATABLATIONS_CONTOUR, DATABLATIONS_CURVES

SOURCE = cite("Muennighoff+23 Scaling Data-Constrained LMs arXiv:2305.16264")
# The contour file's exact counts for the curve sizes (ColPret uses 2.8e9, 4.2e9, 8.7e9).
CURVE_PARAMS = {"2.8B": 2_810_000_000, "4.2B": 4_246_500_000, "8.7B": 8_670_000_000}
# Contour runs that repeat the end points of the 2.8B/4.2B/8.7B c4 curves; keeping them would double count.
CURVE_END_POINT_PREFIXES = ("2b855b", "4b284b", "8b7178b")
_NAME = re.compile(r"\{'name': '([^']+)'\}")
_PART = re.compile(r"(\d+)([mb])(\d?)")


def read_curves(root: Path, paths: tuple[str, ...]) -> Part:
    curves = pd.read_csv(root / DATABLATIONS_CURVES)
    unknown = set(curves["num_params"]) - set(CURVE_PARAMS)
    if unknown:
        raise ValueError(f"{DATABLATIONS_CURVES}: unknown num_params {sorted(unknown)}")
    repeats = curves["epochs"].astype(int).astype(str)
    family = "GPT2-" + curves["data"] + "-" + repeats
    # The file's flops column is not 6ND (ratio 0.98 to 2.8e5), so it is left out.
    rows = observations(
        family=family, model="GPT2-" + curves["num_params"] + "-" + curves["data"] + "-" + repeats, arch="dec",
        params=curves["num_params"].map(CURVE_PARAMS), tokens=curves["token_num"].astype(float), seed=SEED,
        dataset=curves["data"], epochs=curves["token_num"] / curves["tokens_per_epoch"], metric="loss",
        value=curves["loss"], split="validation", source=SOURCE,
    )
    families = [
        Family(name, "dec", name.split("-")[1], "loss", SOURCE,
               f"ColPret scaled set: 2.8B/4.2B/8.7B GPT-2-style models, {name.split('-')[2]} passes over the unique "
               "data; params = contour-file exact counts; tokens = token_num; the file's flops column is unusable")
        for name in sorted(set(family))
    ]
    return Part(rows, families)


def _splits(name: str, parts: int = 3) -> list[list[str]]:
    """Every way to read `name` as `parts` size labels like '2b8', '55b', '100m'."""
    if parts == 0:
        return [[]] if not name else []
    found = []
    for end in range(2, len(name) + 1):
        head = name[:end]
        if _PART.fullmatch(head):
            found += [[head, *rest] for rest in _splits(name[end:], parts - 1)]
    return found


def _label_value(label: str) -> float:
    whole, unit, tenth = _PART.fullmatch(label).groups()
    return float(f"{whole}.{tenth or 0}") * (1e6 if unit == "m" else 1e9)


def _label_text(label: str) -> str:
    whole, unit, tenth = _PART.fullmatch(label).groups()
    return f"{whole}{'.' + tenth if tenth else ''}{unit.upper()}"


def parse_contour_name(name: str, params: float, tokens: float) -> tuple[str, str, str]:
    """(params, tokens, unique tokens) labels of a contour run name, matched to its params and tokens.

    Names like '2b855b11b' split several ways; the split closest to the file's columns is the right one.
    """
    candidates = [c for c in _splits(name) if all(_label_value(label) > 0 for label in c)]
    if not candidates:
        raise ValueError(f"contour run name {name!r} is not <params><tokens><unique tokens>")
    return min(candidates, key=lambda c: abs(np.log(_label_value(c[0]) / params))
               + abs(np.log(_label_value(c[1]) / tokens)))


def read_contour(root: Path, paths: tuple[str, ...]) -> Part:
    contour = pd.read_csv(root / DATABLATIONS_CONTOUR)
    names = contour["model_args"].str.extract(_NAME)[0]
    if names.isna().any():
        raise ValueError(f"{DATABLATIONS_CONTOUR}: row {names.isna().idxmax() + 2}: model_args has no run name")
    contour = contour.assign(name=names)[~names.str.startswith(CURVE_END_POINT_PREFIXES)]
    labels = [parse_contour_name(n, p, t) for n, p, t in zip(contour["name"], contour["num_params"], contour["token_num"])]
    unique = np.array([_label_value(label[2]) for label in labels])
    family = pd.Series(["datablations-contour-c4-U" + _label_text(label[2]) for label in labels], index=contour.index)
    # tokens_per_epoch is a placeholder (1.5e9) and the CSV epochs are wrong for a mis-split name: use U from the name.
    rows = observations(
        family=family, model="datablations-" + contour["name"], arch="dec",
        params=contour["num_params"].round().astype("int64"), tokens=contour["token_num"].astype(float), seed=SEED,
        dataset=contour["data"], epochs=contour["token_num"].to_numpy() / unique, flops=contour["flops"].astype(float),
        metric="openLM_loss", value=contour["openLM_loss"], split="validation", source=SOURCE,
    )
    families = [
        Family(name, "dec", "c4", "openLM_loss", SOURCE,
               f"datablations contour runs sharing unique-data budget U={name.rsplit('-U', 1)[1]} (a judgment call: "
               "ColPret leaves them ungrouped); params and total tokens vary; final loss only; epochs = tokens / U")
        for name in dict.fromkeys(family)
    ]
    return Part(rows, families)


def read_code(root: Path, paths: tuple[str, ...]) -> Part:
    code = pd.read_csv(root / DATABLATIONS_CODE)
    # 'epochs' is the C4 share in percent and 'Seed' selects the validation set (README 2.7c).
    c4_share = code["epochs"].astype(int)
    metric = code["Seed"].map({1: "val_loss_c4", 2: "val_loss_python"})
    if metric.isna().any():
        raise ValueError(f"{DATABLATIONS_CODE}: row {metric.isna().idxmax() + 2}: Seed must be 1 (C4) or 2 (Python)")
    family = "datablations-c4py-" + c4_share.astype(str) + "pct"
    rows = observations(
        family=family, model="datablations-4b284b84b" + c4_share.astype(str) + "c4py", arch="dec",
        params=4_246_500_000, tokens=code["token_num"].astype(float), seed=SEED,
        dataset="c4 " + c4_share.astype(str) + "% + python " + (100 - c4_share).astype(str) + "%", epochs=1.0,
        metric=metric, value=code["loss"], split="validation", source=SOURCE,
    )
    families = [
        Family(f"datablations-c4py-{share}pct", "dec", f"c4 {share}% + python {100 - share}%", "val_loss_c4", SOURCE,
               f"single run, 4.2B params, 84B tokens of a mix with {share}% C4 and {100 - share}% Python "
               "(the file's 'epochs' column is the C4 share); val_loss_python also recorded")
        for share in sorted(set(c4_share))
    ]
    return Part(rows, families)

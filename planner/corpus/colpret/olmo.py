"""OLMo W&B evaluation exports (README 2.2)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from .common import Family, Part, SEED, cite, observations, read_wandb

TOKENS_PER_STEP = 4e6  # ColPret's constant; the official batch is 4,194,304 (tokens are approximate)
PARAMS = {"OLMo-1B": 1_000_000_000, "OLMo-7B": 7_000_000_000, "OLMo-7B-Twin-2T": 7_000_000_000}
FAMILY_OF = {"OLMo-1B": "olmo", "OLMo-7B": "olmo", "OLMo-7B-Twin-2T": "olmo-7b-twin-2t"}
HARMONISED = "c4_en_val_loss"
# The sizes were evaluated on differently named C4-en sets; this maps each to the shared primary.
C4_EN_SOURCE = {
    "OLMo-1B": "v2-small-c4_en-validation/CrossEntropyLoss",
    "OLMo-7B": "c4_en-validation/CrossEntropyLoss",
    "OLMo-7B-Twin-2T": "c4_en-validation/loss_from_ppl",
}
DATASET = "Dolma"
SOURCE = cite("Groeneveld+24 OLMo arXiv:2402.00838 (W&B logs)")
_COLUMN = re.compile(r"^(?:Group: )?(?P<run>.+?) - eval/(?P<metric>.+)$")


def _model(run: str) -> str:
    return re.sub(r"-run-\d+$", "", run.strip())


def read(root: Path, paths: tuple[str, ...]) -> Part:
    frames = []
    for path in paths:
        long = read_wandb(root / path)
        parsed = long["column"].str.extract(_COLUMN)
        if parsed["run"].isna().any():
            bad = long.loc[parsed["run"].isna(), "column"].iloc[0]
            raise ValueError(f"{path}: column {bad!r} is not '<run> - eval/<metric>'")
        long["model"] = parsed["run"].map(_model)
        long["metric"] = parsed["metric"]
        frames.append(long[["model", "metric", "Step", "value"]])
    long = pd.concat(frames, ignore_index=True)
    unknown = set(long["model"]) - set(PARAMS)
    if unknown:
        raise ValueError(f"unknown OLMo runs: {sorted(unknown)}")
    # Restarts re-logged some steps and some series were exported twice (one export covering only part of
    # the steps); the copies agree, so one value per step, over the union of the exports.
    series = long.groupby(["model", "metric", "Step"], as_index=False).agg(
        value=("value", "mean"), low=("value", "min"), high=("value", "max"))
    disagree = (series["high"] - series["low"]) > 1e-6 * series["value"].abs()
    series = series.drop(columns=["low", "high"])
    warnings = [
        f"OLMo: {model} {metric} at Step {step}: copies disagree; their mean is used"
        for model, metric, step in series.loc[disagree, ["model", "metric", "Step"]].head(5).itertuples(index=False)
    ]

    # A perplexity duplicates the same set's CrossEntropyLoss (exp of it); keep it only where it is the sole record.
    is_ppl = series["metric"].str.endswith("/Perplexity")
    evaluated = set(zip(series["model"], series["metric"]))
    has_ce = [
        (m, metric.removesuffix("/Perplexity") + "/CrossEntropyLoss") in evaluated
        for m, metric in zip(series["model"], series["metric"])
    ]
    series = series[~(is_ppl & np.array(has_ce))].copy()
    ppl = series["metric"].str.endswith("/Perplexity")
    series.loc[ppl, "value"] = np.log(series.loc[ppl, "value"])
    series.loc[ppl, "metric"] = series.loc[ppl, "metric"].str.replace(r"/Perplexity$", "/loss_from_ppl", regex=True)

    primary = [
        series[(series["model"] == model) & (series["metric"] == metric)].assign(metric=HARMONISED)
        for model, metric in C4_EN_SOURCE.items()
    ]
    series = pd.concat([series, *primary], ignore_index=True)
    present = set(series["model"])
    harmonised = set(series.loc[series["metric"] == HARMONISED, "model"])
    warnings += [
        f"OLMo: {model} lacks {C4_EN_SOURCE[model]!r} in the files read, so it has no {HARMONISED} rows"
        for model in sorted(present - harmonised)
    ]
    rows = observations(
        family=series["model"].map(FAMILY_OF), model=series["model"], arch="dec",
        params=series["model"].map(PARAMS), tokens=series["Step"] * TOKENS_PER_STEP, step=series["Step"].astype("int64"),
        seed=SEED, dataset=DATASET, epochs=1.0, metric=series["metric"], value=series["value"],
        split="validation", source=SOURCE,
    )
    note = (
        "tokens = Step x 4e6 (ColPret; official batch 4,194,304, so ~4.9% low); primary c4_en_val_loss harmonised "
        "from v2-small-c4_en-validation/CrossEntropyLoss (1B), c4_en-validation/CrossEntropyLoss (7B), "
        "ln(c4_en-validation/Perplexity) (7B-Twin-2T); source-named rows kept; Perplexity dropped where the "
        "set's CrossEntropyLoss exists"
    )
    families = [
        Family("olmo", "dec", DATASET, HARMONISED, SOURCE, "ColPret scaled set: OLMo-1B + OLMo-7B. " + note),
        Family("olmo-7b-twin-2t", "dec", DATASET, HARMONISED, SOURCE,
               "OLMo-7B recipe on other hardware, kept apart from the size family. " + note),
    ]
    return Part(rows, families, warnings)

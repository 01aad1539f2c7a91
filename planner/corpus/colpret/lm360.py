"""LLM360 runs: K2-65B W&B exports (2.3), Mamba-3B training log (2.4), Amber-6.7B W&B evaluations (2.5)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .common import Family, Part, SEED, cite, observations, read_wandb
from .manifest import MAMBA

# ColPret's K2 assumptions: the main loss series ends at 1.4T tokens at W&B Step 495,195,720;
# evaluation checkpoint 360 is the end of training. The constant-batch mapping is an inference.
K2_TOKENS = 1.4e12
K2_LAST_STEP = 495_195_720
K2_LAST_CHECKPOINT = 360
K2_LOSS = "k2 training - lm loss"
K2_EVAL_PREFIX = "k2 eval - "
K2_SOURCE = cite("LLM360 K2-65B W&B logs (LLM360 arXiv:2312.06550)")

MAMBA_TOKENS, MAMBA_STEPS = 500e9, 176_703  # ColPret's assumption: 500B tokens over 176,703 steps
MAMBA_SOURCE = cite("LLM360 Mamba-3B training log (ColPret: 'llm360-private')")

AMBER_TOKENS, AMBER_LAST_CHECKPOINT = 1.25e12, 356  # ColPret's Amber constants (approximate)
AMBER_PRIMARY = "Pile-CC loss_from_ppl"
AMBER_SOURCE = cite("LLM360 Amber-7B W&B evals (arXiv:2312.06550)")


def read_k2(root: Path, paths: tuple[str, ...]) -> Part:
    parts, warnings = [], []
    for path in paths:
        long = read_wandb(root / path)
        if (long["column"] == K2_LOSS).any():
            # The "training spikes" run overlaps the main run's Steps; only the main run is the curve.
            loss = long[long["column"] == K2_LOSS]
            tokens = loss["Step"] / K2_LAST_STEP * K2_TOKENS
            parts.append(observations(metric=K2_LOSS, value=loss["value"], tokens=tokens, split="train",
                                      epochs=tokens / K2_TOKENS))
        evals = long[long["column"].str.startswith(K2_EVAL_PREFIX)]
        # The spike branch and the second learning-rate stage ("ministage") are not the main run.
        tokens = evals["Step"] / K2_LAST_CHECKPOINT * K2_TOKENS
        parts.append(observations(metric=evals["column"], value=evals["value"], tokens=tokens, split="validation",
                                  epochs=tokens / K2_TOKENS))
    rows = pd.concat(parts, ignore_index=True)
    if not (rows["metric"] == K2_LOSS).any():
        warnings.append(f"K2: no {K2_LOSS!r} column in the exports read; the family has no primary metric rows")
    rows = rows.assign(family="k2", model="K2-65B", arch="dec", params=65_000_000_000, seed=SEED,
                       dataset="LLM360/K2Datasets", source=K2_SOURCE)
    family = Family("k2", "dec", "LLM360/K2Datasets", K2_LOSS, K2_SOURCE,
                    "single run; tokens = Step / 495,195,720 x 1.4T (loss) and checkpoint / 360 x 1.4T (evals), "
                    "ColPret's assumed total; spike run, spike evals and ministage evals dropped; "
                    "only a training loss exists")
    return Part(rows, [family], warnings)


def read_mamba(root: Path, paths: tuple[str, ...]) -> Part:
    log = pd.read_csv(root / MAMBA)
    tokens = log["step"] * (MAMBA_TOKENS / MAMBA_STEPS)
    rows = observations(
        family="llm360Mamba", model="LLM360Mamba3B", arch="ssm", params=3_000_000_000, tokens=tokens,
        step=log["step"].astype("int64"), seed=SEED, dataset="LLM360/AmberDatasets", epochs=1.0,
        metric="loss", value=log["loss"], split="train", source=MAMBA_SOURCE,
    )
    family = Family("llm360Mamba", "ssm", "LLM360/AmberDatasets", "loss", MAMBA_SOURCE,
                    "single run; tokens = step x 500e9 / 176,703 (ColPret's assumption); the loss definition is "
                    "unknown (21.8 at start, ~0.8 late, min 0.107): not per-token nats, do not benchmark laws on it")
    return Part(rows, [family], ["llm360Mamba: loss of unknown definition (README 2.4); flagged in family notes"])


def _amber_metric(column: str) -> tuple[str, bool]:
    """(canonical metric name, is a perplexity) for an Amber export column."""
    kind, _, name = column.partition(" - ")
    if kind == "perplexity_eval":
        return f"{name} loss_from_ppl", True
    if kind == "downstream_eval":
        return column, False
    raise ValueError(f"unexpected Amber column {column!r}")


def read_amber(root: Path, paths: tuple[str, ...]) -> Part:
    frames = []
    for path in paths:
        long = read_wandb(root / path)
        long = long[long["Step"] > 0]  # checkpoint 0 is 0 tokens
        names = long["column"].map(_amber_metric)
        value = np.where(names.str[1], np.log(long["value"].astype(float)), long["value"])
        frames.append(pd.DataFrame({"metric": names.str[0].to_numpy(), "checkpoint": long["Step"].to_numpy(),
                                    "value": value}))
    long = pd.concat(frames, ignore_index=True)
    tokens = long["checkpoint"] * (AMBER_TOKENS / AMBER_LAST_CHECKPOINT)
    rows = observations(
        family="amber", model="Amber-6.7B", arch="dec", params=6_700_000_000, tokens=tokens, seed=SEED,
        dataset="LLM360/AmberDatasets", epochs=tokens / AMBER_TOKENS, metric=long["metric"], value=long["value"],
        split="validation", source=AMBER_SOURCE,
    )
    family = Family("amber", "dec", "LLM360/AmberDatasets", AMBER_PRIMARY, AMBER_SOURCE,
                    "single run, evaluations only (the training-loss export is missing from ColPret's copy); "
                    "tokens = checkpoint x 1.25T / 356 (ColPret, approximate); 'average per doc loss_from_ppl' is a "
                    "log of averaged perplexities, never primary")
    return Part(rows, [family])

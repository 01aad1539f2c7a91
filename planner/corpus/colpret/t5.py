"""Pile-T5 t5x summaries (README 2.6)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .common import Family, Part, SEED, cite, observations
from .manifest import T5_PILE

PARAMS = {"base": 247_586_304, "large": 783_173_632, "xl": 2_849_804_288, "xxl": 11_135_426_560}
TOKENS_PER_STEP = 1e6  # ColPret's rule (the batch is 2,048 x 512 = 1,048,576 input tokens)
# cross_ent_loss is a batch sum; at step 0 it equals the per-token loss x 2,048 sequences x 114 target tokens.
TARGET_TOKENS_PER_BATCH = 233_472
SOURCE = cite("Pile-T5 (EleutherAI 2024) t5x logs")


def read(root: Path, paths: tuple[str, ...]) -> Part:
    logs = pd.read_csv(root / T5_PILE, usecols=["model_name", "steps", "val_perplexity", "cross_ent_loss"])
    logs = logs[logs["steps"] > 0]  # step 0 is 0 tokens
    unknown = set(logs["model_name"]) - set(PARAMS)
    if unknown:
        raise ValueError(f"{T5_PILE}: unknown model_name {sorted(unknown)}")
    run = dict(
        family="t5-pile", model="pile-t5-" + logs["model_name"], arch="enc-dec", params=logs["model_name"].map(PARAMS),
        tokens=logs["steps"] * TOKENS_PER_STEP, step=logs["steps"].astype("int64"), seed=SEED, dataset="Pile",
        epochs=1.0, source=SOURCE,
    )
    # The per-token training summaries are corrupted (negative: counter overflow); the batch sums are intact.
    rows = pd.concat([
        observations(**run, metric="val_loss_from_ppl", value=np.log(logs["val_perplexity"]), split="validation"),
        observations(**run, metric="train_ce_per_target_token_derived",
                     value=logs["cross_ent_loss"] / TARGET_TOKENS_PER_BATCH, split="train"),
    ], ignore_index=True)
    family = Family("t5-pile", "enc-dec", "Pile", "val_loss_from_ppl", SOURCE,
                    "4 sizes; tokens = steps x 1e6 (ColPret); val_loss_from_ppl = ln of a t5x denoiser perplexity, "
                    "0.033-0.078 after step 0: not per-token nats; train_ce_per_target_token_derived = "
                    "cross_ent_loss / 233,472 (assumes 114 target tokens); per-token t5x summaries not imported")
    return Part(rows, [family])

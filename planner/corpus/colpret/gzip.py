"""gzip / PCFG data-complexity runs (README 2.13)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .common import Family, Part, SEED, cite, observations
from .manifest import GZIP

SOURCE = cite("Pandey 2024 gzip Predicts Data-dependent Scaling Laws arXiv:2405.16684")
_DATASET = re.compile(r"^/gzipscale-(?P<ratio>[0-9.]+)-")


def read(root: Path, paths: tuple[str, ...]) -> Part:
    parts, ratios = [], []
    with open(root / GZIP, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                ratio = _DATASET.match(record["dataset_name"])["ratio"]
                params, tokens = int(record["model_size"]), float(record["token_ct"])
                train, valid = record["train_loss"], record["valid_loss"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{GZIP}: line {number}: not a gzip result record ({exc})") from exc
            ratios.append(ratio)
            run = dict(family=f"gzip-pcfg-{ratio}", model=f"gzip{ratio}-N{params}-D{int(tokens)}", arch="dec",
                       params=params, seed=SEED, dataset=f"PCFG gzip {ratio}", source=SOURCE)
            # valid_loss holds batches of one pass over the final model, not checkpoints: one point.
            parts.append(observations(**run, tokens=tokens, epochs=1.0, metric="valid_loss",
                                      value=float(np.mean(valid)), split="validation"))
            # The i-th of n training batches is placed at token_ct * i / n (padding ignored: approximate).
            batch = np.arange(1, len(train) + 1)
            parts.append(observations(**run, tokens=tokens * batch / len(train), step=batch,
                                      epochs=batch / len(train), metric="train_loss", value=np.asarray(train, float),
                                      split="train"))
    families = [
        Family(f"gzip-pcfg-{ratio}", "dec", f"PCFG gzip {ratio}", "valid_loss", SOURCE,
               f"synthetic PCFG data of gzip ratio {ratio} (a judgment call: grouped by compressibility; ColPret does "
               "not load these); 6 sizes x 5 budgets; valid_loss = mean of the final validation batches; train "
               "batches placed at token_ct x i / n")
        for ratio in dict.fromkeys(ratios)
    ]
    return Part(pd.concat(parts, ignore_index=True), families)

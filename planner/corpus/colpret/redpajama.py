"""RedPajama-INCITE digitised training curves (README 2.10)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .common import Family, Part, SEED, cite, observations

SOURCE = cite("Together RedPajama-INCITE blog 2023 (curves digitised)")
SPIKE = 0.1  # nats above the running minimum: a digitising artefact, not the curve


def read(root: Path, paths: tuple[str, ...]) -> Part:
    parts, warnings = [], []
    for path in paths:
        label = Path(path).stem  # "2.4B"
        curve = pd.read_csv(root / path, header=None, names=["tokens_b", "loss"], skipinitialspace=True)
        curve = curve.sort_values("tokens_b", kind="stable")
        best_before = curve["loss"].cummin().shift(1)
        spikes = curve["loss"] > best_before + SPIKE
        if spikes.any():
            warnings.append(f"redPajama {label}: dropped {int(spikes.sum())} digitising spikes (> {SPIKE} nats above "
                            "the running minimum)")
        curve = curve[~spikes]
        parts.append(observations(
            family="redPajama", model=f"redPajama{label}", arch="dec", params=round(float(label[:-1]) * 1e9),
            tokens=curve["tokens_b"] * 1e9, seed=SEED, dataset="RedPajama-1T", epochs=1.0, metric="train_loss",
            value=curve["loss"], split="train", source=SOURCE,
        ))
    family = Family("redPajama", "dec", "RedPajama-1T", "train_loss", SOURCE,
                    "ColPret scaled set: 2.4B and 6.7B (ColPret's labels; released as 3B and 7B); digitised; points "
                    "more than 0.1 nats above the running minimum dropped; only a training loss exists")
    return Part(pd.concat(parts, ignore_index=True), [family], warnings)

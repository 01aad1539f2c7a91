"""IBM ModuleFormer (MoE) checkpoints from the IBM sheet (README 2.11)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .common import Family, Part, SEED, cite, observations, parse_sizes
from .manifest import MODULEFORMER

SOURCE = cite("Shen+23 ModuleFormer arXiv:2306.04640 (IBM sheet)")
MOLM = {"ST-h1", "h1-k4", "st-deep-48l"}  # the released MoLM models share data and tokenizer
PRIMARY = "wikitext loss_from_ppl"
NOT_METRICS = {"Model", "data", "Params", "Effective Params", "tokens_seen", "Tokenizer"}


def _metric(column: str) -> str:
    return column[: -len("ppl")] + "loss_from_ppl" if column.endswith(" ppl") else column


def read(root: Path, paths: tuple[str, ...]) -> Part:
    sheet = pd.read_csv(root / MODULEFORMER, dtype={"tokens_seen": str, "Tokenizer": str})
    sheet = sheet.dropna(how="all")  # the blank rows between run blocks
    # End-of-training rows carry the dataset name instead of a token count: no tokens, so not usable.
    no_tokens = sheet["tokens_seen"].isin(sheet["data"].unique())
    sheet = sheet[~no_tokens].copy()
    sheet["Tokenizer"] = sheet["Tokenizer"].fillna("unknown-tokenizer")
    # A run is (Model, data, Tokenizer): ST-k2 was trained twice, Pile/GPT2 and IBM Pile/Codegen.
    sheet["model"] = ("ModuleFormer-" + sheet["Model"] + "-" + sheet["data"].str.replace(" ", "")
                      + "-" + sheet["Tokenizer"])
    # Active params per token; ST-k2 gives none, so its total stands in (flagged in its notes).
    active = parse_sizes(sheet["Effective Params"].fillna(sheet["Params"]), path=MODULEFORMER,
                         column="Effective Params").round().astype("int64")
    family = np.where(sheet["Model"].isin(MOLM), "moduleformer-molm",
                      "moduleformer-" + sheet["model"].str.removeprefix("ModuleFormer-"))
    run = dict(family=family, model=sheet["model"], arch="moe", params=active,
               tokens=parse_sizes(sheet["tokens_seen"], path=MODULEFORMER, column="tokens_seen"), seed=SEED, dataset=sheet["data"], split="validation",
               source=SOURCE)
    parts = []
    for column in [c for c in sheet.columns if c not in NOT_METRICS | {"model"}]:
        values = pd.to_numeric(sheet[column], errors="coerce")
        if column.endswith(" ppl"):
            values = np.log(values)
        parts.append(observations(**run, metric=_metric(column), value=values))
    rows = pd.concat(parts, ignore_index=True)
    note = ("wikitext loss_from_ppl = ln of lm-eval's word-level perplexity: nats per word, not per token; "
            "tokens = tokens_seen; end-of-training rows without a token count dropped; accuracies 0-100")
    families = []
    for name, group in sheet.assign(family=family).groupby("family", sort=False):
        total_only = group["Effective Params"].isna().any()
        text = ("the three released MoLM models (ST-h1, h1-k4, st-deep-48l): same data and tokenizer, different top-k "
                "and depth - a loose family (judgment call). " if name == "moduleformer-molm" else "single run. ")
        if total_only:
            text += "No active-parameter count is given: params = total params (4B). "
        families.append(Family(name, "moe", group["data"].iloc[0], PRIMARY, SOURCE, text + note))
    return Part(rows, families)

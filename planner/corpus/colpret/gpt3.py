"""GPT-3 digitised training curves and the model table (README 2.8)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .common import Family, Part, SEED, cite, observations, parse_sizes
from .manifest import GPT3_CURVES, GPT3_METADATA

SOURCE = cite("Brown+20 GPT-3 arXiv:2005.14165 (curves digitised)")
DATASET = "GPT-3 pretraining mix"
SPLITS = {"val_loss": "validation", "train_loss": "train"}


def _model_table(path: Path) -> pd.DataFrame:
    """Sheet rows (no header): name, params, layers, d_model, heads, d_head, batch, learning rate."""
    sheet = pd.read_excel(path, header=None, engine="openpyxl")
    return pd.DataFrame({
        "name": sheet[0].astype(str).str.split(" or ").str[0].str.strip(),
        "params": parse_sizes(sheet[1], path=GPT3_METADATA, column="B", first_line=1).round().astype("int64"),
    })


def _match(curve_model: str, table: pd.DataFrame) -> pd.Series:
    hits = table[table["name"].str.lower().str.contains(curve_model.lower(), regex=False)]
    if len(hits) != 1:
        raise ValueError(f"{GPT3_CURVES}: model {curve_model!r} matches {len(hits)} rows of {GPT3_METADATA}")
    return hits.iloc[0]


def read(root: Path, paths: tuple[str, ...]) -> Part:
    table = _model_table(root / GPT3_METADATA)
    curves = pd.read_csv(root / GPT3_CURVES)
    long = curves.melt(id_vars=["model", "step"], value_vars=list(SPLITS), var_name="metric").dropna(subset=["value"])
    # Digitising gives one y per pixel column, so several at one x: average them to one point.
    points = long.groupby(["model", "metric", "step"], as_index=False)["value"].mean()
    runs = pd.DataFrame([_match(m, table) for m in points["model"].unique()], index=points["model"].unique())
    rows = observations(
        family="gpt3", model=points["model"].map(runs["name"]), arch="dec", params=points["model"].map(runs["params"]),
        tokens=points["step"] * 1e9, seed=SEED, dataset=DATASET, epochs=1.0, metric=points["metric"],
        value=points["value"], split=points["metric"].map(SPLITS), source=SOURCE,
    )
    family = Family("gpt3", "dec", DATASET, "val_loss", SOURCE,
                    "8 sizes 125M-175B (nominal params from the paper's table); tokens = digitised x in billions; "
                    "pixel duplicates averaged per (model, metric, x); 0-8 crossing outliers per curve kept")
    return Part(rows, [family])

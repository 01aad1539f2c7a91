"""Turn a ColPret checkout (directory or pinned raw-file URL) into the canonical corpus."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from fits import CANONICAL_COLUMNS, FAMILIES_COLUMNS

from . import (bimix, chinchilla, datablations, fetch, gpt3, gzip, lm360, manifest, moduleformer, olmo, opt,
               overtrain, redpajama, revisiting, t5)
from .common import Family, Part


@dataclass(frozen=True)
class Reader:
    name: str
    files: tuple[str, ...]
    read: Callable[[Path, tuple[str, ...]], Part]
    cost: str  # what the corpus loses when the files are absent
    partial: bool = False  # True: reads whatever subset of its files is present


READERS = (
    Reader("OPT", (manifest.OPT_TRAJECTORIES, manifest.OPT_BIGBENCH), opt.read,
           "OPT loss curves (trajectories) or BIG-bench scores (opt.csv)", partial=True),
    Reader("OLMo", manifest.OLMO_EXPORTS, olmo.read, "OLMo evaluation series (families olmo, olmo-7b-twin-2t)",
           partial=True),
    Reader("K2", manifest.K2_EXPORTS, lm360.read_k2, "K2-65B training loss or evaluations (family k2)", partial=True),
    Reader("Mamba", (manifest.MAMBA,), lm360.read_mamba, "the llm360Mamba family"),
    Reader("Amber", manifest.AMBER_EXPORTS, lm360.read_amber, "Amber-6.7B evaluation series (family amber)",
           partial=True),
    Reader("T5-Pile", (manifest.T5_PILE,), t5.read, "the t5-pile family"),
    Reader("datablations curves", (manifest.DATABLATIONS_CURVES,), datablations.read_curves,
           "the 16 GPT2-<data>-<epochs> families"),
    Reader("datablations contour", (manifest.DATABLATIONS_CONTOUR,), datablations.read_contour,
           "the datablations-contour-c4-U* families"),
    Reader("datablations code", (manifest.DATABLATIONS_CODE,), datablations.read_code,
           "the datablations-c4py-* families"),
    Reader("GPT-3", (manifest.GPT3_CURVES, manifest.GPT3_METADATA), gpt3.read, "the gpt3 family"),
    Reader("Chinchilla", (manifest.CHINCHILLA,), chinchilla.read, "the chinchilla family"),
    Reader("RedPajama", manifest.REDPAJAMA, redpajama.read, "redPajama sizes", partial=True),
    Reader("ModuleFormer", (manifest.MODULEFORMER,), moduleformer.read, "the moduleformer-* families"),
    Reader("Revisiting", (manifest.REVISITING,), revisiting.read, "the lambda and revisiting-nmt-* families"),
    Reader("gzip", (manifest.GZIP,), gzip.read, "the gzip-pcfg-* families"),
    Reader("BiMix", manifest.BIMIX, bimix.read, "bimix-* families (ppls.pkl) or their domain weights (ratios.pkl)",
           partial=True),
    Reader("over-training", (manifest.OVERTRAIN,), overtrain.read, "the overtrain-* families"),
)


def manifest_paths() -> tuple[str, ...]:
    """Every ColPret path the converter reads, plus the licences that must travel with the data."""
    return tuple(path for reader in READERS for path in reader.files) + manifest.LICENCES


@dataclass(frozen=True)
class MissingFile:
    path: str
    reader: str
    cost: str

    def __str__(self) -> str:
        return f"{self.path} (absent; {self.reader}: loses {self.cost})"


@dataclass
class ConversionResult:
    rows: pd.DataFrame  # canonical columns, canonical order
    families: pd.DataFrame  # one row per family, like ../shared/corpus/families.csv
    missing: list[MissingFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def convert(source: str | Path, **download_options) -> ConversionResult:
    """Convert a ColPret checkout directory, or an https base URL of its raw files at a pinned commit."""
    text = str(source)
    if text.startswith(("http://", "https://")):
        with tempfile.TemporaryDirectory(prefix="colpret-") as tmp:
            fetch.download(text, manifest_paths(), Path(tmp), **download_options)
            result = convert_directory(Path(tmp))
        if not fetch.is_pinned(text):
            result.warnings.insert(0, f"{text} names a branch, not a commit: the data can change between imports")
        return result
    return convert_directory(Path(source))


def convert_directory(root: Path) -> ConversionResult:
    if not root.is_dir():
        raise FileNotFoundError(f"ColPret source {root} is not a directory")
    parts, missing, warnings = [], [], []
    for reader in READERS:
        present = tuple(p for p in reader.files if (root / p).is_file())
        absent = [p for p in reader.files if p not in present]
        missing += [MissingFile(p, reader.name, reader.cost) for p in absent]
        if not present or (absent and not reader.partial):
            if present:
                warnings.append(f"{reader.name}: skipped, it needs all of {', '.join(absent)}")
            continue
        try:
            part = reader.read(root, present)
        except KeyError as exc:
            raise ValueError(f"ColPret {reader.name}: column {exc} is missing from {', '.join(present)}") from exc
        except ValueError as exc:
            raise ValueError(f"ColPret {reader.name}: {exc}") from exc
        warnings += part.warnings
        if len(part.rows):
            parts.append(part)
    missing += [MissingFile(p, "licence", "the licence text that must travel with the data")
                for p in manifest.LICENCES if not (root / p).is_file()]
    rows = _canonical(pd.concat([p.rows for p in parts], ignore_index=True) if parts else pd.DataFrame())
    warnings += _duplicate_warnings(rows)
    families = _family_table(rows, [f for p in parts for f in p.families])
    return ConversionResult(rows, families, missing, warnings)


def _canonical(rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows.reindex(columns=list(CANONICAL_COLUMNS))
    if rows.empty:
        return rows
    rows["params"] = rows["params"].astype("int64")
    for column in ("tokens", "epochs", "flops", "value"):
        rows[column] = pd.to_numeric(rows[column], errors="coerce").astype(float)
    rows["step"] = pd.to_numeric(rows["step"], errors="coerce").round().astype("Int64")
    for column in ("family", "model", "arch", "seed", "dataset", "metric", "split", "source"):
        rows[column] = rows[column].fillna("").astype(str)
    return rows.sort_values(["family", "model", "metric", "tokens"], kind="stable", ignore_index=True)


def _duplicate_warnings(rows: pd.DataFrame) -> list[str]:
    if rows.empty:
        return []
    clash = rows.duplicated(["model", "seed", "tokens", "metric"], keep=False)
    if not clash.any():
        return []
    example = rows[clash].iloc[0]
    return [f"{int(clash.sum())} rows share (model, seed, tokens, metric), e.g. {example['model']} "
            f"{example['metric']} at {example['tokens']:g} tokens"]


def _family_table(rows: pd.DataFrame, families: list[Family]) -> pd.DataFrame:
    meta = pd.DataFrame([vars(f) for f in dict((f.name, f) for f in families).values()],
                        columns=["name", "arch", "dataset", "primary_metric", "source", "notes"])
    meta = meta.rename(columns={"name": "family"})
    meta = meta[meta["family"].isin(rows["family"].unique())] if len(rows) else meta.iloc[0:0]
    if meta.empty:
        return meta.reindex(columns=list(FAMILIES_COLUMNS))
    stats = rows.groupby("family").agg(
        n_models=("model", "nunique"),
        param_sizes=("params", lambda p: ";".join(str(v) for v in np.sort(p.unique()))),
        max_tokens=("tokens", "max"),
        n_rows=("value", "size"),
    )
    table = meta.join(stats, on="family")
    return table[list(FAMILIES_COLUMNS)].reset_index(drop=True)

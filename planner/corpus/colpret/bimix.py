"""BiMix data-mixing runs from pickled per-domain validation losses (README 2.14)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import safe_pickle
from .common import Family, Part, SEED, cite, observations
from .manifest import BIMIX_DATASETS

SOURCE = cite("Ge+24 BiMix data-mixing law arXiv:2405.14908")
PARAMS = 280_000_000  # ColPret's value; not verified against BiMix
TOKENS_PER_STEP = 512 * 1024  # ColPret's batch size x sequence length; not verified
BASELINE = "Baseline"


def family_name(dataset: str, mixture: str) -> str:
    return f"bimix-{dataset}" if mixture == BASELINE else f"bimix-{dataset}_{mixture}_mix"


def _weights(ratios: dict, mixture: str) -> str:
    series = ratios.get(mixture)
    if series is None:
        return ""
    return "; domain weights " + ", ".join(f"{domain} {weight:.4g}" for domain, weight in series.items())


def read(root: Path, paths: tuple[str, ...]) -> Part:
    parts, families, warnings = [], [], []
    for dataset in BIMIX_DATASETS:
        ppls_path, ratios_path = (f"raw_data/bimix-law/{dataset}/{name}.pkl" for name in ("ppls", "ratios"))
        if ppls_path not in paths:
            continue
        try:
            tables = safe_pickle.load(root / ppls_path)
            ratios = safe_pickle.load(root / ratios_path) if ratios_path in paths else {}
        except (safe_pickle.UnsafePickleError, EOFError, ValueError, TypeError, AttributeError) as exc:
            warnings.append(f"BiMix {dataset}: skipped, its pickles could not be loaded safely: {exc}")
            continue
        if not isinstance(tables, dict) or not all(isinstance(t, pd.DataFrame) for t in tables.values()):
            raise ValueError(f"{ppls_path}: expected a dict of DataFrames")
        for mixture, table in tables.items():
            family = family_name(dataset, mixture)
            # Despite the file name these are validation losses in nats (BiMix plots them as such): no log.
            long = table.melt(id_vars="global_step", var_name="domain", value_name="loss")
            parts.append(observations(
                family=family, model=f"{family}-280M", arch="dec", params=PARAMS,
                tokens=long["global_step"].astype(float) * TOKENS_PER_STEP, step=long["global_step"].astype("int64"),
                seed=SEED, dataset=f"{dataset}:{mixture}", epochs=1.0, metric="val_loss/" + long["domain"],
                value=long["loss"], split="validation", source=SOURCE,
            ))
            families.append(Family(
                family, "dec", f"{dataset}:{mixture}", "val_loss/avg", SOURCE,
                f"single 280M run on the {mixture} mixture of {dataset} (ColPret scaled set; the mixture, not the size, "
                "varies between these families); values are losses in nats despite 'ppls.pkl'; tokens = global_step x "
                "512 x 1024 (ColPret, not verified)" + _weights(ratios, mixture),
            ))
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return Part(rows, families, warnings)

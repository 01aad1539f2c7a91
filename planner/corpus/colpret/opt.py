"""OPT: perplexity trajectories and BIG-bench scores (README 2.1)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .common import Family, Part, SEED, cite, ln, observations, parse_sizes
from .manifest import OPT_BIGBENCH, OPT_TRAJECTORIES

FAMILY = "OPT"
DATASET = "OPT pretraining mix (RoBERTa+Pile+PushShift Reddit; 180B unique tokens)"
UNIQUE_TOKENS = 180e9  # ColPret's constant for OPT's pretraining data
# OPT's batch sizes in tokens per optimizer step; reproduces the file's log10(num_token) exactly.
TOKENS_PER_STEP = {"125m": 0.5e6, "1.3b": 1e6, "6.7b": 2e6, "13b": 4e6, "30b": 4e6, "175b": 2e6}
TRAJECTORY_SOURCE = cite("Xia+22 OPT trajectories arXiv:2212.09803")
BIGBENCH_SOURCE = cite("OPT BIG-bench evals (ColPret aggregated_eval/opt.csv; origin undocumented)")


def _run_columns(size: pd.Series, steps: pd.Series, *, path: str, column: str) -> dict:
    per_step = size.map(TOKENS_PER_STEP)
    if per_step.isna().any():
        index = per_step.isna().idxmax()
        raise ValueError(f"{path}, line {index + 2}, column {column!r}: unknown OPT size {size[index]!r} "
                         f"(known: {', '.join(TOKENS_PER_STEP)})")
    tokens = steps.astype(float) * per_step
    return dict(
        family=FAMILY, model="OPT-" + size, arch="dec",
        params=parse_sizes(size, path=path, column=column).round().astype("int64"), tokens=tokens,
        step=steps.astype("int64"),
        seed=SEED, dataset=DATASET, epochs=tokens / UNIQUE_TOKENS,
    )


def read(root: Path, paths: tuple[str, ...]) -> Part:
    parts = []
    if OPT_TRAJECTORIES in paths:
        traj = pd.read_csv(root / OPT_TRAJECTORIES)
        parts.append(observations(
            **_run_columns(traj["model_size"], traj["steps"], path=OPT_TRAJECTORIES, column="model_size"),
            flops=10.0 ** traj["flops"], metric="loss_from_ppl", value=ln(traj["ppl"]),
            split="unknown", source=TRAJECTORY_SOURCE,
        ))
    if OPT_BIGBENCH in paths:
        bench = pd.read_csv(root / OPT_BIGBENCH)
        bench = bench.drop(columns=bench.columns[0])  # an unnamed row index
        run = _run_columns(bench["size"], bench["steps"], path=OPT_BIGBENCH, column="size")
        for column in [c for c in bench.columns if c.startswith("bigbench__")]:
            parts.append(observations(
                **run, flops=bench["flops"].astype(float), metric=column, value=bench[column],
                split="validation", source=BIGBENCH_SOURCE,
            ))
    family = Family(
        FAMILY, "dec", DATASET, "loss_from_ppl", TRAJECTORY_SOURCE,
        "6 sizes 125M-175B; tokens = steps x OPT batch tokens (0.5M, 1M, 2M, 4M, 4M, 2M); "
        "loss_from_ppl = ln(ppl), the evaluation text is not named in the file (split unknown); "
        "BIG-bench scores 0-100 from aggregated_eval/opt.csv",
    )
    return Part(pd.concat(parts, ignore_index=True), [family])

"""A real family's curves (OPT, from the reference corpus in ../shared) laid out as a team's logged runs."""
import numpy as np
import pandas as pd
import pytest

# OPT's tokens per optimizer step, per size (Zhang et al. 2022; ColPret's notes in families.csv): the
# sizes differ, so the tests map steps to tokens per run, as a scaling study must.
OPT_TOKENS_PER_STEP = {"OPT-125m": 5e5, "OPT-1.3b": 1e6, "OPT-6.7b": 2e6, "OPT-13b": 4e6, "OPT-30b": 4e6,
                       "OPT-175b": 2e6}
TARGET = "OPT-175b"


@pytest.fixture(scope="session")
def opt_runs(corpus_frame):
    """OPT's loss curves: model, params, tokens, value and the optimizer step of each checkpoint."""
    runs = corpus_frame[corpus_frame["family"] == "OPT"][["model", "params", "tokens", "value"]].copy()
    assert set(runs["model"]) == set(OPT_TOKENS_PER_STEP)
    runs["step"] = runs["tokens"] / runs["model"].map(OPT_TOKENS_PER_STEP)
    assert (runs["step"] == np.round(runs["step"])).all() and (runs["step"] > 0).all()
    runs["step"] = runs["step"].astype(np.int64)
    return runs.sort_values(["params", "tokens"], ignore_index=True)


@pytest.fixture(scope="session")
def opt_train(opt_runs):
    """The five smaller sizes: what a team would have trained before the 175B."""
    return opt_runs[opt_runs["model"] != TARGET].reset_index(drop=True)


@pytest.fixture
def params_file(tmp_path, opt_runs):
    """`run,params,tokens_per_step` for every OPT size."""
    table = opt_runs.groupby("model", sort=False)["params"].first().reset_index()
    table = table.rename(columns={"model": "run"})
    table["params"] = table["params"].astype(np.int64)
    table["tokens_per_step"] = table["run"].map(OPT_TOKENS_PER_STEP).astype(np.int64)
    path = tmp_path / "params.csv"
    table.to_csv(path, index=False)
    return path


def assert_same_rows(imported: pd.DataFrame, runs: pd.DataFrame, *, rtol: float) -> None:
    """The imported table holds exactly the runs' rows: names, params, tokens and steps equal, values within rtol."""
    got = imported.sort_values(["model", "tokens"], ignore_index=True)
    want = runs.sort_values(["model", "tokens"], ignore_index=True)
    assert got["model"].tolist() == want["model"].tolist()
    np.testing.assert_array_equal(got["params"].to_numpy(), want["params"].to_numpy(dtype=np.int64))
    np.testing.assert_array_equal(got["tokens"].to_numpy(), want["tokens"].to_numpy(dtype=float))
    np.testing.assert_array_equal(got["step"].to_numpy(dtype=np.int64), want["step"].to_numpy())
    np.testing.assert_allclose(got["value"].to_numpy(), want["value"].to_numpy(), rtol=rtol, atol=0)

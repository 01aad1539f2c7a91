"""fits.sweep: the designs each family supports, and the table of backtested laws."""
import json

import numpy as np
import pytest

from fits.method import DEFAULT_METHOD
from fits.sweep import (
    FRACTIONS,
    MAX_LARGEST,
    MAX_MODELS,
    SWEEP_POLICIES,
    SWEEP_VERSION,
    designs_for,
    evaluate_design,
    run_sweep,
)

DOCUMENTED_COLUMNS = ["family", "n_models", "largest_index", "fraction", "policy", "scale_up", "train_compute_share",
                      "tokens_per_model", "law", "n_points", "are", "seconds", "sizes", "params", "success", "error",
                      "rmse_log", "method", "rollout_are"]
CANDIDATES = {name for c in DEFAULT_METHOD.candidates for name in (c.name, f"{c.name}+cap")}
DESIGN_KEY = ["family", "n_models", "largest_index", "fraction", "policy"]
FAMILIES = ["GPT2-c4-1", "overtrain-RedPajama"]  # curves (2 train sizes); final losses only (5 train sizes)


def _size_designs(designs):
    return {(d.n_models, d.largest_index) for d in designs}


def test_the_method_is_the_librarys_own_so_there_is_no_policy_axis():
    assert SWEEP_POLICIES == ("auto",) and SWEEP_VERSION == 2
    assert {d.policy for d in designs_for(4, has_curves=True)} == {"auto"}


def test_a_family_with_curves_gets_every_size_design_for_every_fraction():
    designs = designs_for(3, has_curves=True)
    sizes = _size_designs(designs)
    # n_models consecutive sizes ending at the largest trained one: never more than exist below it.
    assert all(1 <= k <= largest + 1 for k, largest in sizes)
    assert {(2, 1), (2, 2), (3, 2)} <= sizes
    assert len(designs) == len(sizes) * len(FRACTIONS) * len(SWEEP_POLICIES)
    assert len(set(designs)) == len(designs)


def test_a_final_losses_only_family_gets_size_designs_only():
    designs = designs_for(3, has_curves=False)
    assert {(d.fraction, d.policy) for d in designs} == {(1.0, "auto")}
    assert _size_designs(designs) == _size_designs(designs_for(3, has_curves=True))


def test_a_family_with_many_sizes_gets_a_bounded_spread_of_largest_sizes():
    designs = designs_for(42, has_curves=False)
    largest = sorted({d.largest_index for d in designs})
    assert len(largest) == MAX_LARGEST
    assert largest[-1] == 41  # the size closest to the target is always a choice
    assert max(d.n_models for d in designs) == MAX_MODELS


@pytest.fixture(scope="module")
def swept(corpus_frame):
    frame = corpus_frame[corpus_frame["family"].isin(FAMILIES)]
    frame = frame.assign(source=frame["family"].map({"GPT2-c4-1": "paper A", "overtrain-RedPajama": "paper B"}))
    calls = []
    table = run_sweep(frame, progress=lambda done, total, family: calls.append((done, total, family)))
    return frame, table, calls


def test_run_sweep_gives_one_row_per_design_with_the_documented_columns(swept, corpus_frame):
    frame, table, _ = swept
    assert set(DOCUMENTED_COLUMNS) <= set(table.columns)
    assert sorted(table["family"].unique()) == sorted(FAMILIES)
    assert not table.duplicated(DESIGN_KEY).any()
    for name in FAMILIES:
        part = frame[frame["family"] == name]
        n_train_sizes = part["params"].nunique() - 1
        curves = part.groupby("model").size().median() > 1
        assert (table["family"] == name).sum() == len(designs_for(n_train_sizes, curves))


def test_sweep_rows_are_scored_laws_with_their_design(swept):
    _, table, _ = swept
    ok = table[np.isfinite(table["are"])]
    assert len(ok) > 0.9 * len(table)
    assert (ok["are"] >= 0).all() and (ok["n_points"] > 0).all()
    assert (table["scale_up"] > 1).all()
    # Curves add the schedule term ("chinchilla+schedule"); the base law is what the design decides.
    base_law = table["law"].str.split("+").str[0]
    assert base_law[table["n_models"] >= 2].isin(["chinchilla", "data-constrained"]).all()
    # Compute relative to the target's: above 1 happens (overtrained small models), 0 never.
    assert (table["train_compute_share"] > 0).all()
    assert table["params"].map(lambda p: isinstance(p, dict)).all()


def test_each_row_says_which_candidate_the_method_chose_and_how_its_rollout_scored(swept):
    _, table, _ = swept
    ok = table[table["error"] == ""]
    assert set(ok["method"]) <= CANDIDATES
    # A rollout needs two sizes below the held-out one: designs of three or more sizes have a score ...
    rolled = ok[ok["n_models"] >= 3]
    assert len(rolled) and np.isfinite(rolled["rollout_are"]).all() and (rolled["rollout_are"] >= 0).all()
    # ... fewer sizes cannot be rolled out, and the first candidate is used.
    few = ok[ok["n_models"] <= 2]
    assert few["rollout_are"].isna().all() and (few["method"] == DEFAULT_METHOD.candidates[0].name).all()
    assert np.isfinite(ok["rmse_log"]).all()


def test_each_row_carries_its_familys_source(swept):
    _, table, _ = swept
    assert table.groupby("family")["source"].unique().map(list).to_dict() == {
        "GPT2-c4-1": ["paper A"], "overtrain-RedPajama": ["paper B"]}
    assert "source" not in run_sweep(swept[0].drop(columns=["source"]), families=["GPT2-c4-1"]).columns


def test_a_design_that_cannot_be_fitted_is_a_row_with_its_error(corpus_frame):
    from fits.backtest import split_target

    train, target = split_target(corpus_frame[corpus_frame["family"] == "GPT2-c4-1"])
    row = evaluate_design(train, target, [1.0], 1.0)  # no run of that size
    assert row["are"] == float("inf") and "no checkpoints" in row["error"]
    assert row["method"] == "" and np.isnan(row["rollout_are"])


def test_run_sweep_reports_progress_once_per_family(swept):
    _, _, calls = swept
    assert [c[:2] for c in calls] == [(1, 2), (2, 2)]
    assert sorted(c[2] for c in calls) == sorted(FAMILIES)


def test_two_worker_processes_give_the_same_table(swept):
    frame, table, _ = swept
    parallel = run_sweep(frame, jobs=2)
    cols = [c for c in table.columns if c != "seconds"]
    assert parallel[cols].to_json() == table[cols].to_json()


def test_sweep_version_is_an_integer_for_stored_tables():
    assert isinstance(SWEEP_VERSION, int)
    json.dumps({"version": SWEEP_VERSION})

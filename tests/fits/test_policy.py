"""fits.policy: the adaptive early cut, thinning, run and size weights, and the named policies."""
import numpy as np
import pandas as pd
import pytest

from fits.policy import DEFAULT_POLICY, POLICIES, CheckpointPolicy
from fits.trainset import FitInputError, TrainSet


def _run(model, params, tokens, seed=""):
    tokens = np.asarray(tokens, dtype=float)
    return pd.DataFrame({"family": "f", "model": model, "params": float(params), "tokens": tokens,
                         "value": 3.0 - 0.1 * np.log10(tokens), "seed": seed, "epochs": np.nan})


FRAME = pd.concat([
    _run("long", 4e8, np.geomspace(1e8, 1e11, 200)),  # a long curve, 200 checkpoints
    _run("short", 1e8, np.geomspace(5e7, 4e8, 10)),  # stops well before the 1B cut
    _run("final", 2e8, [3e9]),  # final loss only
], ignore_index=True)


def test_the_early_cut_drops_noisy_checkpoints_but_never_empties_a_short_run():
    kept = DEFAULT_POLICY.select(FRAME)
    long = kept[kept["model"] == "long"]
    short = kept[kept["model"] == "short"]
    assert long["tokens"].min() >= DEFAULT_POLICY.min_tokens
    # 4e8 tokens in all: the cut moves to half of the run's own final tokens, keeping its tail.
    assert not short.empty
    assert short["tokens"].min() >= 0.5 * 4e8 and short["tokens"].max() == 4e8
    assert (kept["model"] == "final").sum() == 1


def test_thinning_keeps_at_most_max_per_run_spread_in_log_tokens_and_always_the_last():
    policy = CheckpointPolicy(max_per_run=20)
    long = policy.select(FRAME).query("model == 'long'")
    assert len(long) <= 20
    assert long["tokens"].max() == 1e11
    gaps = np.diff(np.log(np.sort(long["tokens"].to_numpy())))
    assert gaps.max() < 3 * gaps.min()  # evenly spread, not bunched at one end
    assert len(POLICIES["no-thinning"].select(FRAME).query("model == 'long'")) > 60


def test_each_run_shares_one_unit_of_weight_scaled_by_its_size():
    kept = DEFAULT_POLICY.select(FRAME)
    per_run = kept.groupby("model")["weight"].sum()
    top = FRAME["params"].max()
    assert per_run["long"] == pytest.approx(1.0)
    assert per_run["short"] == pytest.approx(1e8 / top)
    assert per_run["final"] == pytest.approx(2e8 / top)


def test_runs_with_the_same_model_name_but_different_seeds_are_separate_runs():
    frame = pd.concat([_run("m", 4e8, np.geomspace(1e9, 1e10, 10), seed="1"),
                       _run("m", 4e8, np.geomspace(1e9, 1e10, 10), seed="2")], ignore_index=True)
    kept = DEFAULT_POLICY.select(frame)
    assert kept.groupby("seed")["weight"].sum().tolist() == pytest.approx([1.0, 1.0])


def test_point_weights_and_no_size_weights_change_only_their_own_choice():
    point = POLICIES["point-weights"].select(FRAME)
    assert point.groupby("model")["weight"].sum()["long"] == pytest.approx(len(point.query("model == 'long'")))
    flat = POLICIES["no-size-weights"].select(FRAME)
    assert flat.groupby("model")["weight"].sum().tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_final_only_keeps_each_runs_last_checkpoint():
    kept = POLICIES["final-only"].select(FRAME)
    assert sorted(kept["tokens"]) == [4e8, 3e9, 1e11]


def test_the_paper_policy_is_a_plain_10b_cut_with_equal_points():
    kept = POLICIES["paper"].select(FRAME)
    assert kept.query("model == 'long'")["tokens"].min() >= 1e10
    assert kept.query("model == 'short'")["tokens"].tolist() == [4e8]  # a run ending before 10B keeps its last
    assert set(kept["weight"]) == {1.0}


def test_each_named_policy_differs_from_the_default_in_one_respect():
    default = DEFAULT_POLICY.to_dict()
    for name in ("no-cut", "cut10b", "no-thinning", "point-weights", "no-size-weights"):
        changed = {k for k, v in POLICIES[name].to_dict().items() if v != default[k]} - {"name"}
        assert len(changed) == 1, (name, changed)


def test_an_empty_trainset_selects_nothing():
    kept, weight = DEFAULT_POLICY.select(TrainSet.from_frame(FRAME).take(np.zeros(0, dtype=int)))
    assert len(kept) == 0 and weight.size == 0


def test_a_frame_is_validated_before_selecting():
    # A frame goes through TrainSet.from_frame: an empty one is bad input, named as such.
    with pytest.raises(FitInputError, match="train has no rows"):
        DEFAULT_POLICY.select(FRAME.iloc[:0])


def test_select_on_a_trainset_gives_the_same_rows_and_weights_as_on_its_frame():
    ts = TrainSet.from_frame(FRAME)
    kept, weight = DEFAULT_POLICY.select(ts)
    as_frame = DEFAULT_POLICY.select(FRAME)
    np.testing.assert_array_equal(kept.tokens, as_frame["tokens"].to_numpy())
    np.testing.assert_array_equal(weight, as_frame["weight"].to_numpy())
    idx, weight_again = DEFAULT_POLICY.select_index(ts)
    assert np.all(np.diff(idx) > 0)  # sorted positions
    np.testing.assert_array_equal(ts.take(idx).tokens, kept.tokens)
    np.testing.assert_array_equal(weight_again, weight)

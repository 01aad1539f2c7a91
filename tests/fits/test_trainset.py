"""fits.trainset: a family's runs validated once, as arrays every fit, policy and bootstrap share."""
import numpy as np
import pandas as pd
import pytest

from fits.api import prepare_train
from fits.trainset import REQUIRED_COLUMNS, FitInputError, TrainSet

# Two runs of one model (seeds 1 and 2), a second model logged without a seed, a final-loss-only run.
FRAME = pd.DataFrame({
    "family": "fam",
    "model": ["a", "a", "a", "a", "b", "b", "b", "c"],
    "seed": ["1", "1", "2", "2", None, None, None, None],
    "params": [1e8, 1e8, 1e8, 1e8, 2e8, 2e8, 2e8, 4e8],
    "tokens": [1e9, 2e9, 1e9, 3e9, 1e9, 2e9, 4e9, 5e9],
    "value": [3.4, 3.2, 3.41, 3.1, 3.3, 3.1, 2.9, 2.8],
    "epochs": [1.0, 1.0, 1.0, 1.0, np.nan, np.nan, np.nan, 2.0],
})


def test_runs_are_model_and_seed_and_each_row_knows_its_runs_length():
    ts = TrainSet.from_frame(FRAME)
    assert len(ts) == 8 and ts.n_runs == 4 and ts.family == "fam"
    assert ts.run.tolist() == [0, 0, 1, 1, 2, 2, 2, 3]
    np.testing.assert_array_equal(ts.sizes, [1e8, 2e8, 4e8])
    # Runs are taken to be complete: the last checkpoint ends each run.
    np.testing.assert_array_equal(ts.run_tokens, [2e9, 2e9, 3e9, 3e9, 4e9, 4e9, 4e9, 5e9])
    np.testing.assert_array_equal(ts.epochs[4:7], [np.nan] * 3)
    assert ts.run_labels().tolist()[:5] == ["a seed 1", "a seed 1", "a seed 2", "a seed 2", "b"]


def test_without_optional_columns_a_run_is_a_model():
    ts = TrainSet.from_frame(FRAME[list(REQUIRED_COLUMNS)])
    assert ts.n_runs == 3 and ts.family == "family"
    assert np.isnan(ts.epochs).all() and (ts.seed == "").all()


def test_take_keeps_the_runs_planned_lengths_and_last_checkpoints_move_with_the_rows():
    ts = TrainSet.from_frame(FRAME)
    early = ts.take(ts.tokens <= 2e9)  # a mask: runs seen up to 2e9 tokens (c not at all)
    assert early.model.tolist() == ["a", "a", "a", "b", "b"] and early.family == "fam"
    # How long each run will be is still known, while its last checkpoint *here* is earlier.
    np.testing.assert_array_equal(early.run_tokens, [2e9, 2e9, 3e9, 4e9, 4e9])
    np.testing.assert_array_equal(early.run_max_tokens(), [2e9, 2e9, 1e9, 2e9, 2e9])
    assert early.is_last().tolist() == [False, True, True, False, True]
    # Integer positions work as well, in the order given.
    picked = ts.take(np.array([7, 0]))
    assert picked.model.tolist() == ["c", "a"] and picked.run.tolist() == [3, 0]
    assert len(ts.take(np.zeros(0, dtype=int))) == 0


def test_is_last_marks_each_runs_final_checkpoint():
    ts = TrainSet.from_frame(FRAME)
    np.testing.assert_array_equal(ts.run_max_tokens(), ts.run_tokens)
    assert ts.is_last().tolist() == [False, True, False, True, False, False, True, True]


def test_with_values_keeps_the_design_and_frame_round_trips():
    ts = TrainSet.from_frame(FRAME)
    other = ts.with_values(ts.value * 2)
    np.testing.assert_array_equal(other.value, ts.value * 2)
    np.testing.assert_array_equal(other.tokens, ts.tokens)
    again = TrainSet.from_frame(ts.frame())
    for name in ("params", "tokens", "value", "run_tokens", "run"):
        np.testing.assert_array_equal(getattr(again, name), getattr(ts, name))
    assert TrainSet.from_frame(ts) is ts  # already validated: taken as is
    pd.testing.assert_frame_equal(prepare_train(FRAME), ts.frame())


def test_a_run_tokens_column_gives_runs_in_progress_their_planned_length():
    ts = TrainSet.from_frame(FRAME.assign(run_tokens=[8e9, 8e9, np.nan, np.nan, 1e10, 1e10, 1e10, np.nan]))
    # Given where known; the last checkpoint elsewhere.
    np.testing.assert_array_equal(ts.run_tokens, [8e9, 8e9, 3e9, 3e9, 1e10, 1e10, 1e10, 5e9])


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (FRAME.drop(columns=["tokens", "value"]),
         r"missing column\(s\) \['tokens', 'value'\]; it needs \['model', 'params', 'tokens', 'value'\]"),
        (FRAME.iloc[:0], r"^train has no rows$"),
        (FRAME.assign(value=[3.4, 3.2, 3.41, 3.1, 3.3, np.inf, 2.9, 2.8]),
         r"column 'value' has a missing, non-numeric or infinite value at row 5: .*inf"),
        (FRAME.assign(params=["1e8"] * 4 + ["big"] * 3 + ["4e8"]), r"column 'params' .* at row 4: 'big'"),
        (FRAME.assign(tokens=[1e9, 2e9, 1e9, 3e9, 1e9, 0.0, 4e9, 5e9]),
         r"column 'tokens' must be positive; row 5 has 0\.0"),
        (FRAME.assign(run_tokens=[8e9, 1.5e9, 8e9, 8e9, 8e9, 8e9, 8e9, 8e9]),
         (r"'run_tokens' is the run's final tokens and cannot be below the checkpoint's tokens; row 1 has "
          r"1500000000\.0 < 2000000000\.0")),
        (FRAME.to_dict(), r"train must be a pandas DataFrame, not dict"),
    ],
    ids=["missing-columns", "empty", "inf-value", "text-params", "zero-tokens", "run-shorter-than-checkpoint",
         "not-a-frame"],
)
def test_bad_input_names_the_column_and_the_row(frame, message):
    with pytest.raises(FitInputError, match=message):
        TrainSet.from_frame(frame)


def test_rows_are_numbered_from_zero_whatever_the_frames_index():
    frame = FRAME.set_index(pd.Index([10, 11, 12, 13, 14, 15, 16, 17]))
    with pytest.raises(FitInputError, match="row 2"):
        TrainSet.from_frame(frame.assign(value=[3.4, 3.2, -1.0, 3.1, 3.3, 3.1, 2.9, 2.8]))


def test_fit_input_error_is_a_value_error_and_exported_by_the_package():
    import fits

    assert fits.FitInputError is FitInputError and issubclass(FitInputError, ValueError)

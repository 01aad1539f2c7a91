"""The public contract fits.predict_loss / fits.predict_interval on every family shape of the corpus."""
import numpy as np
import pandas as pd
import pytest

import fits
import fits.api
from fits.api import prepare_train
from fits.backtest import split_target
from fits.laws import CHINCHILLA
from fits.method import CURVES, DEFAULT_METHOD, FINAL, choose_form, exponents_identified
from fits.targets import default_run_tokens as target_run_tokens

# (family, what shape it stands for)
SHAPES = {
    "olmo": "2 sizes: the train split has 1 size, so a tokens-only law",
    "chinchilla": "40+ sizes, one checkpoint each",
    "overtrain-RedPajama": "final losses only (1 checkpoint per run)",
    "gpt3": "200+ checkpoints per run",
    "gzip-pcfg-0.23": "runs far shorter than 10B tokens",
}


@pytest.fixture
def split(family):
    def get(name, seed_column=True):
        train, target = split_target(family(name))
        if not seed_column:
            train = train.drop(columns=["seed"])
        return train, target

    return get


@pytest.mark.parametrize("seed_column", [True, False], ids=["with-seed", "without-seed"])
@pytest.mark.parametrize("name", list(SHAPES))
def test_predict_loss_answers_in_the_targets_shape_on_every_family_shape(split, name, seed_column):
    train, target = split(name, seed_column)
    n, d = target["params"].to_numpy(), target["tokens"].to_numpy()
    pred = fits.predict_loss(train, n, d)
    assert pred.shape == n.shape
    assert np.all(np.isfinite(pred)) and np.all(pred > 0)
    # Plausible: within a factor of 2 of the truth, on a shape the law was not built around.
    assert np.all(np.abs(np.log(pred / target["value"].to_numpy())) < np.log(2))
    grid = fits.predict_loss(train, np.full((2, 3), n[0]), np.full((2, 3), d[-1]))
    assert grid.shape == (2, 3)
    assert np.shape(fits.predict_loss(train, float(n[0]), float(d[-1]))) == ()


@pytest.mark.parametrize("name", list(SHAPES))
def test_predict_interval_brackets_the_prediction_on_every_family_shape(split, name):
    train, target = split(name)
    n, d = target["params"].to_numpy()[-3:], target["tokens"].to_numpy()[-3:]
    pred = fits.predict_loss(train, n, d)
    lower, upper = fits.predict_interval(train, n, d, coverage=0.8, n_boot=20)
    assert lower.shape == upper.shape == n.shape
    assert np.all(lower <= pred) and np.all(pred <= upper)
    assert np.all(lower > 0) and np.all(lower < upper)


def test_a_plain_frame_with_only_the_required_columns_is_enough():
    train = pd.DataFrame({
        "model": np.repeat(["s", "m", "l"], 4),
        "params": np.repeat([1e8, 3e8, 1e9], 4),
        "tokens": np.tile([2e9, 5e9, 1e10, 2e10], 3),
        "value": [3.4, 3.2, 3.05, 2.95, 3.1, 2.92, 2.8, 2.72, 2.9, 2.72, 2.6, 2.52],
    })
    pred = fits.predict_loss(train, [3e9], [6e10])
    assert pred.shape == (1,)
    assert 1.5 < pred[0] < 2.52  # bigger and longer than every run: below the best loss seen


GOOD = pd.DataFrame({"model": ["a", "a", "b", "b"], "params": [1e8, 1e8, 4e8, 4e8],
                     "tokens": [1e9, 4e9, 1e9, 4e9], "value": [3.5, 3.1, 3.2, 2.8]})


@pytest.mark.parametrize(
    ("train", "targets", "message"),
    [
        (GOOD.drop(columns=["value"]), (1e9, 1e10), r"missing column\(s\) \['value'\]"),
        (GOOD.iloc[:0], (1e9, 1e10), r"train has no rows"),
        (GOOD.assign(value=[3.5, np.nan, 3.2, 2.8]), (1e9, 1e10), r"column 'value' has a missing.*row 1"),
        (GOOD.assign(tokens=["1e9", "4e9", "lots", "4e9"]), (1e9, 1e10), r"column 'tokens' has a .*non-numeric.*'lots'"),
        (GOOD.assign(params=[1e8, 1e8, -4e8, 4e8]), (1e9, 1e10), r"column 'params' must be positive; row 2 has -400000000\.0"),
        (GOOD.values, (1e9, 1e10), r"train must be a pandas DataFrame, not ndarray"),
        (GOOD, (-1e9, 1e10), r"target_params must be positive and finite"),
        (GOOD, (1e9, np.nan), r"target_tokens must be positive and finite"),
    ],
    ids=["missing-column", "empty", "nan-value", "text-tokens", "negative-params", "not-a-frame", "negative-target",
         "nan-target"],
)
@pytest.mark.parametrize("call", ["predict_loss", "predict_interval"])
def test_bad_input_raises_fit_input_error_with_a_clear_message(call, train, targets, message):
    with pytest.raises(fits.FitInputError, match=message):
        getattr(fits, call)(train, *targets)


def test_final_losses_at_one_token_count_get_a_size_only_law():
    # A sweep of sizes all stopped at the same budget says nothing about D.
    train = pd.DataFrame({"model": ["a", "b", "c"], "params": [1e8, 3e8, 1e9], "tokens": [2e10] * 3,
                          "value": [3.2, 2.9, 2.7]})
    pred = fits.predict_loss(train, [3e9], [2e10])
    lo, hi = fits.predict_interval(train, [3e9], [2e10], n_boot=10)
    assert pred[0] < 2.7 and lo[0] < pred[0] < hi[0]


def test_one_final_loss_predicts_that_loss():
    train = pd.DataFrame({"model": ["a"], "params": [1e8], "tokens": [2e10], "value": [3.2]})
    assert fits.predict_loss(train, [1e9], [2e10])[0] == pytest.approx(3.2, rel=1e-6)


def _curves(lengths, epochs_end=None, rise=0.0):
    """Three sizes logging curves; runs of the given lengths (tokens), optionally repeating and overfitting."""
    rows = []
    for n, run in zip((1e8, 3e8, 1e9), lengths):
        d = run * np.geomspace(0.1, 1.0, 12)
        value = 1.8 + 400 / n**0.34 + 410 / d**0.28
        epochs = np.nan if epochs_end is None else epochs_end * d / run
        if rise:
            value = value + rise * np.maximum(d / run - 0.5, 0)
        rows.append(pd.DataFrame({"model": f"m{n:.0e}", "params": n, "tokens": d, "value": value, "epochs": epochs}))
    return prepare_train(pd.concat(rows, ignore_index=True))


def test_curves_of_runs_of_different_lengths_get_the_schedule_term():
    assert choose_form(_curves([2e9, 6e9, 2e10])).name == "chinchilla+schedule"
    # All runs equally long: a checkpoint's share of its run is a function of its tokens, so no term.
    assert choose_form(_curves([1e10, 1e10, 1e10])).name == "chinchilla"


def test_repeated_data_whose_loss_rises_gets_the_overfitting_term():
    assert choose_form(_curves([2e9, 6e9, 2e10], epochs_end=20)).name == "data-constrained+schedule"
    rising = _curves([2e9, 6e9, 2e10], epochs_end=20, rise=0.3)
    assert choose_form(rising).name == "data-constrained+schedule+overfit"
    # The same rise without repetition is noise or a bad run, not overfitting.
    assert not choose_form(_curves([2e9, 6e9, 2e10], rise=0.3)).overfit


def test_targets_of_one_size_are_checkpoints_of_one_run_ending_at_the_largest():
    np.testing.assert_array_equal(target_run_tokens([1e9, 1e9, 2e9], [1e10, 3e10, 5e9]), [3e10, 3e10, 5e9])
    train = _curves([2e9, 6e9, 2e10])
    mid_run = fits.predict_loss(train, [3e9, 3e9], [3e10, 6e10])[0]
    run_end = fits.predict_loss(train, [3e9], [3e10])[0]
    # Half-way through a 6e10 run the learning rate has not decayed: higher than a run ending at 3e10.
    assert mid_run > run_end
    assert fits.predict_loss(train, [3e9], [3e10], target_run_tokens=[6e10])[0] == pytest.approx(mid_run)
    with pytest.raises(fits.FitInputError, match="target_run_tokens must be finite and at least"):
        fits.predict_loss(train, [3e9], [3e10], target_run_tokens=[1e10])


def test_a_run_tokens_column_says_how_long_runs_in_progress_will_be():
    train = GOOD.assign(run_tokens=[8e9, 8e9, 8e9, 8e9])
    assert prepare_train(train)["run_tokens"].tolist() == [8e9] * 4
    with pytest.raises(fits.FitInputError, match=r"'run_tokens' .* row 1 has 2000000000\.0 < 4000000000\.0"):
        prepare_train(GOOD.assign(run_tokens=[8e9, 2e9, 8e9, 8e9]))


def test_exponents_are_borrowed_only_where_the_data_cannot_identify_them():
    two_sizes = _curves([2e9, 6e9, 2e10])
    two_sizes = two_sizes[two_sizes["params"] < 1e9]
    five_points = prepare_train(pd.DataFrame({"model": list("abcde"), "params": [1e8, 2e8, 4e8, 8e8, 1.6e9],
                                              "tokens": [8e10, 4e10, 2e10, 1e10, 5e9],
                                              "value": [3.0, 2.95, 2.93, 2.96, 3.05]}))
    curves = _curves([2e9, 6e9, 2e10])
    assert not exponents_identified(two_sizes, CHINCHILLA)
    assert not exponents_identified(five_points, CHINCHILLA)
    assert exponents_identified(curves, CHINCHILLA)
    # What a method does with it: a posterior (borrowed exponents) only where they are not identified.
    assert "posterior" in CURVES.fit(two_sizes).result.stats
    assert "posterior" in CURVES.fit(five_points).result.stats
    assert "posterior" not in CURVES.fit(curves).result.stats
    assert "posterior" in CURVES.with_params(prior=fits.DEFAULT_PRIOR).fit(curves).result.stats


# --- the rest of the contract: fit, make_predictor, prediction_interval ---------------


def test_fit_returns_the_default_methods_fit_and_predict_loss_is_its_prediction():
    train = _curves([2e9, 6e9, 2e10])
    fit = fits.api.fit(train)
    assert fit.choice["method"] in {"curves", "final", "all-points", "curves+cap", "final+cap", "all-points+cap"}
    n, d = np.array([3e9, 3e9]), np.array([3e10, 6e10])
    np.testing.assert_allclose(fits.predict_loss(train, n, d), fit.predict(n, d), rtol=1e-12)
    assert fits.api.fit(train, method=FINAL).method is FINAL


def test_make_predictor_turns_any_method_into_a_backtest_predictor():
    train = _curves([2e9, 6e9, 2e10])
    n, d = np.array([3e9, 3e9]), np.array([3e10, 6e10])
    for method in (DEFAULT_METHOD, CURVES, FINAL):
        predict = fits.api.make_predictor(method)
        np.testing.assert_allclose(predict(train, n, d), method.fit(train).predict(n, d), rtol=1e-12)
    np.testing.assert_allclose(fits.api.make_predictor()(train, n, d), fits.predict_loss(train, n, d), rtol=1e-12)


def test_predict_interval_is_the_prediction_interval_of_the_default_method():
    train = _curves([2e9, 6e9, 2e10])
    n, d = np.array([[3e9, 3e9]]), np.array([[3e10, 6e10]])
    lower, upper = fits.predict_interval(train, n, d, n_boot=10, seed=4)
    out = fits.api.prediction_interval(train, n.ravel(), d.ravel(), n_boot=10, seed=4)
    assert lower.shape == upper.shape == (1, 2)
    np.testing.assert_allclose(lower.ravel(), out.lower, rtol=1e-12)
    np.testing.assert_allclose(upper.ravel(), out.upper, rtol=1e-12)
    np.testing.assert_allclose(out.prediction, fits.predict_loss(train, n, d).ravel(), rtol=1e-12)


def test_prepare_train_is_the_validated_frame():
    out = prepare_train(GOOD)
    assert isinstance(out, pd.DataFrame) and len(out) == 4
    assert out["run_tokens"].tolist() == [4e9] * 4  # runs are complete: the last checkpoint ends each
    with pytest.raises(fits.FitInputError, match="train has no rows"):
        prepare_train(GOOD.iloc[:0])

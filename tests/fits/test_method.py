"""fits.method: the method as an object (Method.fit -> Fit), and AutoMethod's choice among candidates."""
import json

import numpy as np
import pandas as pd
import pytest

import fits.method
from fits.laws import CHINCHILLA, schedule_remaining
from fits.method import (
    ALL_POINTS,
    CURVES,
    DEFAULT_METHOD,
    FINAL,
    AutoMethod,
    Fit,
    Method,
    cap_by_smaller_runs,
    choose_form,
    consistent_winners,
    exponents_identified,
    has_curves,
    rollout_scores,
    shows_overfitting,
)
from fits.posterior import DEFAULT_PRIOR
from fits.targets import TARGET_FRACTION, default_run_tokens
from fits.trainset import FitInputError, TrainSet

from .conftest import synthetic_family, true_loss

FAR_N, FAR_D = 8e9, 1.6e11  # 10x the largest synthetic size, ~20 tokens per parameter


SCHEDULED_SIZES = np.geomspace(5e7, 1.6e9, 6)


def scheduled_runs(seed, sizes=SCHEDULED_SIZES, amplitude=(0.0, 0.6)):
    """Runs of 20 tokens per parameter on the exact law, each with its *own* cosine schedule's excess loss.

    A family-wide schedule term cannot follow amplitudes that differ run by run, so the curves mislead
    the law; every run's final checkpoint is on the law exactly. The final-losses candidate must win.
    """
    rng = np.random.default_rng(seed)
    parts = []
    for n in sizes:
        run = 20 * n
        d = run * np.geomspace(0.05, 1.0, 25)
        loss = true_loss(n, d) + rng.uniform(*amplitude) * schedule_remaining(d, run)
        parts.append(pd.DataFrame({"family": "own-schedules", "model": f"m{n:.3g}", "params": n, "tokens": d,
                                   "value": loss}))
    return pd.concat(parts, ignore_index=True)


def strict(value):
    """``value`` through a strict JSON writer and reader (NaN and Infinity refused)."""
    return json.loads(json.dumps(value, allow_nan=False))


@pytest.fixture(scope="module")
def curves_family():
    """Three sizes logging curves of different lengths, a cosine schedule's excess on top: the schedule term."""
    parts = []
    for n, run in zip((1e8, 3e8, 1e9), (2e9, 6e9, 2e10)):
        d = run * np.geomspace(0.1, 1.0, 12)
        parts.append(pd.DataFrame({"model": f"m{n:.0e}", "params": n, "tokens": d,
                                   "value": true_loss(n, d) + 0.1 * schedule_remaining(d, run)}))
    return pd.concat(parts, ignore_index=True)


# --- Method and Fit -------------------------------------------------------------------


def test_a_method_shows_every_setting_as_json_and_changes_by_copy():
    params = strict(CURVES.get_params())
    assert params == {"name": "curves", "policy": CURVES.policy.to_dict(), "terms": ["schedule", "overfit"],
                      "prior": "auto", "loss": "huber", "delta": 3e-3, "refine": "irls", "form": None, "cap": False}
    borrowing = CURVES.with_params(prior=DEFAULT_PRIOR, name="borrow")
    assert strict(borrowing.get_params())["prior"] == DEFAULT_PRIOR.to_dict()
    assert CURVES.prior == "auto" and borrowing.name == "borrow"  # the original is untouched
    auto = strict(DEFAULT_METHOD.get_params())
    assert auto["name"] == "auto" and auto["folds"] == 2
    assert [c["name"] for c in auto["candidates"]] == ["curves", "final", "all-points"]


def test_fit_takes_a_frame_or_a_trainset_and_keeps_what_it_used(curves_family):
    fit = CURVES.fit(curves_family)
    again = CURVES.fit(TrainSet.from_frame(curves_family))
    assert fit.result.params == again.result.params
    assert fit.form.name == "chinchilla+schedule" and fit.result.success
    assert len(fit.train) == len(curves_family) and len(fit.used) == len(fit.weight) <= len(fit.train)
    used = fit.used_frame()
    assert list(used["weight"]) == list(fit.weight) and len(used) == len(fit.used)
    # The candidates see different rows of the same runs.
    assert len(FINAL.fit(curves_family).used) == 3
    all_points = ALL_POINTS.fit(curves_family)
    assert len(all_points.used) > len(fit.used) * 0.5 and set(all_points.weight) == {1.0}  # equal points


def test_predict_is_the_laws_prediction_with_the_contracts_run_lengths(curves_family):
    fit = CURVES.fit(curves_family)
    n, d = np.array([3e9, 3e9, 5e9]), np.array([3e10, 6e10, 1e11])
    # Targets of one size are checkpoints of one run, ending at the largest tokens asked for that size.
    run = default_run_tokens(n, d)
    np.testing.assert_array_equal(run, [6e10, 6e10, 1e11])
    np.testing.assert_array_equal(fit.predict(n, d), fit.result.predict(n, d, None, run))
    given = np.array([1.2e11, 1.2e11, 1e11])
    np.testing.assert_array_equal(fit.predict(n, d, run_tokens=given), fit.result.predict(n, d, None, given))
    assert fit.predict(n, d)[0] > fit.predict(n, d, run_tokens=d)[0]  # mid-run: the LR has not decayed
    assert np.shape(fit.predict(3e9, 3e10)) == () and fit.predict(np.full((2, 2), 3e9), 3e10).shape == (2, 2)
    with pytest.raises(FitInputError, match="target_params must be positive"):
        fit.predict([0.0], [1e10])


def test_a_method_can_pin_the_law_and_the_prior(curves_family):
    tokens_only = CURVES.with_params(form="tokens").fit(curves_family[curves_family["params"] == 1e9])
    assert tokens_only.form.name == "tokens"
    never = CURVES.with_params(prior=None).fit(curves_family)
    always = CURVES.with_params(prior=DEFAULT_PRIOR).fit(curves_family)
    assert "posterior" not in never.result.stats and "posterior" in always.result.stats
    plain = CURVES.with_params(terms=()).fit(curves_family)
    assert plain.form.name == "chinchilla"


def test_to_dict_is_strict_json_with_the_method_law_choice_and_data(curves_family):
    fit = DEFAULT_METHOD.fit(curves_family)
    out = strict(fit.to_dict())
    assert set(out) == {"version", "method", "law", "choice", "data"}
    assert out["version"] == 1
    assert out["method"] == strict(fit.method.get_params())
    assert out["law"] == strict(fit.result.to_dict()) and out["law"]["law"] == fit.form.name
    assert out["choice"]["method"] == fit.method.name + ("+cap" if fit.method.cap else "")
    assert out["data"] == {"n_rows": 36, "n_rows_fitted": len(fit.used), "n_runs": 3, "sizes": [1e8, 3e8, 1e9]}


def test_interval_brackets_the_prediction_without_refitting_the_point_estimate(curves_family, monkeypatch):
    fit = CURVES.fit(curves_family)
    before = fit.result.params

    def no_refit(*args, **kwargs):
        raise AssertionError("the interval refitted the method")

    monkeypatch.setattr(Method, "fit", no_refit)
    monkeypatch.setattr(AutoMethod, "fit", no_refit)
    n, d = np.array([3e9, 3e9]), np.array([3e10, 6e10])
    out = fit.interval(n, d, n_boot=15, coverage=0.8)
    np.testing.assert_array_equal(out.prediction, fit.predict(n, d))
    assert np.all(out.lower < out.prediction) and np.all(out.prediction < out.upper)
    assert out.n_boot == 15 and fit.result.params == before
    # The same seed, the same interval; the statistical part alone is narrower.
    np.testing.assert_array_equal(fit.interval(n, d, n_boot=15).upper, out.upper)
    boot = fit.interval(n, d, n_boot=15, method_error=False)
    assert np.all(boot.upper < out.upper) and boot.method_sd_log == 0.0


def _capped_fit():
    """A fit whose cap binds: the largest run's last checkpoint is 5% below the law (a spike down)."""
    frame = synthetic_family(0, sizes=np.geomspace(5e7, 8e8, 6), tokens=np.geomspace(2e8, 2e10, 20), point_noise=0.002)
    last = (frame["params"] == frame["params"].max()) & (frame["tokens"] == frame["tokens"].max())
    frame.loc[last, "value"] *= 0.95
    return CURVES.with_params(name="curves+cap", cap=True).fit(frame)


def test_a_capped_method_predicts_no_worse_than_a_smaller_run_did():
    fit = _capped_fit()
    n, d = 1.6e9, 2e10
    raw = fit.result.predict(n, d, None, d)
    best_seen = fit.train.value[(fit.train.params <= n) & (fit.train.tokens <= d)].min()
    assert best_seen < raw and fit.predict(n, d) == pytest.approx(best_seen)


def test_a_capped_fits_interval_is_about_its_own_prediction():
    fit = _capped_fit()
    out = fit.interval([1.6e9], [2e10], coverage=0.5, n_boot=20)
    predicted = fit.predict([1.6e9], [2e10])
    assert out.lower[0] <= predicted[0] <= out.upper[0]
    np.testing.assert_allclose(out.prediction, predicted)


# --- AutoMethod ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def own_schedules():
    return scheduled_runs(seed=1)


@pytest.fixture(scope="module")
def auto_fit(own_schedules):
    return DEFAULT_METHOD.fit(own_schedules)


def test_auto_chooses_the_candidate_that_extrapolates_the_familys_own_sizes_best(auto_fit, own_schedules):
    choice = auto_fit.choice
    assert choice["method"] == "final" and auto_fit.method.name == "final" and not auto_fit.method.cap
    means = choice["rollout_mean"]
    assert set(means) == {"curves", "curves+cap", "final", "final+cap", "all-points", "all-points+cap"}
    assert means["final"] == min(means.values())
    assert means["final"] < 0.5 * min(means["curves"], means["all-points"])
    assert choice["reason"].startswith("lowest error predicting its own larger sizes from the smaller ones")
    # Two folds: the largest size, then the second largest, each predicted from the sizes below it.
    sizes = np.sort(own_schedules["params"].unique())
    assert choice["folds"] == [
        {"held_out_params": sizes[-1], "train_sizes": 5, "target_rows": _window(own_schedules, sizes[-1])},
        {"held_out_params": sizes[-2], "train_sizes": 4, "target_rows": _window(own_schedules, sizes[-2])},
    ]
    assert all(len(scores) == 2 for scores in choice["rollout_are"].values())
    assert means["curves"] == pytest.approx(np.mean(choice["rollout_are"]["curves"]))
    # Then the winner is fitted to all the data, as it would be on its own, and extrapolates better.
    assert auto_fit.result.params == FINAL.fit(own_schedules).result.params
    truth = true_loss(FAR_N, FAR_D)
    assert abs(auto_fit.predict(FAR_N, FAR_D) / truth - 1) < abs(CURVES.fit(own_schedules).predict(FAR_N, FAR_D)
                                                                / truth - 1)


def _window(frame, size):
    at = frame[frame["params"] == size]
    return int((at["tokens"] >= TARGET_FRACTION * at["tokens"].max()).sum())


def test_rollout_scores_hold_out_each_size_and_score_its_target_window(own_schedules):
    ts = TrainSet.from_frame(own_schedules)
    scores, folds = rollout_scores((FINAL,), ts, 1)
    assert list(scores) == ["final", "final+cap"] and len(folds) == 1
    held = ts.sizes[-1]
    inner = ts.take(ts.params < held)
    window = (ts.params == held) & (ts.tokens >= TARGET_FRACTION * ts.tokens[ts.params == held].max())
    target = ts.take(window)
    pred = FINAL.fit(inner, stderr=False, tol=fits.method.ROLLOUT_TOL).result.predict(
        target.params, target.tokens, target.epochs, target.run_tokens)
    assert scores["final"][0] == pytest.approx(np.mean(np.abs(pred - target.value) / target.value))


def test_the_default_is_left_only_for_a_candidate_that_beats_it_at_every_held_out_size():
    scores = {"curves": [0.010, 0.010], "curves+cap": [0.009, 0.010], "final": [0.002, 0.012],
              "all-points": [0.008, 0.009], "broken": [float("inf"), 0.001]}
    assert set(consistent_winners(scores, "curves")) == {"curves", "all-points"}
    assert set(consistent_winners({"curves": [], "final": []}, "curves")) == {"curves"}


def test_auto_says_when_a_better_average_was_passed_over(monkeypatch):
    frame = synthetic_family(0, sizes=np.geomspace(5e7, 8e8, 5), tokens=np.geomspace(2e8, 3e10, 10))
    canned = {"curves": [0.010, 0.010], "curves+cap": [0.010, 0.010], "all-points": [0.002, 0.012],
              "all-points+cap": [0.009, 0.0095]}
    monkeypatch.setattr(fits.method, "rollout_scores", lambda candidates, ts, n: (canned, [{}, {}]))
    fit = AutoMethod(candidates=(CURVES, ALL_POINTS)).fit(frame)
    assert fit.choice["method"] == "all-points+cap" and fit.method.cap  # beat curves at both sizes
    assert "all-points did better on average but not at every held-out size" in fit.choice["reason"]
    canned["all-points+cap"] = [0.011, 0.002]
    fit = AutoMethod(candidates=(CURVES, ALL_POINTS)).fit(frame)
    assert fit.choice["method"] == "curves" and "so curves, the default, stays" in fit.choice["reason"]


def test_with_two_sizes_auto_falls_back_to_the_first_candidate_and_says_why():
    fit = DEFAULT_METHOD.fit(synthetic_family(0, sizes=np.array([1e8, 2e8])))
    assert fit.choice["method"] == "curves" == fit.method.name
    assert fit.choice["reason"].startswith("too few sizes to hold one out")
    assert fit.choice["folds"] == [] and all(s == [] for s in fit.choice["rollout_are"].values())


def test_a_candidate_that_cannot_be_fitted_in_a_rollout_is_never_chosen():
    frame = synthetic_family(0, sizes=np.geomspace(5e7, 8e8, 4), tokens=np.geomspace(2e8, 3e10, 10))
    # Final losses of equal-length runs are at one token count: no Chinchilla law can be fitted to them.
    broken = FINAL.with_params(name="final-chinchilla", form="chinchilla")
    fit = AutoMethod(candidates=(broken, CURVES)).fit(frame)
    assert fit.choice["rollout_mean"]["final-chinchilla"] is None  # inf, stored as strict JSON
    assert fit.choice["method"] == "curves"


def test_identical_candidates_are_fitted_once_per_fold(monkeypatch):
    frame = synthetic_family(0, sizes=np.geomspace(5e7, 8e8, 4), tokens=np.geomspace(2e8, 3e10, 10))
    calls = []
    original = Method.fit

    def counting(self, train, **kwargs):
        calls.append(self.name)
        return original(self, train, **kwargs)

    monkeypatch.setattr(Method, "fit", counting)
    twin = CURVES.with_params(name="twin")  # another name, the same fit
    fit = AutoMethod(candidates=(CURVES, twin, FINAL)).fit(frame)
    # Two folds: curves fitted once per fold (the twin reuses curves'), then the winner. The final losses of
    # these equal-length runs support only a size law, blind to tokens: that candidate is not considered.
    assert calls[:-1] == ["curves", "curves"] and len(calls) == 3
    assert fit.choice["rollout_are"]["twin"] == fit.choice["rollout_are"]["curves"]
    assert fit.choice["method"] != "twin"  # a tie goes to the earlier candidate
    assert "not considered: final" in fit.choice["reason"]


@pytest.mark.parametrize("seed", [0, 9])
def test_the_default_method_extrapolates_an_exact_law_in_tokens_too(seed):
    frame = synthetic_family(seed)  # 5 sizes, 30 checkpoints each, every run to 3e10 tokens, 0.5% noise
    truth = true_loss(FAR_N, FAR_D)
    assert CURVES.fit(frame).predict(FAR_N, FAR_D) == pytest.approx(truth, rel=0.01)
    fit = DEFAULT_METHOD.fit(frame)
    assert fit.predict(FAR_N, FAR_D) == pytest.approx(truth, rel=0.02), fit.choice["method"]


@pytest.mark.parametrize("case", ["two-sizes", "failed-candidate"])
def test_to_dict_is_strict_json_whatever_the_choice(case):
    if case == "two-sizes":
        fit = DEFAULT_METHOD.fit(synthetic_family(0, sizes=np.array([1e8, 2e8])))
    else:
        frame = synthetic_family(0, sizes=np.geomspace(5e7, 8e8, 4), tokens=np.geomspace(2e8, 3e10, 10))
        fit = AutoMethod(candidates=(FINAL.with_params(name="final-chinchilla", form="chinchilla"), CURVES)).fit(frame)
    strict(fit.to_dict())


# --- the cap by smaller runs --------------------------------------------------------


def test_cap_by_smaller_runs_uses_only_runs_clearly_smaller_and_no_longer():
    ts = TrainSet.from_frame(pd.DataFrame({
        "model": ["s", "s", "m", "m"], "params": [1e8, 1e8, 4e8, 4e8], "tokens": [1e9, 4e9, 1e9, 4e9],
        "value": [3.0, 2.5, 2.8, 2.2]}))
    n = np.array([[2e8, 2e8], [8e8, 5e7]])
    d = np.array([[4e9, 2e9], [4e9, 4e9]])
    pred = np.full((2, 2), 2.6)
    out = cap_by_smaller_runs(ts, n, d, pred)
    # (2e8, 4e9): the small run's 2.5 (half the size); (2e8, 2e9): only the small run's 1e9 checkpoint (3.0),
    # no cap; (8e8, 4e9): every run, best 2.2; (5e7, 4e9): no run that small, no cap.
    np.testing.assert_array_equal(out, [[2.5, 2.6], [2.2, 2.6]])
    np.testing.assert_array_equal(pred, np.full((2, 2), 2.6))  # the input is not modified
    assert cap_by_smaller_runs(ts, 8e8, 4e9, 2.0) == 2.0  # a prediction already below is kept


def test_cap_ignores_runs_of_nearly_the_same_size():
    """Shapes differ at one size: a run 0.9x the target's size bounds nothing, one at half its size does."""
    ts = TrainSet.from_frame(pd.DataFrame({
        "model": ["a", "b"], "params": [9e8, 5e8], "tokens": [4e9, 4e9], "value": [2.4, 2.7]}))
    assert cap_by_smaller_runs(ts, 1e9, 4e9, 2.6) == 2.6
    assert cap_by_smaller_runs(ts, 1e9, 4e9, 2.8) == 2.7


# --- what the data support ------------------------------------------------------------


def test_the_data_checks_accept_a_frame_or_a_trainset(curves_family):
    ts = TrainSet.from_frame(curves_family)
    assert choose_form(ts) == choose_form(curves_family) == CHINCHILLA.with_terms(schedule=True)
    assert choose_form(ts, terms=()) == CHINCHILLA
    assert has_curves(ts) and has_curves(curves_family)
    assert not shows_overfitting(ts) and not shows_overfitting(curves_family)
    assert exponents_identified(ts, CHINCHILLA) and exponents_identified(curves_family, CHINCHILLA)
    finals = ts.take(ts.is_last())
    assert not has_curves(finals) and not exponents_identified(finals, CHINCHILLA)


def test_the_defaults_are_auto_over_curves_final_and_all_points():
    assert isinstance(DEFAULT_METHOD, AutoMethod) and DEFAULT_METHOD.folds == 2
    assert DEFAULT_METHOD.candidates == (CURVES, FINAL, ALL_POINTS)
    assert isinstance(CURVES.fit(synthetic_family(1)), Fit)

"""fits.advice: which run to train next, by the error model and by the runs' own fit, on synthetic families with a
known law; fits.simulated: the own-fit evidence; fits.advice_backtest on a corpus family."""
import json

import numpy as np
import pytest

from fits.advice import (
    AdviceInputError,
    advise,
    candidate_sizes,
    largest_affordable,
    recipe_tokens,
    tokens_recipe,
)
from fits.advice_backtest import follow_advice, snap, summarise_follow
from fits.errormodel import LEVELS, ErrorModel
from fits.method import DEFAULT_METHOD
from fits.simulated import own_fit_spread, simulated_run
from fits.trainset import FitInputError, TrainSet

from .conftest import synthetic_family, true_loss

TARGET_N, TARGET_D = 6.4e9, 1.3e11


def toy_error_model(scale_up=0.5, n_models=-0.1, compute=-0.05, fraction=0.0):
    """A hand-made error model with the corpus model's signs: a larger scale-up hurts; models, compute and
    more of each run seen help."""
    effects = {"log_scale_up": scale_up, "n_models": n_models, "log_compute_share": compute, "fraction": fraction}
    coefficients = {}
    for level, names in LEVELS.items():
        coef = [effects.get(n, 0.0) for n in names]
        coefficients[level] = {str(q): {"intercept": float(np.log(0.01)) + shift, "coef": coef}
                               for q, shift in ((0.1, -1.0), (0.5, 0.0), (0.9, 1.0))}
    return ErrorModel(coefficients=coefficients, margin={lev: [0.0, 0.0] for lev in LEVELS})


def _runs(sizes, tokens=np.geomspace(1e8, 2e10, 20), seed=0):
    return synthetic_family(seed, sizes=np.asarray(sizes, dtype=float), tokens=tokens, point_noise=0.005,
                            run_noise=0.01)


def test_with_a_long_extrapolation_the_advice_is_a_larger_size_by_either_evidence():
    runs = _runs([5e7, 1e8])  # the target is 64x the largest run
    for model in (toy_error_model(), None):
        advice = advise(runs, TARGET_N, TARGET_D, 3e20, error_model=model)
        run = advice.runs[0]
        assert run["params"] > 10 * 1e8, advice.ranked_by
        assert run["flops"] <= 3e20 * (1 + 1e-9)
        assert run["scale_up"] == pytest.approx(TARGET_N / run["params"])
        now, after = advice.expected_are["now"], advice.expected_are["after"]
        assert after["p50"] < now["p50"] and after["p90"] < now["p90"]
        assert advice.ranked_by == ("error model" if model is not None else "own fit")


def test_the_advised_run_follows_the_runs_recipe_and_gets_an_evaluation_schedule():
    runs = _runs([5e7, 1e8, 2e8])  # every run on 2e10 tokens: one token count for every size
    advice = advise(runs, TARGET_N, TARGET_D, 1e20, error_model=toy_error_model(), own_fit=False)
    run = advice.runs[0]
    assert advice.recipe["slope"] == pytest.approx(0.0, abs=1e-9)
    assert run["tokens"] == pytest.approx(2e10)
    assert run["params"] == pytest.approx(1e20 / (6 * 2e10), rel=1e-6)  # the largest the budget affords
    assert run["evaluate_every_tokens"] == pytest.approx(run["tokens"] / run["checkpoints"])
    assert run["drop_before_tokens"] == pytest.approx(1e9)


def test_recipe_proportional_tokens_and_the_largest_affordable_size():
    runs = _runs([1e8, 4e8], tokens=np.geomspace(1e8, 4e8, 5))
    ts = TrainSet.from_frame(runs.assign(run_tokens=5 * runs["params"]))  # runs planned for 5 tokens a parameter
    recipe = tokens_recipe(ts)
    assert recipe["slope"] == pytest.approx(1.0)
    assert recipe_tokens(recipe, 8e8) == pytest.approx(4e9)
    n = largest_affordable(recipe, 6 * 1.6e9 * 8e9)  # D = 5 N: 6 N (5 N) = budget
    assert n == pytest.approx(1.6e9, rel=1e-9)


def test_candidates_skip_sizes_already_trained():
    sizes = candidate_sizes([1e8, 4e8], 1.6e9, 5)
    assert sizes.max() == pytest.approx(1.6e9)
    assert all(min(abs(np.log(s / t)) for t in (1e8, 4e8)) >= np.log(1.1) for s in sizes)


def test_several_runs_are_advised_in_turn_within_the_budget():
    runs = _runs([5e7, 1e8])
    # Enough for more than the largest run allowed (half the target): the rest goes to the next runs.
    advice = advise(runs, TARGET_N, TARGET_D, 1e21, error_model=toy_error_model(), own_fit=False, max_runs=3)
    assert len(advice.runs) == 3
    assert advice.runs[0]["params"] == pytest.approx(TARGET_N / 2)
    assert sum(r["flops"] for r in advice.runs) <= 1e21 * (1 + 1e-6)
    assert len({r["params"] for r in advice.runs}) == len(advice.runs)
    assert advice.expected_are["after_runs"] == len(advice.runs)
    assert advice.expected_are["after"] == advice.runs[-1]["expected_are_after"]


def test_the_advice_reports_runner_ups_reasons_and_is_strict_json():
    advice = advise(_runs([5e7, 1e8, 2e8]), TARGET_N, TARGET_D, 3e20, error_model=toy_error_model(), n_boot=8)
    data = json.loads(json.dumps(advice.to_dict(), allow_nan=False))
    assert data["version"] == 1 and data["ranked_by"] == "error model"
    assert len(data["runner_ups"]) == 3 and data["runner_ups"] == data["candidates"][1:4]
    assert data["candidates"][0]["params"] == data["runs"][0]["params"]
    assert data["current"]["sizes"] == [5e7, 1e8, 2e8] and data["current"]["error_model"]["level"] == "fit"
    assert data["runs"][0]["own_fit"]["expected"]["p50"] > 0  # the own fit is reported beside the ranking
    assert any("own fit ranks this run" in r for r in data["reasons"])
    assert "error model" in data["expected_are"]["evidence"]


def test_bad_requests_name_their_field():
    runs = _runs([5e7, 1e8])
    cases = [({"budget_flops": 1e10}, "budget_flops"), ({"target_params": 8e7}, "target_params"),
             ({"budget_flops": -1}, "budget_flops"), ({"max_runs": 9}, "max_runs")]
    for change, field in cases:
        kwargs = {"target_params": TARGET_N, "target_tokens": TARGET_D, "budget_flops": 1e20, **change}
        with pytest.raises(AdviceInputError) as err:
            advise(runs, error_model=toy_error_model(), own_fit=False, **kwargs)
        assert err.value.field == field
    with pytest.raises(AdviceInputError) as err:
        advise(runs, TARGET_N, TARGET_D, 1e20, own_fit=False)
    assert err.value.field == "error_model"


def test_a_simulated_run_takes_the_law_s_values():
    fit = DEFAULT_METHOD.fit(_runs([5e7, 1e8, 2e8]))
    sim = simulated_run(fit, 1e9, 2e10, checkpoints=10)
    assert len(sim) == 10 and sim["tokens"].iloc[-1] == pytest.approx(2e10) and (sim["run_tokens"] == 2e10).all()
    assert sim["value"].to_numpy() == pytest.approx(fit.result.predict(sim["params"], sim["tokens"], None, 2e10))
    assert sim["value"].iloc[-1] == pytest.approx(true_loss(1e9, 2e10), rel=0.03)


def test_the_own_fit_is_reproducible_and_a_larger_run_lowers_its_expected_error():
    fit = DEFAULT_METHOD.fit(_runs([5e7, 1e8, 2e8, 4e8]))
    now = own_fit_spread(fit, TARGET_N, TARGET_D, n_boot=10, seed=3)
    again = own_fit_spread(fit, TARGET_N, TARGET_D, n_boot=10, seed=3)
    assert now == again
    big = own_fit_spread(fit, TARGET_N, TARGET_D, [simulated_run(fit, 2e9, 2e10)], n_boot=10, seed=3)
    assert big["scale_up"] == pytest.approx(TARGET_N / 2e9) and big["dof"] == now["dof"] + 1
    assert big["expected"]["p50"] < now["expected"]["p50"]
    assert now["n_failed"] == 0 and now["sd_log"] > 0


def test_snap_picks_the_nearest_free_size_that_fits():
    costs = {1e8: 1.0, 3e8: 3.0, 1e9: 10.0}
    assert snap(8e8, [3e8, 1e9], costs, 20.0) == 1e9
    assert snap(8e8, [3e8, 1e9], costs, 5.0) == 3e8
    assert snap(8e8, [1e9], costs, 5.0) is None


def test_following_the_advice_on_a_corpus_family(family):
    frame = family("lambda")  # 5 sizes with curves: the two smallest, then 2 advised steps at most
    table = follow_advice(frame, toy_error_model())
    assert len(table) >= 1 and (table["error"] == "").all()
    first = table.iloc[0]
    sizes = np.sort(frame["params"].unique())
    assert first["added_params"] == sizes[-2]  # the largest size below the target, as the advice leans to
    assert first["increasing_compute"] <= first["compute"] <= first["at_least_compute"]
    assert np.isfinite(table["are_advice"]).all() and np.isfinite(table["are_increasing"]).all()
    summary = summarise_follow(table)
    assert summary["families"] == 1 and set(summary["by_step"]) == set(table["step"])


def test_advice_on_a_corpus_family_s_two_smallest_sizes(family):
    frame = family("lambda")
    sizes = np.sort(frame["params"].unique())
    runs = frame[frame["params"].isin(sizes[:2])]
    budget = 6 * sizes[-2] * frame[frame["params"] == sizes[-2]]["tokens"].max()
    advice = advise(runs, sizes[-1], frame["tokens"].max(), budget, n_boot=8)
    assert advice.ranked_by == "own fit" and advice.runs[0]["params"] > sizes[1]
    assert advice.expected_are["after"]["p50"] < advice.expected_are["now"]["p50"]


def test_a_budget_that_affords_no_size_beyond_the_largest_trained_says_the_run_barely_helps():
    runs = _runs([5e7, 1e8, 4e8])  # 2e10 tokens a run: 3e19 FLOPs afford 2.5e8 parameters at most ...
    flat = toy_error_model(n_models=0.0, compute=0.0)  # ... and only the scale-up matters to this model
    advice = advise(runs, TARGET_N, TARGET_D, 3e19, error_model=flat, own_fit=False)
    assert advice.runs[0]["params"] < 4e8
    assert any("barely changes" in w and "no size closer to the target" in w for w in advice.warnings)


def test_now_is_the_fit_s_own_design_and_a_run_changes_only_what_it_adds():
    from fits.advice import current_design, design_columns, with_run

    runs = _runs([5e7, 1e8, 2e8]).assign(run_tokens=4e10)  # runs half done
    fit = DEFAULT_METHOD.fit(runs)
    now = current_design(TrainSet.from_frame(runs), fit, TARGET_N, TARGET_D)
    assert design_columns(now) == pytest.approx(fit.design(TARGET_N, TARGET_D), nan_ok=True)
    after = design_columns(with_run(now, 1e9, 4e10))
    assert after["n_models"] == 4 and after["scale_up"] == pytest.approx(TARGET_N / 1e9)
    assert after["train_compute_share"] > design_columns(now)["train_compute_share"]
    for kept in ("fraction", "rmse_log", "rollout_are", "max_epochs", "has_curves"):
        assert after[kept] == pytest.approx(design_columns(now)[kept], nan_ok=True)


def test_a_request_is_checked_without_fitting():
    from fits.advice import validate_advice_request

    runs = _runs([5e7, 1e8])
    assert validate_advice_request(runs, TARGET_N, TARGET_D, 1e20, 2) == {
        "target_params": TARGET_N, "target_tokens": TARGET_D, "budget_flops": 1e20, "max_runs": 2}
    for args, field in (((TARGET_N, TARGET_D, 1e10), "budget_flops"), ((TARGET_N, "x", 1e20), "target_tokens"),
                        ((TARGET_N, TARGET_D, 1e20, 1.5), "max_runs"), ((TARGET_N, TARGET_D, 1e20, True), "max_runs")):
        with pytest.raises(AdviceInputError) as err:
            validate_advice_request(runs, *args)
        assert err.value.field == field
    with pytest.raises(FitInputError):
        validate_advice_request(runs.assign(value=-1.0), TARGET_N, TARGET_D, 1e20)

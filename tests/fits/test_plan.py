"""fits.plan: recommendations within a budget, impossible requests, and the held-out evaluation."""
import dataclasses
import json

import numpy as np
import pytest

from fits.errormodel import fit_error_model
from fits.jsonsafe import json_safe
from fits.plan import (
    PlanInputError,
    PlanRequest,
    compute_optimal,
    evaluate_plans,
    recommend,
)

from .conftest import synthetic_family
from .test_errormodel import flat_model, synthetic_sweep


@pytest.fixture(scope="module")
def model():
    return fit_error_model(synthetic_sweep())


def test_a_plan_spends_the_budget_on_models_smaller_than_the_target(model):
    plan = recommend(model, PlanRequest(target_params=7e9, target_tokens=1.4e11, budget_fraction=0.05)).to_dict()
    total = sum(m["flops"] for m in plan["models"])
    target_compute = 6 * 7e9 * 1.4e11
    assert total == pytest.approx(0.05 * target_compute, rel=1e-6)
    assert all(m["params"] < 7e9 for m in plan["models"])
    assert all(m["flops"] == pytest.approx(6 * m["params"] * m["tokens"]) for m in plan["models"])
    ex = plan["expected_are"]
    assert 0 < ex["p10"] <= ex["p50"] <= ex["p90"]
    assert set(plan["reasons"]) >= {"models", "tokens", "schedule", "expected_are"}
    assert {n["name"] for n in plan["naive"]} <= {"one-large-model", "k-smallest", "five-log-spaced"}
    assert [f for f in plan["frontier"] if f["chosen"]]
    json.dumps(plan)


def test_the_compute_budget_can_be_given_instead_of_tokens(model):
    a = recommend(model, PlanRequest(target_params=1e9, target_tokens=2e10, budget_flops=1e18)).to_dict()
    b = recommend(model, PlanRequest(target_params=1e9, target_compute=6 * 1e9 * 2e10, budget_flops=1e18)).to_dict()
    assert a["models"] == b["models"]


def test_constraints_bound_the_sizes(model):
    plan = recommend(model, PlanRequest(target_params=7e9, target_tokens=1.4e11, budget_fraction=0.05,
                                        min_size=1e8, max_size=1e9, max_models=3)).to_dict()
    sizes = [m["params"] for m in plan["models"]]
    assert len(sizes) <= 3 and min(sizes) >= 1e8 * (1 - 1e-9) and max(sizes) <= 1e9 * (1 + 1e-9)


@pytest.mark.parametrize("kwargs, field", [
    ({"target_params": -1, "target_tokens": 1e10, "budget_fraction": 0.1}, "target_params"),
    ({"target_params": 1e9, "budget_fraction": 0.1}, "target_tokens"),
    ({"target_params": 1e9, "target_tokens": 1e10}, "budget_flops"),
    ({"target_params": 1e9, "target_tokens": 1e10, "budget_fraction": 2.0}, "budget_fraction"),
    ({"target_params": 1e9, "target_tokens": 1e10, "budget_flops": 10.0}, "budget_flops"),
    ({"target_params": 1e9, "target_tokens": 1e10, "budget_fraction": 0.1, "max_size": 2e9}, "max_size"),
    ({"target_params": 1e9, "target_tokens": 1e10, "budget_fraction": 0.1, "min_size": 4e8, "max_size": 1e8},
     "min_size"),
    ({"target_params": "many", "target_tokens": 1e10, "budget_fraction": 0.1}, "target_params"),
])
def test_impossible_requests_name_the_field(model, kwargs, field):
    with pytest.raises(PlanInputError) as err:
        recommend(model, PlanRequest(**kwargs))
    assert err.value.field == field


def test_the_compute_optimal_split_follows_the_chinchilla_replication(model):
    out = compute_optimal(5.76e23)  # Chinchilla's own budget: ~70B params, ~1.4T tokens
    assert 3e10 < out["params"] < 1.5e11 and 15 < out["tokens_per_param"] < 25
    assert out["params_interval"][0] < out["params"] < out["params_interval"][1]
    plan = recommend(model, PlanRequest(target_params=7e9, target_tokens=1.4e11, budget_fraction=0.05)).to_dict()
    assert "Besiroglu" in plan["compute_optimal"]["source"]
    assert plan["compute_optimal"]["params"] == pytest.approx(compute_optimal(6 * 7e9 * 1.4e11)["params"])


def test_evaluate_plans_scores_recommendations_against_naive_designs(model, family):
    out = evaluate_plans(model, family("lambda"), budgets=(0.1, 0.3))
    assert out["rows"], "lambda has 5 sizes: it is evaluated"
    for row in out["rows"]:
        assert row["family"] == "lambda" and row["budget_fraction"] in (0.1, 0.3)
        assert row["recommended"]["design"]["train_compute_share"] <= row["budget_fraction"]
        assert {a["name"] for a in row["alternatives"]} <= {"one-large-model", "k-smallest", "five-log-spaced"}
        rec = row["recommended"]
        assert 0 < rec["predicted_p10"] <= rec["predicted_p50"] <= rec["predicted_p90"]
    assert 0.0 <= out["win_rate"] <= 1.0
    json.dumps(out, allow_nan=False)


# A model whose two levels disagree wildly: which band a plan shows says which level scored it.
TWO_LEVELS = flat_model(plan=(0.005, 0.01, 0.02), fit=(0.25, 0.5, 1.0))


def test_a_plan_is_scored_at_the_plan_level_since_none_of_its_runs_exist_yet():
    plan = recommend(TWO_LEVELS, PlanRequest(target_params=7e9, target_tokens=1.4e11, budget_fraction=0.05))
    assert plan.to_dict()["expected_are"] == pytest.approx({"p10": 0.005, "p50": 0.01, "p90": 0.02})


def test_evaluate_plans_scores_the_sweeps_designs_at_the_plan_level_too(family):
    # The sweep rows carry their fits' statistics (rmse_log), which would select the fit level by default.
    out = evaluate_plans(TWO_LEVELS, family("lambda"), budgets=(0.3,))
    assert out["rows"]
    for row in out["rows"]:
        rec = row["recommended"]
        assert (rec["predicted_p10"], rec["predicted_p50"], rec["predicted_p90"]) == pytest.approx((0.005, 0.01, 0.02))


def test_evaluate_plans_takes_a_model_per_family():
    asked = []

    def model_for(family):
        asked.append(family)
        return TWO_LEVELS

    frame = synthetic_family(0, sizes=np.geomspace(5e7, 8e8, 4), tokens=np.geomspace(2e8, 3e10, 8), name="syn")
    out = evaluate_plans(model_for, frame, budgets=(0.3,))
    assert asked == ["syn"] and out["rows"][0]["family"] == "syn"


def test_the_plans_reason_quotes_the_error_models_held_out_coverage(model):
    plan = recommend(model, PlanRequest(target_params=7e9, target_tokens=1.4e11, budget_fraction=0.05)).to_dict()
    assert "nan" not in plan["reasons"]["expected_are"]
    assert f"{model.validation['plan']['coverage']:.0%}" in plan["reasons"]["expected_are"]


REALISTIC = [dict(target_params=n, target_tokens=n * tpp, budget_fraction=b)
             for n in (1e9, 7e9, 7e10) for tpp in (20, 200) for b in (0.01, 0.1)]


@pytest.mark.parametrize("kwargs", REALISTIC, ids=lambda k: f"{k['target_params']:.0e}-{k['target_tokens']:.0e}-"
                                                            f"{k['budget_fraction']}")
def test_no_naive_design_the_plan_shows_has_a_lower_p90(model, kwargs):
    plan = recommend(model, PlanRequest(**kwargs)).to_dict()
    rec = plan["recommended"]
    assert {n["name"] for n in plan["naive"]} == {"one-large-model", "k-smallest", "five-log-spaced"}
    for n in plan["naive"]:
        assert rec["p90"] <= n["p90"]
        if n["p90"] == rec["p90"]:
            assert rec["p50"] <= n["p50"]
    assert plan["choice"]["naive_in_candidates"] == [n["name"] for n in plan["naive"]]
    for a in plan["alternatives"]:
        assert (a["p90"], a["p50"]) >= (rec["p90"], rec["p50"])


def test_the_plan_has_the_documented_shape(model):
    plan = recommend(model, PlanRequest(target_params=7e9, target_tokens=1.4e11, budget_fraction=0.05)).to_dict()
    assert plan["version"] == 2
    assert set(plan) >= {"request", "recommended", "naive", "alternatives", "warnings", "choice", "design", "models",
                         "expected_are", "schedule", "frontier", "compute_optimal", "reasons"}
    rec = plan["recommended"]
    assert set(rec) >= {"name", "description", "p10", "p50", "p90", "models", "total_flops", "train_compute_share"}
    assert rec["total_flops"] == pytest.approx(sum(m["flops"] for m in rec["models"]))
    assert {k: rec[k] for k in ("p10", "p50", "p90")} == plan["expected_are"]
    assert set(plan["naive"][0]) >= {"name", "sizes", "p10", "p50", "p90", "recommended"}
    assert all(set(a) >= {"name", "sizes", "p10", "p50", "p90", "why"} for a in plan["alternatives"])
    assert all(set(w) >= {"code", "message"} for w in plan["warnings"])
    json.dumps(plan, allow_nan=False)


def test_the_plan_explains_its_choice_by_the_factors_that_decided(model):
    plan = recommend(model, PlanRequest(target_params=7e9, target_tokens=1.4e11, budget_fraction=0.05)).to_dict()
    choice = plan["choice"]
    assert "p90" in choice["rule"] and choice["candidates"] > 100
    factors = {f["factor"]: f for f in choice["factors"]}
    assert {"scale-up", "number of sizes", "share of budget", "checkpoints"} <= set(factors)
    assert all(f["text"] and f["value"] for f in factors.values())
    assert "naive" in choice["summary"] and choice["summary"].startswith(plan["reasons"]["models"])
    assert not set("<>&'\"") & set(plan["reasons"]["models"])  # shown on the page as is
    for f in factors.values():
        for v in f["versus"]:
            assert v["against"] in ("the runner-up", "the best naive design") and v["p90_ratio"] > 0


def test_the_recommendation_may_be_a_naive_design_and_says_so():
    # A model under which every design scores the same: the tie goes to a named (naive) design.
    plan = recommend(flat_model(), PlanRequest(target_params=7e9, target_tokens=1.4e11, budget_fraction=0.05)).to_dict()
    chosen = [n["name"] for n in plan["naive"] if n["recommended"]]
    assert chosen == [plan["recommended"]["name"]] == [plan["design"]["name"]]
    assert plan["choice"]["summary"].startswith(chosen[0])


class NoModel:
    """An error model that must not be touched: any use fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the error model was used ({name}) before the request was checked")


@pytest.mark.parametrize("kwargs, fields", [
    ({"budget_flops": 1e19, "budget_fraction": 0.01}, ("budget_flops", "budget_fraction")),
    ({"target_compute": 1.2e20}, ("target_tokens", "target_compute")),
])
def test_conflicting_inputs_are_refused_naming_both_before_the_error_model_is_used(kwargs, fields):
    request = PlanRequest(**{"target_params": 1e9, "target_tokens": 2e10, "budget_fraction": 0.01, **kwargs})
    with pytest.raises(PlanInputError) as err:
        recommend(NoModel(), request)
    assert err.value.fields == fields and err.value.field == fields[0]
    assert all(f in str(err.value) for f in fields)


def codes(plan):
    return [w["code"] for w in plan["warnings"]]


WIDE = {"log_scale_up": [0.0, 8.0], "n_models": [1.0, 8.0], "log_compute_share": [-10.0, 3.0],
        "log_tokens_per_model": [14.0, 29.0], "log_max_epochs": [0.0, 3.0]}


def test_an_ordinary_plan_inside_the_corpus_has_no_warning(model):
    # The synthetic sweep's tokens per model are all 1e10: wider ranges, as a real corpus's.
    plan = recommend(dataclasses.replace(model, ranges=WIDE),
                     PlanRequest(target_params=1e9, target_tokens=2e10, budget_fraction=0.05)).to_dict()
    assert codes(plan) == []


def test_a_budget_above_the_targets_compute_warns(model):
    c_t = 6 * 7e9 * 1.4e11
    plan = recommend(model, PlanRequest(target_params=7e9, target_tokens=1.4e11, budget_flops=3 * c_t)).to_dict()
    assert "budget_exceeds_target" in codes(plan)


def test_a_target_beyond_the_sweeps_runs_warns_outside_corpus_and_says_which_feature():
    ranges = {"log_scale_up": [0.0, float(np.log(1000))], "n_models": [1.0, 6.0],
              "log_tokens_per_model": [float(np.log(1e8)), float(np.log(2e12))]}
    plan = recommend(flat_model(ranges=ranges, widen_per_unit=0.5),
                     PlanRequest(target_params=1e13, target_tokens=2e14, budget_fraction=0.01)).to_dict()
    (warning,) = [w for w in plan["warnings"] if w["code"] == "outside_corpus"]
    assert "target_tokens" in warning["features"] and "2e+14" in warning["message"]


def test_a_plan_outside_the_sweeps_ranges_warns_with_the_feature_and_the_covered_range():
    ranges = {"n_models": [1.0, 1.0]}  # a sweep of single models only: any plan of several sizes is outside
    plan = recommend(flat_model(ranges=ranges, widen_per_unit=0.0),
                     PlanRequest(target_params=7e9, target_tokens=1.4e11, budget_fraction=0.05)).to_dict()
    if plan["recommended"]["n_models"] > 1:
        (warning,) = [w for w in plan["warnings"] if w["code"] == "outside_corpus"]
        assert warning["features"] == ["n_models"] and "number of sizes" in warning["message"]


def test_extreme_tokens_per_parameter_warn(model):
    plan = recommend(model, PlanRequest(target_params=1e9, target_tokens=2e8, budget_fraction=0.1)).to_dict()
    (warning,) = [w for w in plan["warnings"] if w["code"] == "extreme_tokens_per_param"]
    assert "The target sees 0.2 tokens per parameter" in warning["message"]
    # The case: a budget far above the target's compute trains small models on ~50,000 tokens per parameter.
    plan = recommend(model, PlanRequest(target_params=3.5e9, target_compute=5.9e22, budget_flops=1e24)).to_dict()
    assert {"budget_exceeds_target", "extreme_tokens_per_param"} <= set(codes(plan))


def test_a_single_size_plan_warns_that_its_size_term_is_not_identified(model):
    plan = recommend(model, PlanRequest(target_params=7e9, target_tokens=1.4e11, budget_fraction=0.05,
                                        max_models=1)).to_dict()
    assert plan["recommended"]["n_models"] == 1 and "single_size" in codes(plan)
    assert [n["name"] for n in plan["naive"]] == ["one-large-model"]
    assert len(plan["choice"]["naive_left_out"]) == 2


def test_repeated_data_warns(model):
    plan = recommend(model, PlanRequest(target_params=7e9, target_tokens=1.4e11, budget_fraction=0.05,
                                        max_epochs=4)).to_dict()
    assert "repeated_data" in codes(plan)


def test_the_old_never_firing_checks_are_gone():
    # trained_on never held max_scale_up or compute_share_range: they could not fire, and now nothing reads them.
    model = flat_model(trained_on={"max_scale_up": 1.0, "compute_share_range": [0.5, 0.6]}, ranges=WIDE)
    plan = recommend(model, PlanRequest(target_params=7e9, target_tokens=1.4e11, budget_fraction=0.05)).to_dict()
    assert "outside_corpus" not in codes(plan)
    assert all(isinstance(w, dict) for w in plan["warnings"])


def test_a_wildly_widening_error_model_still_gives_a_json_safe_plan():
    # An error model learned from a few families can widen its band by e^1000 per unit outside its ranges.
    model = flat_model(ranges={"n_models": [10.0, 12.0]}, widen_per_unit=1000.0)  # every plan lies outside
    plan = json_safe(recommend(model, PlanRequest(target_params=7e9, target_tokens=1.4e11,
                                                  budget_fraction=0.05)).to_dict())
    json.dumps(plan, allow_nan=False)
    assert plan["recommended"]["models"] and "outside_corpus" in codes(plan)

"""fits.plan: recommendations within a budget, impossible requests, and the held-out evaluation."""
import json

import numpy as np
import pytest

from fits.errormodel import fit_error_model
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


def test_the_compute_optimal_split_follows_chinchilla():
    out = compute_optimal(5.76e23)  # Chinchilla's own budget: ~70B params, ~1.4T tokens
    assert 3e10 < out["params"] < 1.5e11
    assert out["params_interval"][0] < out["params"] < out["params_interval"][1]


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

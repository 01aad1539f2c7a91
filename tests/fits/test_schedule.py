"""fits.schedule: every run's own evaluation interval, and the plan and the prediction template as CSV."""
import io

import numpy as np
import pandas as pd
import pytest

from fits.api import predict_loss
from fits.errormodel import fit_error_model
from fits.plan import PlanRequest, recommend
from fits.policy import DEFAULT_POLICY
from fits.schedule import (
    EVALUATIONS_PER_RUN,
    PLAN_CSV_COLUMNS,
    TEMPLATE_COLUMNS,
    evaluation_points,
    plan_csv,
    prediction_template_csv,
    run_schedule,
    size_label,
)

from .conftest import true_loss
from .test_errormodel import synthetic_sweep


@pytest.fixture(scope="module")
def plan():
    model = fit_error_model(synthetic_sweep())
    return recommend(model, PlanRequest(target_params=7e9, target_tokens=1.4e11, budget_fraction=0.05)).to_dict()


def test_runs_of_different_lengths_each_get_about_fifty_evaluations():
    # The case: one interval of 2.05e9 tokens gave runs of 1e9 and 2e9 tokens no evaluation at all.
    runs = run_schedule([1e8, 2e8, 1e9], [1e9, 2e9, 2e10])
    for run in runs:
        assert run["eval_every_tokens"] <= run["tokens"] / 2
        assert EVALUATIONS_PER_RUN <= run["evaluations"] <= EVALUATIONS_PER_RUN * 1.1 + 1
    assert [r["eval_every_tokens"] for r in runs] == [2e7, 4e7, 4e8]


def test_the_interval_is_rounded_down_to_two_significant_digits():
    (run,) = run_schedule([1.3e8], [2.0612e9])
    assert run["eval_every_tokens"] == pytest.approx(4.1e7)
    assert run["flops"] == pytest.approx(6 * 1.3e8 * 2.0612e9) and run["model"] == "run1-130M"


def test_evaluations_run_through_training_and_end_at_its_last_token():
    points = evaluation_points(2.0612e9, 4.1e7)
    assert points[0] == pytest.approx(4.1e7) and points[-1] == 2.0612e9
    assert np.all(np.diff(points) > 0) and np.all(np.diff(points)[:-1] == pytest.approx(4.1e7))


def test_even_a_two_evaluation_schedule_evaluates_at_half_the_run():
    (run,) = run_schedule([1e6], [3e6], evaluations=1)
    assert run["eval_every_tokens"] <= 1.5e6 and run["evaluations"] >= 2


def test_the_fits_early_cut_and_thinning_are_each_runs_own():
    short, long = run_schedule([1e8, 1e9], [1.2e9, 4e10])
    assert short["drop_before_tokens"] == pytest.approx(0.6e9)  # half the run: the cut never empties a run
    assert long["drop_before_tokens"] == DEFAULT_POLICY.min_tokens
    assert long["checkpoints_used"] <= DEFAULT_POLICY.max_per_run
    assert 0 < short["checkpoints_used"] <= short["evaluations"]


def test_huge_runs_still_get_a_schedule():
    (run,) = run_schedule([1e28], [1e30])
    assert run["evaluations"] >= EVALUATIONS_PER_RUN and run["eval_every_tokens"] <= 5e29


def test_size_labels():
    assert [size_label(n) for n in (1.1e8, 7e9, 1.25e12, 950)] == ["110M", "7B", "1.25T", "950"]


def test_every_planned_model_carries_its_schedule(plan):
    for m in plan["recommended"]["models"]:
        assert m["eval_every_tokens"] <= m["tokens"] / 2
        assert set(m) >= {"model", "params", "tokens", "flops", "eval_every_tokens", "evaluations"}
    assert plan["models"] == plan["recommended"]["models"]


def test_the_plan_csv_has_one_row_per_run(plan):
    table = pd.read_csv(io.StringIO(plan_csv(plan)))
    assert tuple(table.columns) == PLAN_CSV_COLUMNS
    models = plan["recommended"]["models"]
    assert list(table["model"]) == [m["model"] for m in models]
    assert table["params"].to_numpy() == pytest.approx([m["params"] for m in models], rel=1e-9)
    assert table["evaluations"].tolist() == [m["evaluations"] for m in models]


def test_the_template_lists_each_runs_evaluation_points_with_value_empty(plan):
    table = pd.read_csv(io.StringIO(prediction_template_csv(plan)))
    assert tuple(table.columns) == TEMPLATE_COLUMNS == ("model", "params", "tokens", "value")
    assert table["value"].isna().all()
    for m in plan["recommended"]["models"]:
        rows = table[table["model"] == m["model"]]
        assert len(rows) == m["evaluations"] and rows["params"].nunique() == 1
        assert rows["tokens"].max() == pytest.approx(m["tokens"], rel=1e-9)


def test_a_filled_template_is_runs_a_prediction_can_be_made_from(plan):
    table = pd.read_csv(io.StringIO(prediction_template_csv(plan)))
    table["value"] = true_loss(table["params"], table["tokens"])
    table["family"] = "mine"
    target = plan["request"]
    predicted = predict_loss(table, target["target_params"], target["target_tokens"])
    truth = true_loss(target["target_params"], target["target_tokens"])
    assert float(predicted[0] if np.ndim(predicted) else predicted) == pytest.approx(float(truth), rel=0.05)

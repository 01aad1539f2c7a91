"""Next-run advice as a job: the request in numbers (target, budget from a plan), checks, and the runner."""
import pytest

from planner.jobs.models import Job
from planner.predictions.services import prediction_enqueue
from planner.runs.advice import AdviceRequestError, advice_enqueue, advice_request, advice_run, spent_flops
from tests.planner.plans.test_plans import error_model  # noqa: F401 (fixture)
from tests.planner.predictions.test_predictions import synthetic_runs

pytestmark = pytest.mark.django_db

RUNS = synthetic_runs()  # 1e8 .. 3e9 parameters on 2e9 .. 2e10 tokens
SPENT = sum(6 * n * 2e10 for n in (1e8, 3e8, 1e9, 3e9))


def plan_job(owner, *, status=Job.Status.SUCCEEDED, budget=2e21):
    result = {"request": {"target_params": 3e10, "target_tokens": 6e11, "budget_flops": budget}}
    return Job.objects.create(kind=Job.Kind.PLAN, status=status, created_by=owner,
                              input={"target_params": 3e10, "target_tokens": 6e11, "budget_flops": budget},
                              result=result if status == Job.Status.SUCCEEDED else None)


def test_the_runs_spend_6nd_of_their_planned_tokens():
    assert spent_flops(RUNS) == pytest.approx(SPENT)
    planned = [{**r, "run_tokens": 4e10} for r in RUNS]
    assert spent_flops(planned) == pytest.approx(2 * SPENT)


def test_a_budget_in_flops_and_a_target_as_given():
    checked = advice_request(runs=RUNS, target_params=3e10, target_tokens=2e11, budget_flops=1e21, max_runs=2)
    assert checked == {"target_params": 3e10, "target_tokens": 2e11, "budget_flops": 1e21, "max_runs": 2,
                       "budget": {"from": "request", "flops": 1e21},
                       "target_from": {"target_params": "request", "target_tokens": "request"}}


def test_a_plan_gives_the_target_and_its_budget_less_what_the_runs_spent(owner):
    plan = plan_job(owner)
    checked = advice_request(runs=RUNS, plan=plan)
    assert (checked["target_params"], checked["target_tokens"]) == (3e10, 6e11)
    assert checked["budget_flops"] == pytest.approx(2e21 - SPENT)
    assert checked["budget"] == {"from": f"plan {plan.pk}", "plan": plan.pk, "plan_budget_flops": 2e21,
                                 "spent_flops": pytest.approx(SPENT), "flops": pytest.approx(2e21 - SPENT)}
    # A target given in the request wins over the plan's.
    assert advice_request(runs=RUNS, plan=plan, target_tokens=2e11)["target_tokens"] == 2e11


def test_a_plan_not_made_yet_gives_its_budget_from_its_request(owner):
    plan = plan_job(owner, status=Job.Status.QUEUED)
    assert advice_request(runs=RUNS, plan=plan)["budget"]["plan_budget_flops"] == 2e21


def test_a_prediction_gives_its_target(owner):
    prediction = prediction_enqueue(runs=RUNS, target_params=2e10, target_tokens=[1e11, 4e11], coverage=0.8)
    checked = advice_request(runs=RUNS, prediction=prediction, budget_flops=1e21)
    assert (checked["target_params"], checked["target_tokens"]) == (2e10, 4e11)
    assert checked["target_from"] == {"target_params": f"prediction {prediction.pk}",
                                      "target_tokens": f"prediction {prediction.pk}"}


@pytest.mark.parametrize("request_, field, message", [
    ({"target_tokens": 2e11, "budget_flops": 1e21}, "target_params", "Give the target's params"),
    ({"target_params": 3e10, "target_tokens": 2e11}, "budget_flops", "Give the FLOPs left for new runs"),
    ({"target_params": 1e9, "target_tokens": 2e11, "budget_flops": 1e21}, "target_params",
     "The target (1e+09) must be larger than every run so far (largest 3e+09)."),
    ({"target_params": 3e10, "target_tokens": 2e11, "budget_flops": 1e10}, "budget_flops",
     "1e+10 FLOPs affords no run near the sizes trained"),
    ({"target_params": 3e10, "target_tokens": 2e11, "budget_flops": 1e21, "max_runs": 4}, "max_runs",
     "Must be a whole number between 1 and 3"),
    ({"target_params": -3, "target_tokens": 2e11, "budget_flops": 1e21}, "target_params", "not a positive number"),
])
def test_bad_requests_name_the_field(request_, field, message):
    with pytest.raises(AdviceRequestError) as caught:
        advice_request(runs=RUNS, **request_)
    assert caught.value.field == field and message in str(caught.value), str(caught.value)


def test_bad_runs_name_the_run_and_field():
    runs = [dict(r) for r in RUNS]
    runs[3]["value"] = float("nan")
    with pytest.raises(AdviceRequestError) as caught:
        advice_request(runs=runs, target_params=3e10, target_tokens=2e11, budget_flops=1e21)
    assert caught.value.field == "runs" and caught.value.messages[0].startswith("runs[3].value:")


def test_a_plan_whose_budget_the_runs_spent_is_refused(owner):
    plan = plan_job(owner, budget=SPENT / 2)
    with pytest.raises(AdviceRequestError) as caught:
        advice_request(runs=RUNS, plan=plan)
    assert caught.value.field == "plan" and "nothing is left for another run" in str(caught.value)
    with pytest.raises(AdviceRequestError, match="not both"):
        advice_request(runs=RUNS, plan=plan_job(owner), budget_flops=1e21)


def test_the_job_advises_by_the_own_fit_without_an_error_model(owner):
    job = advice_enqueue(runs=RUNS, target_params=3e10, target_tokens=2e11, budget_flops=1e21, created_by=owner)
    assert (job.kind, job.status, job.input["n_rows"], job.input["budget_flops"]) == ("advice", "queued", 48, 1e21)
    seen = []
    result = advice_run(job=job, progress=lambda f, m="": seen.append((f, m)))
    assert seen[-1] == (1.0, "done")
    assert result["ranked_by"] == "own fit" and result["error_model_version"] is None
    [run] = result["runs"]
    assert 3e9 < run["params"] <= 1.5e10 and run["flops"] == pytest.approx(6 * run["params"] * run["tokens"])
    assert run["flops"] <= 1e21 * (1 + 1e-9)
    assert run["evaluate_every_tokens"] == pytest.approx(run["tokens"] / 50)
    assert set(result["expected_are"]) >= {"now", "after", "evidence"}
    assert result["budget"] == {"from": "request", "flops": 1e21}


def test_the_job_advises_by_the_error_model_when_there_is_one(owner, error_model):
    job = advice_enqueue(runs=RUNS, target_params=3e10, target_tokens=2e11, budget_flops=1e21, max_runs=2)
    result = advice_run(job=job, progress=lambda *a: None)
    assert result["ranked_by"] == "error model" and result["error_model_version"] == error_model.version
    assert 1 <= len(result["runs"]) <= 2 and result["runner_ups"]

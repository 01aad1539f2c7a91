"""Fixtures of the runs tests: logged-in clients, finished predictions and advice (runners called directly)."""
import pytest

from planner.jobs.models import Job
from planner.predictions.services import prediction_enqueue
from planner.runs.advice import advice_enqueue, advice_run
from planner.runs.following import prediction_followed_run, prediction_update_enqueue
from tests.planner.plans.test_plans import error_model  # noqa: F401 (fixture)
from tests.planner.predictions.test_predictions import synthetic_runs

TARGET = {"target_params": 3e10, "target_tokens": 2e11}
PLANNED = 2e10  # the runs' planned length; synthetic_runs log 2e9 .. 2e10 tokens


def in_progress(up_to: float, **kwargs) -> list[dict]:
    """The synthetic runs as logged when they had seen ``up_to`` tokens, each planned to PLANNED."""
    return [{**r, "run_tokens": PLANNED} for r in synthetic_runs(**kwargs) if r["tokens"] <= up_to * (1 + 1e-9)]


def succeed(job: Job, runner) -> Job:
    """Run the job's runner here and store its result as a worker would."""
    result = runner(job=job, progress=lambda *args: None)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, result=result, progress=1.0)
    job.refresh_from_db()
    return job


@pytest.fixture
def logged_in(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def chain(owner, error_model):  # noqa: F811 (with an error model: no bootstraps, a second instead of seven)
    """Three predictions of one target as the runs advanced, each an update of the one before; all succeeded."""
    first = succeed(prediction_enqueue(runs=in_progress(6e9), coverage=0.8, created_by=owner, **TARGET),
                    prediction_followed_run)
    second = succeed(prediction_update_enqueue(previous=first, runs=in_progress(1.2e10), created_by=owner),
                     prediction_followed_run)
    third = succeed(prediction_update_enqueue(previous=second, runs=in_progress(2e10), created_by=owner),
                    prediction_followed_run)
    return [first, second, third]


@pytest.fixture
def finished_advice(owner):
    return succeed(advice_enqueue(runs=synthetic_runs(), target_params=3e10, target_tokens=2e11, budget_flops=1e21,
                                  created_by=owner), advice_run)

"""Plans as jobs (planner.plans.services): the runner, bad input naming the field, no error model yet, a real worker."""
import functools

import pytest

from planner.errormodels import services as services_errormodels
from planner.models import Job
from planner.plans.services import NO_MODEL_MESSAGE, NoErrorModel, plan_enqueue
from planner.errormodels.services import error_model_store
from planner.jobs.tasks import run_job
from tests.conftest import wait_for_job

pytestmark = pytest.mark.django_db(transaction=True)

REQUEST = {"target_params": 7e9, "target_tokens": 1.4e11, "budget_fraction": 0.05, "max_models": 6}


@functools.lru_cache(maxsize=1)
def small_error_model() -> dict:
    """A real error model learned from the sweep of three small corpus families (built once per process)."""
    from fits.data import primary_observations
    from fits.errormodel import fit_error_model
    from fits.sweep import run_sweep
    from tests.planner.errormodels.test_sweeps import SMALL_FAMILIES, corpus_slice

    rows, families = corpus_slice()
    frame = primary_observations(rows, families)
    return fit_error_model(run_sweep(frame, families=list(SMALL_FAMILIES))).to_dict()


@pytest.fixture
def error_model(db):
    return error_model_store(model=small_error_model())


def plan_job(**request):
    return Job.objects.create(kind=Job.Kind.PLAN, input={**REQUEST, **request})


def test_a_plan_job_stores_the_plan_and_the_error_model_version(error_model):
    job = plan_job()
    run_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    plan = job.result
    assert plan["error_model_version"] == error_model.version
    assert 1 <= len(plan["models"]) <= 6
    for m in plan["models"]:
        assert m["params"] < 7e9 and m["flops"] == pytest.approx(6 * m["params"] * m["tokens"])
    assert sum(m["flops"] for m in plan["models"]) <= 0.05 * 6 * 7e9 * 1.4e11 * (1 + 1e-9)
    # A three-family model may extrapolate the p90 to overflow: stored as null (unbounded).
    p10, p50, p90 = (plan["expected_are"][q] for q in ("p10", "p50", "p90"))
    assert p10 <= p50 and (p90 is None or p50 <= p90)
    assert {n["name"] for n in plan["naive"]} <= {"one-large-model", "k-smallest", "five-log-spaced"}
    assert [f for f in plan["frontier"] if f["chosen"]]
    assert set(plan["reasons"]) >= {"models", "tokens", "schedule", "expected_are"}


def test_non_finite_numbers_are_stored_as_null():
    import numpy as np

    from fits import json_safe

    plan = {"expected_are": {"p10": np.float64(0.01), "p90": float("inf")}, "frontier": [{"p50": np.nan}],
            "n": np.int64(3)}
    assert json_safe(plan) == {"expected_are": {"p10": 0.01, "p90": None}, "frontier": [{"p50": None}], "n": 3}


def test_the_worker_parses_each_error_model_version_once(error_model, monkeypatch):
    services_errormodels._models.clear()
    from fits.errormodel import ErrorModel

    calls = []
    real = ErrorModel.from_dict.__func__
    monkeypatch.setattr(ErrorModel, "from_dict", classmethod(lambda cls, d: calls.append(1) or real(cls, d)))
    for _ in range(3):
        run_job.apply(args=[plan_job().pk])
    assert len(calls) == 1
    assert Job.objects.filter(status="succeeded").count() == 3


def test_a_plan_job_without_an_error_model_fails_with_what_to_do(db):
    job = plan_job()
    run_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == "failed" and NO_MODEL_MESSAGE in job.error


def test_impossible_input_fails_the_job_naming_the_field(error_model):
    job = plan_job(max_size=8e9)
    run_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == "failed" and job.error.startswith("max_size:")
    assert job.result["field"] == "max_size"


@pytest.mark.parametrize("change, field", [
    ({"target_params": -1}, "target_params"),
    ({"target_tokens": None}, "target_tokens"),
    ({"budget_fraction": 2.0}, "budget_fraction"),
    ({"budget_fraction": None, "budget_flops": 10.0}, "budget_flops"),
    ({"min_size": 5e9, "max_size": 1e9}, "min_size"),
])
def test_enqueueing_rejects_impossible_input_naming_the_field_and_queues_nothing(error_model, change, field):
    from fits.plan import PlanInputError

    with pytest.raises(PlanInputError) as err:
        plan_enqueue(data={**REQUEST, **change})
    assert err.value.field == field
    assert not Job.objects.exists()


def test_enqueueing_without_an_error_model_refuses(db):
    with pytest.raises(NoErrorModel, match="POST /api/v1/sweeps/ first"):
        plan_enqueue(data=REQUEST)
    assert not Job.objects.exists()


@pytest.mark.worker
def test_a_plan_job_on_a_real_worker_goes_from_queued_to_succeeded(celery_worker_process, error_model):
    job = plan_enqueue(data=REQUEST)
    assert job.status == "queued"
    job = wait_for_job(job.pk)
    assert job.status == "succeeded", job.error
    assert job.result["error_model_version"] == error_model.version and job.result["models"]

"""Plans as jobs: validate a request, queue it, run fits.plan.recommend with the active error model."""
from __future__ import annotations

from fits import PlanInputError, PlanRequest, json_safe, recommend

from ..errormodels.models import ErrorModelArtifact
from ..errormodels.services import NO_MODEL_MESSAGE, error_model_loaded
from ..jobs.models import Job
from ..jobs.services import JobFailure, job_create

# The fields of fits.plan.PlanRequest a user may set (the reference law comes later with reference families).
REQUEST_FIELDS = ("target_params", "target_tokens", "target_compute", "budget_flops", "budget_fraction",
                  "min_size", "max_size", "max_models", "max_epochs")


class NoErrorModel(Exception):
    """Plans need an active error model (for the API: 409)."""

    def __init__(self):
        super().__init__(NO_MODEL_MESSAGE)


def plan_request(data: dict):
    """A fits.plan.PlanRequest from the given fields, validated (raises fits.plan.PlanInputError naming the field)."""
    request = PlanRequest(**{k: data[k] for k in REQUEST_FIELDS if data.get(k) is not None})
    request.resolved()
    return request


def plan_enqueue(*, data: dict, created_by=None) -> Job:
    """Check the request and that an error model exists, then queue the plan job.

    Raises PlanInputError (bad input: nothing is queued) or NoErrorModel.
    """
    plan_request(data)
    if not ErrorModelArtifact.objects.filter(is_active=True).exists():
        raise NoErrorModel()
    return job_create(
        kind=Job.Kind.PLAN, input={k: data[k] for k in REQUEST_FIELDS if data.get(k) is not None},
        created_by=created_by,
    )


def plan_run(*, job: Job, progress) -> dict:
    """The plan job's runner: the active error model's recommendation for the job's request."""
    loaded = error_model_loaded()
    if loaded is None:
        raise JobFailure(f"Cannot plan: {NO_MODEL_MESSAGE}.")
    artifact, model = loaded
    try:
        plan = recommend(model, plan_request(job.input))
    except PlanInputError as exc:
        raise JobFailure(str(exc), details={"field": exc.field, "reason": exc.reason}) from exc
    return {**json_safe(plan.to_dict()), "error_model_version": artifact.version}

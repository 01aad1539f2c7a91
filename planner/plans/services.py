"""Plans as jobs: validate a request, queue it, run fits.plan.recommend with the active error model."""
from __future__ import annotations

import json
from urllib.parse import urlencode

from django.urls import reverse

from fits import PlanInputError, PlanRequest, json_safe, plan_csv, prediction_template_csv, recommend

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


# --- the plan as files -----------------------------------------------------------------

# name -> (content type, file name suffix, the stored plan -> text). The CSVs need a version-2 plan (its runs'
# own schedules); the JSON is the stored plan as it is.
PLAN_FILES = {
    "plan.json": ("application/json", "plan.json", lambda plan: json.dumps(plan, indent=1, allow_nan=False) + "\n"),
    "plan.csv": ("text/csv", "runs.csv", plan_csv),
    "prediction-template.csv": ("text/csv", "prediction-template.csv", prediction_template_csv),
}


class NoPlanFile(LookupError):
    """The file cannot be made: an unknown name, a plan that has not succeeded, or one too old to hold it."""


def plan_file(*, job: Job, name: str) -> tuple[str, str, str]:
    """(content type, file name, content) of one of the plan's files (PLAN_FILES); raises NoPlanFile."""
    if name not in PLAN_FILES:
        raise NoPlanFile(f"No file {name!r}; a plan has {', '.join(PLAN_FILES)}.")
    if job.kind != Job.Kind.PLAN or job.status != Job.Status.SUCCEEDED or not job.result:
        raise NoPlanFile("The plan has not succeeded (yet): it has no files.")
    content_type, suffix, render = PLAN_FILES[name]
    if name != "plan.json" and "recommended" not in job.result:
        raise NoPlanFile("This plan was made before plans had per-run schedules: make it again for its CSV files.")
    return content_type, f"plan-{job.pk}-{suffix}", render(job.result)


def plan_prediction_form_url(job: Job) -> str:
    """The prediction form, filled in with the plan's target (and the plan, for its template)."""
    request = (job.result or {}).get("request") or job.input or {}
    query = {"plan": job.pk}
    for name in ("target_params", "target_tokens"):
        if request.get(name) is not None:
            query[name] = f"{float(request[name]):.6g}"
    return f"{reverse('prediction-new')}?{urlencode(query)}"

"""REST API v1 for plans.

- POST /plans/ (token): 202 + the plan job (Location); 400 names the field (both fields of a conflicting
  pair; an unknown key by its name), checked before the error model is looked up; 409 while no
  error model exists. GET /plans/ lists your plans (staff: all), /plans/<id>/ one plan, and its files
  /plans/<id>/plan.json, plan.csv, prediction-template.csv.
  A plan is always a job (no synchronous mode): the same code path serves the form,
  the API and the benchmark, and a worker keeps the parsed error model in memory.
"""
import re

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, permissions, renderers
from rest_framework.exceptions import NotFound

from ..api.base import Pagination, accepted, errors
from ..api.exceptions import Conflict
from ..api.filters import JobStatusFilter
from ..errormodels.services import error_model_rebuild
from ..api.throttling import CreationRateThrottle
from ..jobs.api import JobQuerysetMixin
from ..jobs.models import Job
from . import serializers as sp
from .services import NO_MODEL_MESSAGE, PLAN_FILES, NoErrorModel, NoPlanFile, plan_enqueue, plan_file

PLAN_REQUEST_EXAMPLE = {"target_params": 7e9, "target_tokens": 1.4e11, "budget_fraction": 0.05, "max_models": 8}
_RUN_EXAMPLE = {"model": "run1-215M", "params": 2.15e8, "tokens": 1.38e9, "flops": 1.78e18, "tokens_per_param": 6.41,
                "eval_every_tokens": 2.7e7, "evaluations": 52, "drop_before_tokens": 6.89e8, "checkpoints_used": 27}
# A 7B target on 1.4e11 tokens at 5% of its compute (rounded; runs and factors shortened).
PLAN_RESULT_EXAMPLE = {
    "version": 2,
    "recommended": {"name": "searched", "description": "6 sizes from 2.15e+08 to 2.15e+09 parameters", "n_models": 6,
                    "p10": 0.0023, "p50": 0.0128, "p90": 0.1156, "total_flops": 2.94e20, "models": [_RUN_EXAMPLE]},
    "naive": [{"name": "five-log-spaced", "sizes": [2.33e6, 1.53e9], "p10": 0.0022, "p50": 0.0161, "p90": 0.1823,
               "recommended": False}],
    "alternatives": [{"name": "searched", "n_models": 5, "sizes": [2.15e8, 2.15e9], "p10": 0.0023, "p50": 0.0134,
                      "p90": 0.1267, "p90_over_recommended": 1.1,
                      "factors": [{"factor": "number of sizes", "p90_ratio": 1.11,
                                   "text": "number of sizes: 5 sizes against 6 sizes raises its p90 x1.11"}],
                      "why": "5 sizes from 2.15e+08 to 2.15e+09 parameters: p90 12.67% (1.10x the recommended); ..."}],
    "warnings": [{"code": "outside_corpus", "message": "Outside what the error model's sweep covered: ..."}],
    "choice": {"rule": "lowest p90, then lowest p50, then the cheaper design (plan level of the error model)",
               "candidates": 378, "summary": "6 sizes ... has the lowest plausible worst-case ARE ...",
               "factors": [{"factor": "scale-up", "value": "scale-up 3.26x", "text": "...",
                            "versus": [{"against": "the best naive design", "p90_ratio": 1.27}]}]},
    "compute_optimal": {"params": 6.89e9, "tokens": 1.42e11, "tokens_per_param": 20.6,
                        "params_interval": [6.42e9, 7.4e9], "tokens_interval": [1.32e11, 1.53e11],
                        "tokens_per_param_interval": [17.9, 23.8], "interval": [0.1, 0.9],
                        "source": "Chinchilla replication (Besiroglu et al. 2024, arXiv:2404.10102)"},
    "models": [_RUN_EXAMPLE], "expected_are": {"p10": 0.0023, "p50": 0.0128, "p90": 0.1156},
    "reasons": {"models": "6 sizes from 2.15e+08 to 2.15e+09 parameters has the lowest ..."},
    "error_model_version": 1,
}


class PlanListCreate(JobQuerysetMixin, generics.ListAPIView):
    serializer_class = sp.PlanJobSerializer
    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [CreationRateThrottle]  # POSTs only, shared with the plan form
    throttle_scope = "plans"
    pagination_class = Pagination
    filterset_class = JobStatusFilter
    job_kind = Job.Kind.PLAN

    @extend_schema(summary="List your plans (staff: all plans)", responses={200: sp.PlanJobSerializer, **errors(401)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Ask for a plan: which small models to train (a job)",
        description=(
            "The target (`target_params` and `target_tokens` or `target_compute`) and the budget for the "
            "small models (`budget_flops` or `budget_fraction` of the target's compute), optionally size "
            "bounds, `max_models` and `max_epochs`. Answers 202 with the job; poll its URL (Location) until "
            "`status` is succeeded: `result` then holds the plan (version 2: `recommended` with its p10/p50/p90 "
            "and each run's own schedule, the `naive` designs and the runners-up (`alternatives`) with theirs, "
            "`choice` with the factors that decided, `warnings` with stable codes, the `compute_optimal` split "
            "with its range, the `frontier` of other budgets), and `downloads` its files. Impossible input: "
            "400 naming the field; both fields of a conflicting pair (budget_flops and budget_fraction, "
            "target_tokens and target_compute): 400 naming both; an unknown key: 400 naming it; all checked "
            f"before the error model is looked up. No error model yet: 409 ({NO_MODEL_MESSAGE}; while one is being "
            "built, `details.rebuild` gives its job, status and progress)."
        ),
        request=sp.PlanRequestSerializer,
        responses={202: sp.PlanJobSerializer, **errors(400, 401, 409, 429, 503)},
        examples=[
            OpenApiExample("7B target, 5% of its compute", value=PLAN_REQUEST_EXAMPLE, request_only=True),
            OpenApiExample("Queued", response_only=True, status_codes=["202"], value={
                "id": 12, "kind": "plan", "status": "queued", "progress": 0.0, "input": PLAN_REQUEST_EXAMPLE,
                "result": None, "page_url": "https://scaleplan.example/plans/12/"}),
        ],
    )
    def post(self, request):
        form = sp.PlanRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            job = plan_enqueue(data=form.validated_data, created_by=request.user)
        except NoErrorModel as exc:
            conflict = Conflict(detail=str(exc), code="no_error_model")
            rebuild = error_model_rebuild()
            if rebuild is not None:  # being built (e.g. on a fresh server): say how far it is
                conflict.extra = {"rebuild": {"job": rebuild.pk, "status": rebuild.status, "progress": rebuild.progress,
                                              "message": rebuild.progress_message}}
            raise conflict from exc
        return accepted(request, sp.PlanJobSerializer, job)


class PlanDetail(JobQuerysetMixin, generics.RetrieveAPIView):
    serializer_class = sp.PlanJobSerializer
    job_kind = Job.Kind.PLAN

    @extend_schema(
        summary="One plan job: status, progress and, once succeeded, the plan",
        responses={200: sp.PlanJobSerializer, **errors(401, 404)},
        examples=[OpenApiExample("Succeeded", response_only=True, value={
            "id": 12, "kind": "plan", "status": "succeeded", "progress": 1.0, "input": PLAN_REQUEST_EXAMPLE,
            "result": PLAN_RESULT_EXAMPLE, "page_url": "https://scaleplan.example/plans/12/"})],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class CSVRenderer(renderers.BaseRenderer):
    """Lets a client ask for text/csv (Accept); the file views answer with the file itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, (bytes, str)) else renderers.JSONRenderer().render(data)


class PlanFile(JobQuerysetMixin, generics.GenericAPIView):
    job_kind = Job.Kind.PLAN
    renderer_classes = [renderers.JSONRenderer, CSVRenderer]
    pagination_class = None

    @extend_schema(
        operation_id="plans_file_retrieve",
        summary="A plan's files: the plan (JSON), its runs (CSV) or the prediction's template (CSV)",
        description=(
            "`plan.json`: the stored plan (`result`). `plan.csv`: one row per run to train (model, params, tokens, "
            "flops, tokens_per_param, eval_every_tokens, evaluations, drop_before_tokens, checkpoints_used). "
            "`prediction-template.csv`: each run's evaluation points in the prediction's runs format "
            "(model, params, tokens, value) with `value` empty, to fill in once the runs are trained and POST "
            "to /api/v1/predictions/. 404 until the plan has succeeded (and for the CSVs of a plan made before "
            "per-run schedules)."
        ),
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH),
                    OpenApiParameter("name", str, OpenApiParameter.PATH, enum=list(PLAN_FILES))],
        responses={(200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="plan.json"),
                   (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="plan.csv, prediction-template.csv"),
                   **errors(401, 404)},
    )
    def get(self, request, pk, name):
        if not re.fullmatch(r"[0-9]{1,18}", pk):  # the route takes any id, so that every wrong one is this 404
            raise NotFound(f"No plan {pk!r}.")
        job = self.get_object()
        try:
            content_type, filename, content = plan_file(job=job, name=name)
        except NoPlanFile as exc:
            raise NotFound(str(exc)) from exc
        response = HttpResponse(content, content_type=f"{content_type}; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

"""Plans, sweeps (rebuilds of the error model) and the active error model.

- POST /plans/ (token): 202 + the plan job (Location); 400 names the field; 409 while no
  error model exists. GET /plans/ lists your plans (staff: all), /plans/<id>/ one plan.
  A plan is always a job (no synchronous mode): the same code path serves the form,
  the API and the benchmark, and a worker keeps the parsed error model in memory.
- POST /sweeps/ (staff): 202 + the sweep job; GET /sweeps/, /sweeps/<id>/ (staff, or its creator).
- GET /error-model/ (public, like the corpus): the active artifact's version and validation.
"""
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics, permissions, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import Job
from ..services_plans import NO_MODEL_MESSAGE, NoErrorModel, plan_enqueue
from ..services_sweeps import error_model_active, sweep_enqueue
from . import serializers_plans as sp
from .exceptions import Conflict
from .filters import JobStatusFilter
from .permissions import IsJobOwnerOrStaff, IsStaff
from .throttling import CreationRateThrottle
from .views import Pagination, errors

PLAN_REQUEST_EXAMPLE = {"target_params": 7e9, "target_tokens": 1.4e11, "budget_fraction": 0.05, "max_models": 8}
PLAN_RESULT_EXAMPLE = {
    "design": {"n_models": 5, "scale_up": 4.0, "train_compute_share": 0.05, "tokens_per_param": 12.3},
    "models": [{"params": 1.1e8, "tokens": 1.35e9, "flops": 8.9e17}, {"params": 1.75e9, "tokens": 2.15e10,
                                                                       "flops": 2.26e20}],
    "expected_are": {"p10": 0.012, "p50": 0.035, "p90": 0.11},
    "schedule": {"evaluate_every_tokens": 4.3e8, "checkpoints_per_run": 50, "drop_before_tokens": [1e9, 1e9],
                 "checkpoints_used_per_run": 60},
    "frontier": [{"budget_flops": 2.94e20, "budget_fraction": 0.05, "n_models": 5, "largest_params": 1.75e9,
                  "p10": 0.012, "p50": 0.035, "p90": 0.11, "chosen": True}],
    "naive": [{"name": "one-large-model", "sizes": [3.5e9], "p10": 0.02, "p50": 0.06, "p90": 0.2}],
    "compute_optimal": {"params": 4.06e9, "tokens": 2.41e11, "tokens_per_param": 59.4,
                        "params_interval": [1.4e8, 1.2e11], "source": "Chinchilla (Hoffmann et al. 2022)"},
    "warnings": [], "reasons": {"models": "5 sizes from 1.1e+08 to 1.75e+09 parameters had the lowest expected ARE"},
    "error_model_version": 3,
}


def _accepted(request, serializer_class, job):
    body = serializer_class(job, context={"request": request}).data
    # str(): the URL is a DRF Hyperlink (a str subclass), which WSGI servers refuse in headers.
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": str(body["url"])})


class PlanListCreate(generics.ListAPIView):
    serializer_class = sp.PlanJobSerializer
    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [CreationRateThrottle]  # POSTs only, shared with the plan form
    throttle_scope = "plans"
    pagination_class = Pagination
    filterset_class = JobStatusFilter

    def get_queryset(self):
        qs = Job.objects.filter(kind=Job.Kind.PLAN).select_related("created_by")
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return qs.none()
        return qs if self.request.user.is_staff else qs.filter(created_by=self.request.user)

    @extend_schema(summary="List your plans (staff: all plans)", responses={200: sp.PlanJobSerializer, **errors(401)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Ask for a plan: which small models to train (a job)",
        description=(
            "The target (`target_params` and `target_tokens` or `target_compute`) and the budget for the "
            "small models (`budget_flops` or `budget_fraction` of the target's compute), optionally size "
            "bounds and `max_models`. Answers 202 with the job; poll its URL (Location) until `status` is "
            "succeeded: `result` then holds the plan (models, schedule, expected ARE with its interval, "
            "frontier, naive designs, compute-optimal split, warnings, reasons). Impossible input: 400 "
            f"naming the field. No error model yet: 409 ({NO_MODEL_MESSAGE})."
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
            raise Conflict(detail=str(exc), code="no_error_model") from exc
        return _accepted(request, sp.PlanJobSerializer, job)


class PlanDetail(generics.RetrieveAPIView):
    serializer_class = sp.PlanJobSerializer
    permission_classes = [permissions.IsAuthenticated, IsJobOwnerOrStaff]
    queryset = Job.objects.filter(kind=Job.Kind.PLAN).select_related("created_by")

    @extend_schema(
        summary="One plan job: status, progress and, once succeeded, the plan",
        responses={200: sp.PlanJobSerializer, **errors(401, 403, 404)},
        examples=[OpenApiExample("Succeeded", response_only=True, value={
            "id": 12, "kind": "plan", "status": "succeeded", "progress": 1.0, "input": PLAN_REQUEST_EXAMPLE,
            "result": PLAN_RESULT_EXAMPLE, "page_url": "https://scaleplan.example/plans/12/"})],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class SweepQuerysetMixin:
    serializer_class = sp.SweepJobSerializer
    permission_classes = [permissions.IsAuthenticated, IsStaff]
    queryset = Job.objects.filter(kind=Job.Kind.SWEEP).select_related("created_by")


class SweepListCreate(SweepQuerysetMixin, generics.ListAPIView):
    pagination_class = Pagination

    @extend_schema(summary="List rebuilds of the error model (staff)",
                   responses={200: sp.SweepJobSerializer, **errors(401, 403)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Rebuild the error model (a job split per family across workers; staff)",
        description=(
            "Backtests every design on every eligible corpus family (or the `families` given), one task per "
            "family; `progress` is the share of families swept. Then fits the error model, validates it "
            "leave-one-family-out, stores it as the next version and activates it. `result` once succeeded: "
            "artifact_version, validation, trained_on, laws, seconds."
        ),
        request=sp.SweepRequestSerializer,
        responses={202: sp.SweepJobSerializer, **errors(400, 401, 403, 503)},
        examples=[
            OpenApiExample("Three families", value={"families": ["gzip-pcfg-0.12", "gzip-pcfg-0.23", "t5-pile"]},
                           request_only=True),
            OpenApiExample("Succeeded", response_only=True, status_codes=["200"], value={
                "id": 3, "kind": "sweep", "status": "succeeded", "progress": 1.0,
                "result": {"artifact_version": 2, "laws": 2112, "seconds": 51.3,
                           "validation": {"coverage": 0.79, "median_abs_log_ratio": 0.52, "cases": 1980,
                                          "families": 34}}}),
        ],
    )
    def post(self, request):
        form = sp.SweepRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        job = sweep_enqueue(families=form.validated_data["families"], created_by=request.user)
        return _accepted(request, sp.SweepJobSerializer, job)


class SweepDetail(SweepQuerysetMixin, generics.RetrieveAPIView):
    permission_classes = [permissions.IsAuthenticated, IsJobOwnerOrStaff]

    @extend_schema(summary="One rebuild: status and progress (families swept / total)",
                   responses={200: sp.SweepJobSerializer, **errors(401, 403, 404)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ErrorModelDetail(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        summary="The active error model: version and held-out validation figures",
        responses={200: sp.ErrorModelSerializer, **errors(404)},
        examples=[OpenApiExample("Active", response_only=True, value={
            "version": 2, "created_at": "2026-11-28T10:40:00Z", "sweep_job": 3,
            "validation": {"coverage": 0.79, "coverage_family_weighted": 0.77, "median_abs_log_ratio": 0.52,
                           "cases": 1980, "families": 34, "method": "leave-one-family-out"},
            "trained_on": {"rows": 1980, "families": 34, "seconds": 12.1}})],
    )
    def get(self, request):
        artifact = error_model_active()
        if artifact is None:
            raise NotFound(NO_MODEL_MESSAGE)
        return Response(sp.ErrorModelSerializer(artifact).data)

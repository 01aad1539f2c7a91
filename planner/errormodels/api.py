"""REST API v1 for the error model: its rebuilds (sweeps) and the active artifact.

- POST /sweeps/ (staff): 202 + the sweep job; GET /sweeps/, /sweeps/<id>/ (staff, or its creator).
- GET /error-model/ (public, like the corpus): the active artifact's version and validation.
"""
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics, permissions
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from ..api.base import Pagination, accepted, errors
from ..api.permissions import IsJobOwnerOrStaff, IsStaff
from ..jobs.models import Job
from . import serializers as sp
from .services import NO_MODEL_MESSAGE, error_model_active, sweep_enqueue


class SweepQuerysetMixin:
    serializer_class = sp.SweepJobSerializer
    permission_classes = [permissions.IsAuthenticated, IsStaff]
    staff_only = "list or start rebuilds of the error model (sweeps)"
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
        return accepted(request, sp.SweepJobSerializer, job)


class SweepDetail(SweepQuerysetMixin, generics.RetrieveAPIView):
    permission_classes = [permissions.IsAuthenticated, IsJobOwnerOrStaff]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return self.queryset.none()
        return self.queryset.visible_to(self.request.user)  # another user's: 404, like a missing one

    @extend_schema(summary="One rebuild: status and progress (families swept / total)",
                   responses={200: sp.SweepJobSerializer, **errors(401, 404)})
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

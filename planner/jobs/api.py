"""REST API v1 for jobs: a user lists and reads their own jobs, staff see all; queued or running jobs can be cancelled.

Anonymous requests get 401; another user's job is a 404, exactly like a missing one. Errors: one shape for all,
see planner.api.exceptions.
"""
from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions
from rest_framework.response import Response

from ..api.base import Pagination, errors
from ..api.filters import JobFilter
from ..api.permissions import IsJobOwnerOrStaff
from . import serializers as s
from .models import Job
from .services import job_cancel


class JobQuerysetMixin:
    """A user's own jobs (staff: all), of one ``job_kind`` if set; another user's is a 404 like a missing one.

    Every job view of the API (plans, predictions, advice, sweeps, jobs) reads through it.
    """

    serializer_class = s.JobSerializer
    permission_classes = [permissions.IsAuthenticated, IsJobOwnerOrStaff]
    queryset = Job.objects.select_related("created_by")
    job_kind: str | None = None

    def get_queryset(self):
        qs = super().get_queryset()
        if self.job_kind:
            qs = qs.filter(kind=self.job_kind)
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return qs.none()
        return qs.visible_to(self.request.user)


class JobList(JobQuerysetMixin, generics.ListAPIView):
    pagination_class = Pagination
    filterset_class = JobFilter

    @extend_schema(summary="List your jobs (staff: all jobs)", responses={200: s.JobSerializer, **errors(401)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class JobDetail(JobQuerysetMixin, generics.RetrieveAPIView):
    @extend_schema(summary="One job: status, progress, result", responses={200: s.JobSerializer, **errors(401, 404)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class JobCancel(JobQuerysetMixin, generics.GenericAPIView):
    @extend_schema(
        summary="Cancel a queued or running job",
        request=None,
        responses={200: s.JobSerializer, **errors(401, 404, 409)},
    )
    def post(self, request, *args, **kwargs):
        job = job_cancel(job=self.get_object())
        return Response(self.get_serializer(job).data)

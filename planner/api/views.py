"""REST API v1: the corpus (read), corpus imports, stats refreshes and jobs.

Access:
- Corpus reads (families, runs, observations) are public. The corpus is built
  from published papers and repositories, so there is nothing secret in it, and
  notebooks and CI scripts should be able to read it without managing tokens.
- Writes need a token (``Authorization: Token <key>``; ``manage.py
  drf_create_token USER``). Imports change the shared corpus and are for staff,
  as in the admin; any authenticated user may ask for a stats refresh.
- Jobs are private: a user lists and reads their own jobs, staff see all.
  Anonymous requests to jobs get 401, another user's job 403.

Long work answers 202 with the job and a Location header to poll.
Errors: one shape for all, see planner.api.exceptions.
"""
import re

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import filters as drf_filters
from rest_framework import generics, permissions, status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from fits.canonical import CorpusValidationError

from ..jobs import job_cancel
from ..models import Family, Job, Observation, Run
from ..services_corpus import corpus_import_enqueue, corpus_stats_enqueue, upload_check_header
from . import serializers as s
from .exceptions import CorpusRejected
from .filters import FamilyFilter, JobFilter, ObservationFilter, RunFilter
from .permissions import IsJobOwnerOrStaff, IsStaff
from .throttling import CreationRateThrottle

ERRORS = {code: OpenApiResponse(s.ErrorSerializer, description=why) for code, why in {
    400: "Invalid input (details: field -> messages)",
    401: "Authentication needed",
    403: "Not allowed",
    404: "Not found",
    409: "Conflicts with the job's state",
    413: "Upload too large",
    415: "Unsupported media type",
    429: "Too many requests",
    503: "Task queue unreachable: nothing was created; retry later (Retry-After)",
}.items()}


def errors(*codes):
    return {code: ERRORS[code] for code in codes}


class Pagination(PageNumberPagination):
    """Pages of up to 1000 items; a page_size that is not a positive integer is a 400 (DRF would ignore it)."""

    page_size_query_param = "page_size"
    max_page_size = 1000

    def _positive_int(self, request, name):
        """The parameter's one value as a positive integer, None if absent; anything else is a 400."""
        values = request.query_params.getlist(name)
        if not values:
            return None
        if len(values) > 1 or not re.fullmatch(r"\s*[0-9]+\s*", values[0]) or int(values[0]) < 1:
            raise ValidationError({name: [f"Expected one positive integer, got {', '.join(map(repr, values))}."]})
        return int(values[0])

    def get_page_size(self, request):
        size = self._positive_int(request, self.page_size_query_param)
        return self.page_size if size is None else min(size, self.max_page_size)

    def get_page_number(self, request, paginator):
        number = self._positive_int(request, self.page_query_param)
        return 1 if number is None else number  # past the last page: DRF's 404 "Invalid page."

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = f"Items per page (default {self.page_size}; larger than " \
                                           f"{self.max_page_size} counts as {self.max_page_size})."
        return parameters


@extend_schema_view(
    get=extend_schema(summary="List families with summary statistics", responses={200: s.FamilySerializer})
)
class FamilyList(generics.ListAPIView):
    queryset = Family.objects.all()
    serializer_class = s.FamilySerializer
    pagination_class = Pagination
    permission_classes = [permissions.AllowAny]
    filterset_class = FamilyFilter
    filter_backends = [DjangoFilterBackend, drf_filters.SearchFilter]
    search_fields = ["name"]


class FamilyDetail(generics.RetrieveAPIView):
    queryset = Family.objects.all()
    serializer_class = s.FamilySerializer
    permission_classes = [permissions.AllowAny]

    @extend_schema(summary="One family", responses={200: s.FamilySerializer, **errors(404)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RunList(generics.ListAPIView):
    queryset = Run.objects.select_related("family")
    serializer_class = s.RunSerializer
    pagination_class = Pagination
    permission_classes = [permissions.AllowAny]
    filterset_class = RunFilter

    @extend_schema(summary="List runs (trained models)", responses={200: s.RunSerializer, **errors(400)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ObservationList(generics.ListAPIView):
    # Ordered like the fitter reads them: per run and metric, by tokens.
    queryset = Observation.objects.select_related("run__family").order_by("run_id", "metric", "tokens", "id")
    serializer_class = s.ObservationSerializer
    pagination_class = Pagination
    permission_classes = [permissions.AllowAny]
    filterset_class = ObservationFilter

    @extend_schema(summary="List observations", responses={200: s.ObservationSerializer, **errors(400)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


def _accepted(request, job):
    data = s.JobSerializer(job, context={"request": request}).data
    # str(): the URL is a DRF Hyperlink (a str subclass), which WSGI servers refuse in headers.
    return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": str(data["url"])})


class ImportCreate(APIView):
    permission_classes = [permissions.IsAuthenticated, IsStaff]
    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [CreationRateThrottle]
    throttle_scope = "uploads"

    @extend_schema(
        summary="Import a canonical corpus CSV(.gz) as a job",
        description=(
            "Multipart upload (field `file`). The header is checked at once (400 with "
            "details.problems [{line, column, reason}]); the rows are validated and imported by the "
            "job, whose result carries the report, or on failure the problems. Size limit: "
            "SCALEPLAN_MAX_UPLOAD_BYTES (413). Staff only."
        ),
        request={"multipart/form-data": s.ImportRequestSerializer},
        responses={202: s.JobSerializer, **errors(400, 401, 403, 413, 415, 429, 503)},
    )
    def post(self, request):
        # An oversized body never gets here: planner.uploads refuses it before it is read.
        form = s.ImportRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data["file"]
        try:
            upload_check_header(upload=upload)
        except CorpusValidationError as exc:
            raise CorpusRejected(exc) from exc
        job = corpus_import_enqueue(
            upload=upload,
            skip_invalid=form.validated_data["skip_invalid"],
            replace=form.validated_data["replace"],
            created_by=request.user,
        )
        return _accepted(request, job)


class StatsRefresh(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        summary="Recompute family summary statistics as a job",
        request=s.StatsRefreshRequestSerializer,
        responses={202: s.JobSerializer, **errors(400, 401, 503)},
    )
    def post(self, request):
        form = s.StatsRefreshRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        job = corpus_stats_enqueue(family_names=form.validated_data["families"], created_by=request.user)
        return _accepted(request, job)


class JobQuerysetMixin:
    serializer_class = s.JobSerializer
    permission_classes = [permissions.IsAuthenticated, IsJobOwnerOrStaff]
    queryset = Job.objects.select_related("created_by")


class JobList(JobQuerysetMixin, generics.ListAPIView):
    pagination_class = Pagination
    filterset_class = JobFilter

    def get_queryset(self):
        qs = super().get_queryset()
        return qs if self.request.user.is_staff else qs.filter(created_by=self.request.user)

    @extend_schema(summary="List your jobs (staff: all jobs)", responses={200: s.JobSerializer, **errors(401)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class JobDetail(JobQuerysetMixin, generics.RetrieveAPIView):
    @extend_schema(summary="One job: status, progress, result", responses={200: s.JobSerializer, **errors(401, 403, 404)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class JobCancel(JobQuerysetMixin, generics.GenericAPIView):
    @extend_schema(
        summary="Cancel a queued or running job",
        request=None,
        responses={200: s.JobSerializer, **errors(401, 403, 404, 409)},
    )
    def post(self, request, *args, **kwargs):
        job = job_cancel(job=self.get_object())
        return Response(self.get_serializer(job).data)

"""REST API v1: the corpus (read), corpus imports and stats refreshes.

Access:
- Corpus reads (families, runs, observations) are public. The corpus is built
  from published papers and repositories, so there is nothing secret in it, and
  notebooks and CI scripts should be able to read it without managing tokens.
- Writes need a token (``Authorization: Token <key>``; ``manage.py
  drf_create_token USER``). Imports change the shared corpus and are for staff,
  as in the admin; so are stats refreshes (each import refreshes the statistics it
  touched, so only a curator has a reason to ask; a refresh costs a worker seconds),
  and they are coalesced: a refresh of families already queued or running answers
  with that job.
- Jobs are private (planner.jobs.api).

Long work answers 202 with the job and a Location header to poll.
Errors: one shape for all, see planner.api.exceptions.
"""
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import filters as drf_filters
from rest_framework import generics, permissions
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.views import APIView

from fits import CorpusValidationError

from ..api.base import Pagination, accepted, errors
from ..api.exceptions import CorpusRejected
from ..api.filters import FamilyFilter, ObservationFilter, RunFilter
from ..api.permissions import IsStaff
from ..api.throttling import CreationRateThrottle
from ..jobs import serializers as js
from . import serializers as s
from .models import Family, Observation, Run
from .services import corpus_import_enqueue, corpus_stats_enqueue, upload_check_header


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


class ImportCreate(APIView):
    permission_classes = [permissions.IsAuthenticated, IsStaff]
    staff_only = "import corpus files"
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
        responses={202: js.JobSerializer, **errors(400, 401, 403, 413, 415, 429, 503)},
    )
    def post(self, request):
        # An oversized body never gets here: planner.corpus.uploads refuses it before it is read.
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
        return accepted(request, js.JobSerializer, job)


class StatsRefresh(APIView):
    permission_classes = [permissions.IsAuthenticated, IsStaff]
    staff_only = "refresh the corpus statistics (imports refresh the families they touch)"

    @extend_schema(
        summary="Recompute family summary statistics as a job (staff)",
        description="Coalesced: while a refresh of the same families (or of all) is queued or running, the answer "
                    "is that job (202, its Location) and no second one is started.",
        request=s.StatsRefreshRequestSerializer,
        responses={202: js.JobSerializer, **errors(400, 401, 403, 503)},
    )
    def post(self, request):
        form = s.StatsRefreshRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        job = corpus_stats_enqueue(family_names=form.validated_data["families"], created_by=request.user)
        return accepted(request, js.JobSerializer, job)

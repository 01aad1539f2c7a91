"""Predictions of a target's loss from the user's own runs: POST queues a job, GET lists or reads them.

Writes need a token; a prediction job, like every job, is visible to its
creator and to staff only (the list: your own; staff: all).
"""
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics, permissions
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser

from fits import CorpusTooLarge, CorpusValidationError

from ..api.base import Pagination, accepted, errors
from ..api.exceptions import CorpusRejected, PayloadTooLarge
from ..api.filters import JobStatusFilter
from ..api.parsers import JSONParser
from ..api.throttling import CreationRateThrottle
from ..jobs.api import JobQuerysetMixin
from ..jobs.models import Job
from . import serializers as sp
from .services import PredictionInputError, prediction_enqueue, prediction_runs_from_csv, prediction_runs_from_json

JSON_EXAMPLE = {
    "runs": [
        {"model": "m-125m", "params": 125e6, "tokens": 2e9, "value": 3.61},
        {"model": "m-125m", "params": 125e6, "tokens": 2e10, "value": 3.05},
        {"model": "m-350m", "params": 350e6, "tokens": 2e10, "value": 2.78},
        {"model": "m-760m", "params": 760e6, "tokens": 2e10, "value": 2.62, "seed": "1"},
    ],
    "target_params": 6.7e9,
    "target_tokens": 3e11,
    "coverage": 0.8,
}
RESULT_EXAMPLE = {
    "prediction": 2.03, "lower": 1.71, "upper": 2.41, "coverage": 0.8, "target_params": 6.7e9,
    "target_tokens": 3e11, "points": [{"tokens": 3e11, "prediction": 2.03, "lower": 1.71, "upper": 2.41}],
    "law": {"law": "chinchilla", "params": {"E": 1.42, "A": 85.6, "alpha": 0.234, "B": 58655.0, "beta": 0.479}},
    "diagnostics": [{"code": "large_extrapolation", "level": "warning",
                     "message": "The target is 8.82x the largest run ..."}],
}


def _invalid(exc: PredictionInputError):
    return ValidationError({exc.field: exc.messages})


class PredictionListCreate(JobQuerysetMixin, generics.ListAPIView):
    serializer_class = sp.PredictionJobSerializer
    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [CreationRateThrottle]  # POSTs only, shared with the prediction form
    throttle_scope = "predictions"
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    pagination_class = Pagination
    filterset_class = JobStatusFilter
    job_kind = Job.Kind.PREDICTION

    @extend_schema(summary="List your predictions (staff: all predictions)",
                   responses={200: sp.PredictionJobSerializer, **errors(400, 401)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Predict a target's loss from your own small runs (a job)",
        description=(
            "The runs format of CORPUS_FORMAT.md \"Runs for a prediction\": either a JSON body with `runs` (one "
            "item per checkpoint: model, params, tokens, value; optional seed, step, epochs, metric, family, "
            "run_tokens), or a multipart upload of a CSV(.gz) in `file` (the same columns; a 4-column file "
            "`model,params,tokens,value` is enough) holding one family. When the rows carry several metrics, "
            "the loss is fitted (validation before training loss) unless `metric` names another; the rows of "
            "the others are counted in the result (`data.other_metrics`), not dropped silently. Runs follow the "
            "importer's value rules (names, ranges, epochs >= 0, one params per run, no conflicting duplicates). "
            "With the target's `target_params`, `target_tokens` (a number, or a list for a curve) and `coverage` "
            "(default 0.8). Answers 202 with the job whether or not an error model exists (without one, the "
            "interval says what it lacks); poll its URL (Location) until `status` is succeeded: `result` then "
            "holds the prediction, its interval, the fitted law (`law.formula`: the one actually used) and "
            "diagnostics. Bad input: 400 naming the field (and the run index, or the file's line and column); "
            "an unknown key: 400 naming it."
        ),
        request={
            "application/json": sp.PredictionJsonRequestSerializer,
            "multipart/form-data": sp.PredictionUploadRequestSerializer,
        },
        responses={202: sp.PredictionJobSerializer, **errors(400, 401, 413, 415, 429, 503)},
        examples=[
            OpenApiExample("Runs as JSON", value=JSON_EXAMPLE, request_only=True, media_type="application/json"),
            OpenApiExample(
                "Queued job", response_only=True, status_codes=["202"],
                value={"id": 7, "kind": "prediction", "status": "queued", "progress": 0.0, "result": None},
            ),
        ],
    )
    def post(self, request):
        if request.content_type.startswith("multipart/") or request.content_type.startswith("application/x-www"):
            # An oversized body never gets here: planner.corpus.uploads refuses it before it is read.
            form = sp.PredictionUploadRequestSerializer(data=request.data)
            form.is_valid(raise_exception=True)
            upload = form.validated_data["file"]
            try:
                runs, source = prediction_runs_from_csv(source=upload, metric=form.validated_data["metric"])
            except CorpusTooLarge as exc:
                raise PayloadTooLarge(str(exc.problems[0])) from exc
            except CorpusValidationError as exc:
                raise CorpusRejected(exc) from exc
            except PredictionInputError as exc:
                raise _invalid(exc) from exc
            source["filename"] = upload.name
        else:
            form = sp.PredictionJsonRequestSerializer(data=request.data)
            form.is_valid(raise_exception=True)
            try:
                runs, source = prediction_runs_from_json(runs=[dict(r) for r in form.validated_data["runs"]],
                                                         metric=form.validated_data["metric"] or None)
            except PredictionInputError as exc:
                raise _invalid(exc) from exc
        data = form.validated_data
        try:
            job = prediction_enqueue(
                runs=runs, target_params=data["target_params"], target_tokens=data["target_tokens"],
                coverage=data["coverage"], source=source, created_by=request.user,
            )
        except PredictionInputError as exc:
            raise _invalid(exc) from exc
        return accepted(request, sp.PredictionJobSerializer, job)


class PredictionDetail(JobQuerysetMixin, generics.RetrieveAPIView):
    serializer_class = sp.PredictionJobSerializer
    job_kind = Job.Kind.PREDICTION

    @extend_schema(
        summary="One prediction job: status, progress and, once succeeded, the result",
        responses={200: sp.PredictionJobSerializer, **errors(401, 404)},
        examples=[OpenApiExample("Succeeded", response_only=True, value={
            "id": 7, "kind": "prediction", "status": "succeeded", "progress": 1.0, "message": "done",
            "result": RESULT_EXAMPLE,
        })],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

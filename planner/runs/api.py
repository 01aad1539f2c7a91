"""REST API v1 for the user's runs where they live and as they train.

- POST /predictions/imports/ (multipart): a tracker's logs and how to read them, and the target: 202 + the
  prediction job (the import report in ``input.tracker``); bad logs or options: 400 naming the field.
- POST /predictions/<id>/updates/ (JSON runs, or multipart: a runs CSV or the logs): 202 + a new prediction
  linked to <id>, whose result adds ``history`` and ``uploads_history``.
- GET /advice/ (yours; staff: all), POST /advice/ (JSON or multipart): 202 + an advice job;
  GET /advice/<id>/.

Writes need a token and count against the predictions' throttle (shared with the prediction form and API).
Another user's prediction, plan or advice is a 404 in a URL, and "not one of yours" as a field.
"""
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics, permissions
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.views import APIView

from fits import CorpusTooLarge, CorpusValidationError

from ..api.base import Pagination, accepted, errors
from ..api.exceptions import CorpusRejected, PayloadTooLarge
from ..api.filters import JobStatusFilter
from ..api.parsers import JSONParser
from ..api.throttling import CreationRateThrottle
from ..jobs.api import JobQuerysetMixin
from ..jobs.models import Job
from ..predictions.services import PredictionInputError, prediction_enqueue, prediction_runs_from_csv
from . import serializers as sr
from .advice import AdviceRequestError, advice_enqueue
from .following import prediction_update_enqueue, tracker_defaults
from .trackers import OPTION_FIELDS, TrackerInputError, tracker_runs

ADVICE_EXAMPLE = {"prediction": 7, "plan": 12, "max_runs": 1}
ADVICE_RESULT_EXAMPLE = {
    "ranked_by": "error model", "budget_flops": 1.7e21,
    "runs": [{"params": 1.2e9, "tokens": 2.4e10, "flops": 1.7e20, "tokens_per_param": 20.0, "scale_up": 5.8,
              "evaluate_every_tokens": 4.8e8, "checkpoints": 50, "drop_before_tokens": 1e9,
              "expected_are_after": {"p10": 0.008, "p50": 0.021, "p90": 0.052}}],
    "expected_are": {"now": {"p10": 0.015, "p50": 0.041, "p90": 0.11}, "after": {"p10": 0.008, "p50": 0.021,
                                                                                  "p90": 0.052},
                     "evidence": "error model, fit level: ...", "after_runs": 1},
    "runner_ups": [], "reasons": ["of 8 candidate runs ..."], "warnings": [], "error_model_version": 3,
    "budget": {"from": "plan 12", "plan": 12, "plan_budget_flops": 2e21, "spent_flops": 3e20, "flops": 1.7e21},
}


def _invalid(exc):
    return ValidationError({exc.field: exc.messages})


def _own(request, pk, kind) -> Job:
    job = Job.objects.visible_to(request.user).filter(pk=pk, kind=kind).first()
    if job is None:
        raise NotFound(f"No {kind} {pk}.")  # another user's: exactly as a missing one
    return job


def _field_job(request, pk, kind, field) -> Job | None:
    if pk is None:
        return None
    job = Job.objects.visible_to(request.user).filter(pk=pk, kind=kind).first()
    if job is None:
        raise ValidationError({field: [f"No {kind} {pk} of yours."]})
    return job


def _read_logs(data: dict, *, params_mapping=None) -> tuple[list[dict], dict]:
    try:
        given = data.get("params") or data.get("params_file")
        return tracker_runs(logs=data["logs"], options={k: data.get(k) for k in OPTION_FIELDS},
                            params_upload=data.get("params_file"), params_text=data.get("params") or "",
                            params_mapping=None if given else params_mapping)
    except TrackerInputError as exc:
        raise _invalid(exc) from exc


def _read_csv(upload, field="file") -> tuple[list[dict], dict]:
    try:
        runs, source = prediction_runs_from_csv(source=upload)
    except CorpusTooLarge as exc:
        raise PayloadTooLarge(str(exc.problems[0])) from exc
    except CorpusValidationError as exc:
        raise CorpusRejected(exc) from exc
    except PredictionInputError as exc:
        raise ValidationError({field: exc.messages}) from exc
    return runs, {**source, "filename": upload.name}


def _logs_source(tracker: dict) -> dict:
    return {"filename": tracker["filename"], "metric": tracker["options"]["metric"], "tracker": tracker}


class TrackerImportCreate(APIView):
    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [CreationRateThrottle]
    throttle_scope = "predictions"  # shared with predictions: an import is a prediction
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        summary="Predict a target's loss from runs as a tracker logs them (TensorBoard, W&B, MLflow; a job)",
        description=(
            "A multipart upload of the logs in `logs`, the loss `metric`, tokens per step (`tokens_per_step`, or "
            "a `tokens_column` series) and each run's parameter count (`params` as CSV text `run,params` or JSON, "
            "or a `params_file`; else from the tracker's config), with the target as for a prediction. The logs "
            "are read at once (bounded like any upload: bytes, bytes extracted, archive members, values read): "
            "bad logs or options are a 400 naming the field and the file. Answers 202 with the prediction job: "
            "`input.tracker.report` says what was imported and what was not, and why; the result adds how the "
            "prediction moved as the runs advanced (`history`)."
        ),
        request={"multipart/form-data": sr.TrackerImportRequestSerializer},
        responses={202: sr.FollowedPredictionSerializer, **errors(400, 401, 413, 415, 429, 503)},
    )
    def post(self, request):
        form = sr.TrackerImportRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        runs, tracker = _read_logs(data)
        try:
            job = prediction_enqueue(runs=runs, target_params=data["target_params"],
                                     target_tokens=data["target_tokens"], coverage=data["coverage"],
                                     source=_logs_source(tracker), created_by=request.user)
        except PredictionInputError as exc:
            raise ValidationError({"logs" if exc.field in ("runs", "file") else exc.field: exc.messages}) from exc
        return accepted(request, sr.FollowedPredictionSerializer, job)


class PredictionUpdateCreate(APIView):
    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [CreationRateThrottle]
    throttle_scope = "predictions"
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        summary="Update a prediction with newer checkpoints: a new prediction linked to it (a job)",
        description=(
            "The runs of prediction {id} plus the posted rows (a checkpoint posted again replaces its value; a "
            "run's planned length `run_tokens` is the newest given), for the same target. JSON `runs`, or a "
            "multipart runs CSV in `file`, or the tracker's logs in `logs` (options default to those of the "
            "chain's last import). Nothing new: 400. Answers 202 with the new prediction (`input.follows`, "
            "`input.snapshots`); its result adds `history` and `uploads_history`, the prediction over the chain."
        ),
        request={"application/json": sr.UpdateJsonRequestSerializer,
                 "multipart/form-data": sr.UpdateUploadRequestSerializer},
        responses={202: sr.FollowedPredictionSerializer, **errors(400, 401, 404, 413, 415, 429, 503)},
    )
    def post(self, request, pk):
        previous = _own(request, pk, Job.Kind.PREDICTION)
        if request.content_type.startswith(("multipart/", "application/x-www")):
            form = sr.UpdateUploadRequestSerializer(data=request.data)
            form.is_valid(raise_exception=True)
            data = form.validated_data
            if data.get("logs"):
                defaults = tracker_defaults(previous) or {"options": {}, "params": None}
                options = {**defaults["options"], **{k: data[k] for k in OPTION_FIELDS if data.get(k)}}
                runs, tracker = _read_logs({**data, **options}, params_mapping=defaults["params"])
                field, source = "logs", _logs_source(tracker)
            else:
                (runs, source), field = _read_csv(data["file"]), "file"
        else:
            form = sr.UpdateJsonRequestSerializer(data=request.data)
            form.is_valid(raise_exception=True)
            runs, source, field = [dict(r) for r in form.validated_data["runs"]], {}, "runs"
        try:
            job = prediction_update_enqueue(previous=previous, runs=runs, source=source, field=field,
                                            created_by=request.user)
        except PredictionInputError as exc:
            raise ValidationError({field if exc.field in ("runs", "file") else exc.field: exc.messages}) from exc
        return accepted(request, sr.FollowedPredictionSerializer, job)


class AdviceListCreate(JobQuerysetMixin, generics.ListAPIView):
    serializer_class = sr.AdviceJobSerializer
    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [CreationRateThrottle]  # POSTs only
    throttle_scope = "predictions"  # shared with predictions (an advice costs about as much)
    pagination_class = Pagination
    filterset_class = JobStatusFilter
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    job_kind = Job.Kind.ADVICE

    @extend_schema(summary="List your next-run advice (staff: all)",
                   responses={200: sr.AdviceJobSerializer, **errors(401)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Which run to train next (a job)",
        description=(
            "The runs so far (`prediction`: one of your predictions; or `runs` as JSON; or a runs CSV in a "
            "multipart `file`), the target (`target_params`, `target_tokens`; default: the plan's, else the "
            "prediction's) and the FLOPs left for new runs (`budget_flops`, or `plan`: its budget less what the "
            "runs take, 6 N D at each run's planned tokens). Answers 202 with the advice job; once succeeded, "
            "`result` holds the advised run(s) (size, tokens, when to evaluate), the expected ARE now and after, "
            "the evidence (the active error model, else the own fit), reasons, runner-ups and warnings."
        ),
        request={"application/json": sr.AdviceJsonRequestSerializer,
                 "multipart/form-data": sr.AdviceUploadRequestSerializer},
        responses={202: sr.AdviceJobSerializer, **errors(400, 401, 413, 415, 429, 503)},
        examples=[OpenApiExample("From a prediction and a plan", value=ADVICE_EXAMPLE, request_only=True,
                                 media_type="application/json")],
    )
    def post(self, request):
        multipart = request.content_type.startswith(("multipart/", "application/x-www"))
        form = (sr.AdviceUploadRequestSerializer if multipart else sr.AdviceJsonRequestSerializer)(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        prediction = _field_job(request, data.get("prediction"), Job.Kind.PREDICTION, "prediction")
        plan = _field_job(request, data.get("plan"), Job.Kind.PLAN, "plan")
        source = {}
        if multipart:
            runs, about = _read_csv(data["file"])
            source["filename"] = about["filename"]
            if prediction is not None:
                raise ValidationError({"prediction": ["Send a prediction or a runs file, not both."]})
        elif prediction is not None:
            if data.get("runs"):
                raise ValidationError({"runs": ["Send a prediction or runs, not both."]})
            runs = prediction.input.get("runs", [])
        elif data.get("runs"):
            runs = [dict(r) for r in data["runs"]]
        else:
            raise ValidationError({"runs": ["Send the runs so far, or a prediction to take them from."]})
        try:
            job = advice_enqueue(runs=runs, target_params=data.get("target_params"),
                                 target_tokens=data.get("target_tokens"), budget_flops=data.get("budget_flops"),
                                 plan=plan, prediction=prediction, max_runs=data["max_runs"], source=source,
                                 created_by=request.user)
        except AdviceRequestError as exc:
            raise _invalid(exc) from exc
        return accepted(request, sr.AdviceJobSerializer, job)


class AdviceDetail(JobQuerysetMixin, generics.RetrieveAPIView):
    serializer_class = sr.AdviceJobSerializer
    job_kind = Job.Kind.ADVICE

    @extend_schema(
        summary="One advice job: status, progress and, once succeeded, the advice",
        responses={200: sr.AdviceJobSerializer, **errors(401, 404)},
        examples=[OpenApiExample("Succeeded", response_only=True, value={
            "id": 21, "kind": "advice", "status": "succeeded", "progress": 1.0, "result": ADVICE_RESULT_EXAMPLE})],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

"""Input and output of the runs API: logs for a prediction, a prediction's update, next-run advice."""
from django.conf import settings
from django.urls import reverse
from rest_framework import serializers

from ..api.base import SingleValuedFormMixin
from ..jobs.serializers import JobSerializer
from ..predictions.serializers import (
    PositiveFloatField,
    PredictionJobSerializer,
    PredictionRunSerializer,
    PredictionTargetSerializer,
)
from ..predictions.services import MAX_PREDICTION_ROWS
from .advice import MAX_RUNS
from .trackers import SOURCES


def _upload(upload):
    if upload.size == 0:
        raise serializers.ValidationError("The file is empty.")
    if upload.size > settings.SCALEPLAN_MAX_UPLOAD_BYTES:
        raise serializers.ValidationError(
            f"The file is {upload.size} bytes; the limit is {settings.SCALEPLAN_MAX_UPLOAD_BYTES} bytes.")
    return upload


def _text(help_text):
    return serializers.CharField(required=False, allow_blank=True, default="", max_length=200, help_text=help_text)


class TrackerOptionsSerializer(SingleValuedFormMixin, serializers.Serializer):
    """How to read the logs (fits.read_runs)."""

    source = serializers.ChoiceField(choices=SOURCES, default="auto", help_text="auto: recognised from the files.")
    metric = serializers.CharField(
        max_length=200, required=False,
        help_text="The loss: its TensorBoard tag, W&B column or MLflow key (e.g. train/loss).")
    tokens_per_step = PositiveFloatField(required=False, help_text="Tokens = step x this (or per run in the params).")
    tokens_column = _text("Or a series logged at the same steps giving the tokens seen (e.g. train/tokens_seen).")
    params = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=200_000,
        help_text="Each run's parameter count: CSV text with a header, run,params (optional tokens_per_step, "
                  "run_tokens, run_steps), or JSON {run: params}. Runs it does not list take the count from their "
                  "tracker config.")
    params_file = serializers.FileField(required=False, help_text="The same as a .csv or .json file.")
    params_key = _text("The config key or params column holding the count, if not a usual one.")
    only_runs = _text("Import only these runs (names separated by commas).")
    experiment = _text("MLflow experiment (name or id), for a store holding several.")

    def validate_params_file(self, upload):
        return _upload(upload)

    def validate_logs(self, upload):
        return _upload(upload)


class TrackerImportRequestSerializer(TrackerOptionsSerializer, PredictionTargetSerializer):
    repeatable = ("target_tokens",)  # one value each for a curve
    logs = serializers.FileField(
        help_text="TensorBoard: a .zip or .tar(.gz) of the log directory (one sub-directory per run) or one event "
                  "file; W&B: a chart's Export CSV or run histories (CSV, JSONL, JSON; several in a .zip); MLflow: "
                  "a metric history CSV or a .zip of an mlruns store.")

    def validate(self, data):
        if not (data.get("metric") or "").strip():
            raise serializers.ValidationError({"metric": ["Name the loss metric."]})
        return data


class UpdateJsonRequestSerializer(serializers.Serializer):
    runs = PredictionRunSerializer(many=True, allow_empty=False, max_length=MAX_PREDICTION_ROWS,
                                   help_text="The newer checkpoints (or all of them again).")


class UpdateUploadRequestSerializer(TrackerOptionsSerializer):
    file = serializers.FileField(required=False, help_text="A runs CSV(.gz): model, params, tokens, value "
                                                           "(run_tokens and the other canonical columns optional).")
    logs = serializers.FileField(required=False, help_text="Or the tracker's logs; options default to those of "
                                                           "the chain's last import (each run's size included).")

    def validate(self, data):
        if bool(data.get("file")) == bool(data.get("logs")):
            raise serializers.ValidationError({"file": ["Send a runs CSV in `file` or the logs in `logs` (one of "
                                                        "the two)."]})
        return data

    def validate_file(self, upload):
        return _upload(upload)


class AdviceRequestSerializer(serializers.Serializer):
    prediction = serializers.IntegerField(required=False, min_value=1,
                                          help_text="One of your predictions: its runs and, unless given, its target.")
    target_params = PositiveFloatField(required=False, help_text="Default: the plan's or the prediction's.")
    target_tokens = PositiveFloatField(required=False, help_text="Default: the plan's or the prediction's (its last).")
    budget_flops = PositiveFloatField(required=False, help_text="FLOPs left for new runs.")
    plan = serializers.IntegerField(required=False, min_value=1,
                                    help_text="Or one of your plans: its budget less what the runs take (6 N D at each "
                                              "run's planned tokens); its target unless given.")
    max_runs = serializers.IntegerField(default=1, min_value=1, max_value=MAX_RUNS,
                                        help_text="Runs to advise, each as if the earlier ones were done.")


class AdviceJsonRequestSerializer(AdviceRequestSerializer):
    runs = PredictionRunSerializer(many=True, required=False, allow_empty=False, max_length=MAX_PREDICTION_ROWS,
                                   help_text="The runs so far (instead of a prediction's).")


class AdviceUploadRequestSerializer(SingleValuedFormMixin, AdviceRequestSerializer):
    file = serializers.FileField(help_text="The runs so far as a runs CSV(.gz).")

    def validate_file(self, upload):
        return _upload(upload)


# --- output ------------------------------------------------------------------------------


def _absolute(serializer, url):
    request = serializer.context.get("request")
    return request.build_absolute_uri(url) if request else url


class FollowedPredictionSerializer(PredictionJobSerializer):
    """A prediction job, with where its runs came from and its pages as the runs advance."""

    progress_url = serializers.SerializerMethodField()
    runs_csv_url = serializers.SerializerMethodField()

    class Meta(PredictionJobSerializer.Meta):
        fields = PredictionJobSerializer.Meta.fields + ["progress_url", "runs_csv_url"]
        read_only_fields = fields

    def get_input(self, job) -> dict:
        data = job.input or {}
        extra = {k: data[k] for k in ("follows", "snapshots", "update") if k in data}
        if "tracker" in data:
            extra["tracker"] = {k: data["tracker"][k] for k in ("filename", "options", "report", "thinned")}
        return {**super().get_input(job), **extra}

    def get_progress_url(self, job) -> str:
        return _absolute(self, reverse("prediction-progress", args=[job.pk]))

    def get_runs_csv_url(self, job) -> str:
        return _absolute(self, reverse("prediction-runs-csv", args=[job.pk]))


_ADVICE_INPUT = ("target_params", "target_tokens", "budget_flops", "max_runs", "budget", "target_from", "plan",
                 "prediction", "n_rows", "filename")


class AdviceJobSerializer(JobSerializer):
    """An advice job: JobSerializer with its own URL and page; ``result`` holds fits' Advice.to_dict()."""

    url = serializers.HyperlinkedIdentityField(view_name="api:advice-detail")
    page_url = serializers.SerializerMethodField()

    class Meta(JobSerializer.Meta):
        fields = JobSerializer.Meta.fields + ["page_url"]
        read_only_fields = fields

    def get_input(self, job) -> dict:
        return {k: v for k, v in (job.input or {}).items() if k in _ADVICE_INPUT}

    def get_page_url(self, job) -> str:
        return _absolute(self, reverse("advice-page", args=[job.pk]))

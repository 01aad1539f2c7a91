"""Input and output of /api/v1/predictions/: the runs (JSON) or a canonical CSV (multipart), and the target."""
import math

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.utils import html

from ..api.base import RejectUnknownFieldsMixin, SingleValuedFormMixin
from ..jobs.serializers import JobSerializer
from .services import DEFAULT_COVERAGE, MAX_PREDICTION_ROWS


def _positive(value):
    if not math.isfinite(value) or value <= 0:
        raise serializers.ValidationError("Must be a positive, finite number.")
    return value


class PositiveFloatField(serializers.FloatField):
    def to_internal_value(self, data):
        if isinstance(data, bool):  # float(True) is 1.0, but true is no count
            self.fail("invalid")
        return _positive(super().to_internal_value(data))


@extend_schema_field({
    "oneOf": [
        {"type": "number", "minimum": 0, "exclusiveMinimum": True},
        {"type": "array", "items": {"type": "number", "minimum": 0, "exclusiveMinimum": True}, "minItems": 1, "maxItems": 200},
    ],
})
class TargetTokensField(serializers.Field):
    """One token count, or a list of them (JSON), or "3e11" / "1e11, 3e11" (a form field)."""

    default_error_messages = {
        "invalid": "Expected a positive number or a list of positive numbers; got {value!r}.",
        "empty": "Give at least one token count.",
        "too_many": "At most 200 token counts.",
    }

    def get_value(self, dictionary):
        # A form may repeat the field, one value each (as OpenAPI serialises an array in a form):
        # all of them count, not only the last as DRF's default would take.
        if html.is_html_input(dictionary) and len(dictionary.getlist(self.field_name)) > 1:
            return dictionary.getlist(self.field_name)
        return super().get_value(dictionary)

    def to_internal_value(self, data):
        scalar = not isinstance(data, (list, tuple))
        items = data if not scalar else (data.split(",") if isinstance(data, str) else [data])
        if not items:
            self.fail("empty")
        if len(items) > 200:
            self.fail("too_many")
        values = []
        for item in items:
            if isinstance(item, bool):
                self.fail("invalid", value=item)
            try:
                value = float(item.strip() if isinstance(item, str) else item)
            except (TypeError, ValueError):
                self.fail("invalid", value=item)
            if not math.isfinite(value) or value <= 0:
                self.fail("invalid", value=item)
            values.append(value)
        return values[0] if scalar and len(values) == 1 else values

    def to_representation(self, value):
        return value


class PredictionRunSerializer(serializers.Serializer):
    """One checkpoint of one run: the columns of ../shared/CORPUS_FORMAT.md "Runs for a prediction"."""

    rejects_unknown_fields = True  # checked for the whole list at once (PredictionJsonRequestSerializer)

    model = serializers.CharField(max_length=200, help_text="Run (model) name; one run per model + seed.")
    params = PositiveFloatField(help_text="Parameter count N.")
    tokens = PositiveFloatField(help_text="Tokens seen at this checkpoint (D).")
    value = PositiveFloatField(help_text="Loss at this checkpoint.")
    seed = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    step = serializers.IntegerField(required=False, allow_null=True, min_value=0, help_text="Optimizer step, if known.")
    epochs = serializers.FloatField(required=False, allow_null=True, help_text="Passes over the data, if repeated.")
    metric = serializers.CharField(max_length=200, required=False, allow_blank=True,
                                   help_text="Metric name; rows of several metrics: the loss is chosen (or `metric` "
                                             "names it) and the others are counted in the result.")
    family = serializers.CharField(max_length=200, required=False, allow_blank=True,
                                   help_text="Family name; the runs of a prediction are one family's.")
    run_tokens = serializers.FloatField(required=False, allow_null=True,
                                        help_text="The run's planned final tokens, for a run still training.")


class PredictionTargetSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    target_params = PositiveFloatField(help_text="Parameter count of the model to predict.")
    target_tokens = TargetTokensField(
        help_text="Tokens of the target: one number, or a list for its predicted curve (form field: comma-separated)."
    )
    coverage = serializers.FloatField(
        default=DEFAULT_COVERAGE, min_value=0.5, max_value=0.99, help_text="Probability the interval should cover."
    )


class PredictionJsonRequestSerializer(PredictionTargetSerializer):
    runs = PredictionRunSerializer(
        many=True, allow_empty=False, max_length=MAX_PREDICTION_ROWS,
        help_text="The small runs' losses: one item per checkpoint.",
    )
    metric = serializers.CharField(
        required=False, allow_blank=True, default="",
        help_text="Metric to fit when the runs carry several; default: the loss by the canonical rule.",
    )

    def to_internal_value(self, data):
        # A run's unknown key is named with its index (runs[3].lr), once per key, before the items are parsed.
        runs = data.get("runs") if isinstance(data, dict) else None
        if isinstance(runs, list):
            known = PredictionRunSerializer().fields
            first = {}
            for i, run in enumerate(runs):
                if isinstance(run, dict):
                    for key in run:
                        if key not in known and key not in first:
                            first[key] = i
            if first:
                takes = ", ".join(known)
                raise serializers.ValidationError({"runs": [f"runs[{i}].{key}: unknown field {key!r}; a run takes "
                                                            f"{takes}." for key, i in first.items()]})
        return super().to_internal_value(data)


class PredictionUploadRequestSerializer(SingleValuedFormMixin, PredictionTargetSerializer):
    repeatable = ("target_tokens",)  # one value each for a curve
    file = serializers.FileField(help_text="CSV(.gz) of one family's runs: model, params, tokens, value (the other "
                                           "canonical columns and run_tokens optional).")
    metric = serializers.CharField(
        required=False, allow_blank=True, default="",
        help_text="Metric to fit; default: the family's primary metric by the canonical rule.",
    )

    def validate_file(self, upload):
        if upload.size == 0:
            raise serializers.ValidationError("The file is empty.")
        if upload.size > settings.SCALEPLAN_MAX_UPLOAD_BYTES:
            raise serializers.ValidationError(
                f"The file is {upload.size} bytes; the limit is {settings.SCALEPLAN_MAX_UPLOAD_BYTES} bytes."
            )
        return upload


class PredictionJobSerializer(JobSerializer):
    """A prediction job: JobSerializer with its own URL and links to its page and plot."""

    url = serializers.HyperlinkedIdentityField(view_name="api:prediction-detail")
    page_url = serializers.SerializerMethodField()
    plot_url = serializers.SerializerMethodField()

    class Meta(JobSerializer.Meta):
        fields = JobSerializer.Meta.fields + ["page_url", "plot_url"]
        read_only_fields = fields

    def _absolute(self, url):
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url

    def get_page_url(self, job) -> str:
        return self._absolute(reverse("job-page", args=[job.pk]))

    def get_plot_url(self, job) -> str | None:
        if job.status != job.Status.SUCCEEDED:
            return None
        return self._absolute(reverse("prediction-plot", args=[job.pk]))

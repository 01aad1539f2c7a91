"""Input and output of /api/v1/plans/."""
import math

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from fits import PlanInputError

from ..api.base import RejectUnknownFieldsMixin
from ..jobs.serializers import JobSerializer
from .services import plan_prediction_form_url, plan_request


class PositiveFloatField(serializers.FloatField):
    def to_internal_value(self, data):
        if isinstance(data, bool):  # float(True) is 1.0, but true is no size
            self.fail("invalid")
        value = super().to_internal_value(data)
        if not math.isfinite(value) or value <= 0:
            raise serializers.ValidationError("Must be a positive, finite number.")
        return value


def _optional(help_text):
    return PositiveFloatField(required=False, allow_null=True, default=None, help_text=help_text)


class PlanRequestSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """What a plan needs; checked at once by fits.plan (400 naming the field, or both fields of a conflicting
    pair), then queued. An unknown key is a 400 naming it."""

    target_params = PositiveFloatField(help_text="The target model's parameter count N, e.g. 7e9.")
    target_tokens = _optional("Tokens the target will see. Give this or target_compute.")
    target_compute = _optional("The target's training compute in FLOPs (tokens = compute / 6N).")
    budget_flops = _optional("FLOPs for all the small models together. Give this or budget_fraction.")
    budget_fraction = _optional("The small models' budget as a share (0-1] of the target's compute.")
    min_size = _optional("Smallest small model to consider (parameters).")
    max_size = _optional("Largest small model to consider (parameters; below the target).")
    max_models = serializers.IntegerField(required=False, default=8, min_value=1, max_value=20,
                                          help_text="At most this many small models.")
    max_epochs = serializers.FloatField(required=False, default=1.0, min_value=1.0, max_value=1e4,
                                        help_text="Passes over the data the target will make (> 1: repeated data; "
                                                  "at most 10,000).")

    def validate(self, data):
        try:
            plan_request(data)
        except PlanInputError as exc:
            raise serializers.ValidationError({name: [exc.reason] for name in exc.fields}) from exc
        return data


class PlanFilesSerializer(serializers.Serializer):
    json = serializers.URLField(help_text="The stored plan (this job's `result`) as a file.")
    csv = serializers.URLField(allow_null=True, help_text="One row per run: its size, tokens, FLOPs and schedule.")
    prediction_template = serializers.URLField(
        allow_null=True, help_text="The runs' evaluation points in the prediction's runs format "
                                   "(model, params, tokens, value), value empty: fill it in and POST it to "
                                   "/api/v1/predictions/.")


class PlanJobSerializer(JobSerializer):
    """A plan job: its request in `input`; once succeeded, fits.plan.Plan.to_dict() in `result`, and its files
    (`downloads`, API URLs: token or session), its page and figures (`page_url`, `figures`: pages, a login) and
    the prediction form filled in with its target (`prediction_form_url`)."""

    url = serializers.HyperlinkedIdentityField(view_name="api:plan-detail")
    page_url = serializers.SerializerMethodField()
    downloads = serializers.SerializerMethodField()
    figures = serializers.SerializerMethodField()
    prediction_form_url = serializers.SerializerMethodField()

    class Meta(JobSerializer.Meta):
        fields = JobSerializer.Meta.fields + ["page_url", "downloads", "figures", "prediction_form_url"]
        read_only_fields = fields

    def _absolute(self, url):
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url

    def _succeeded(self, job) -> bool:
        return job.status == job.Status.SUCCEEDED and bool(job.result)

    def get_input(self, job) -> dict:
        return dict(job.input or {})  # nothing private in a plan request

    def get_page_url(self, job) -> str:
        return self._absolute(reverse("plan-page", args=[job.pk]))

    @extend_schema_field(PlanFilesSerializer(allow_null=True))
    def get_downloads(self, job):
        if not self._succeeded(job):
            return None
        csvs = "recommended" in job.result  # version 2: each run's own schedule

        def url(name):
            return self._absolute(reverse("api:plan-file", args=[job.pk, name])) if csvs or name == "plan.json" else None

        return {"json": url("plan.json"), "csv": url("plan.csv"), "prediction_template": url("prediction-template.csv")}

    def get_figures(self, job) -> dict | None:
        if not self._succeeded(job):
            return None
        names = ["frontier", "sizes"] + (["isoflop"] if "law" in (job.result.get("compute_optimal") or {}) else [])
        return {name: self._absolute(reverse("plan-plot", args=[job.pk, name])) for name in names}

    def get_prediction_form_url(self, job) -> str | None:
        return self._absolute(plan_prediction_form_url(job)) if self._succeeded(job) else None


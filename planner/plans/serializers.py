"""Input and output of /api/v1/plans/."""
import math

from django.urls import reverse
from rest_framework import serializers

from fits import PlanInputError

from ..api.base import RejectUnknownFieldsMixin
from ..jobs.serializers import JobSerializer
from .services import plan_request


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


class PlanJobSerializer(JobSerializer):
    """A plan job: its request in `input`; once succeeded, fits.plan.Plan.to_dict() in `result`."""

    url = serializers.HyperlinkedIdentityField(view_name="api:plan-detail")
    page_url = serializers.SerializerMethodField()

    class Meta(JobSerializer.Meta):
        fields = JobSerializer.Meta.fields + ["page_url"]
        read_only_fields = fields

    def get_input(self, job) -> dict:
        return dict(job.input or {})  # nothing private in a plan request

    def get_page_url(self, job) -> str:
        url = reverse("plan-page", args=[job.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url

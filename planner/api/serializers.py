from django.conf import settings
from django.urls import reverse
from rest_framework import serializers
from rest_framework.utils import html

from ..models import Family, Job, Observation, Run


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField()


class ErrorSerializer(serializers.Serializer):
    """The one error shape of the API (schema only)."""

    error = ErrorDetailSerializer()


class FamilySerializer(serializers.HyperlinkedModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:family-detail")
    stats = serializers.JSONField(read_only=True, help_text="Summary statistics; {} until computed.")

    class Meta:
        model = Family
        fields = [
            "id", "url", "name", "arch", "dataset", "source", "primary_metric", "notes",
            "excluded_from_fitting", "stats", "stats_updated_at",
        ]


class RunSerializer(serializers.ModelSerializer):
    family = serializers.CharField(source="family.name", read_only=True)

    class Meta:
        model = Run
        fields = ["id", "family", "family_id", "name", "seed", "arch", "params"]


class ObservationSerializer(serializers.ModelSerializer):
    family = serializers.CharField(source="run.family.name", read_only=True)
    model = serializers.CharField(source="run.name", read_only=True)
    seed = serializers.CharField(source="run.seed", read_only=True)
    params = serializers.IntegerField(source="run.params", read_only=True)

    class Meta:
        model = Observation
        fields = [
            "id", "run", "family", "model", "seed", "params", "tokens", "step", "epochs", "flops",
            "metric", "value", "split", "dataset", "source",
        ]


# Keys of Job.input safe to show: the server-side upload path is not.
_PUBLIC_INPUT_KEYS = (
    "filename", "size", "skip_invalid", "replace", "families",
    # predictions (the runs themselves stay off: thousands of rows on every poll)
    "target_params", "target_tokens", "coverage", "family", "metric", "n_rows",
    # plans
    "target_compute", "budget_flops", "budget_fraction", "min_size", "max_size", "max_models", "max_epochs",
)


class JobSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:job-detail")
    message = serializers.CharField(source="progress_message", read_only=True)
    input = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)
    cancel_url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "url", "kind", "status", "progress", "message", "input", "result", "error",
            "created_by", "attempts", "created_at", "started_at", "finished_at", "cancel_url",
        ]
        read_only_fields = fields

    def get_input(self, job) -> dict:
        return {k: v for k, v in (job.input or {}).items() if k in _PUBLIC_INPUT_KEYS}

    def get_cancel_url(self, job) -> str | None:
        if job.is_finished:
            return None
        url = reverse("api:job-cancel", args=[job.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class SingleValuedFormMixin:
    """A form field sent twice is an error, not "the last one wins" as in DRF (fields in `repeatable` may repeat)."""

    repeatable = ()

    def to_internal_value(self, data):
        if html.is_html_input(data):
            repeated = {key: ["Given more than once; send one value."] for key in data
                        if key in self.fields and key not in self.repeatable and len(data.getlist(key)) > 1}
            if repeated:
                raise serializers.ValidationError(repeated)
        return super().to_internal_value(data)


class ImportRequestSerializer(SingleValuedFormMixin, serializers.Serializer):
    file = serializers.FileField(help_text="Canonical corpus CSV, optionally gzip-compressed (.csv or .csv.gz).")
    skip_invalid = serializers.BooleanField(
        default=False, help_text="Write the valid rows and report the rest, instead of rejecting the file."
    )
    replace = serializers.BooleanField(
        default=False, help_text="Overwrite existing observations whose value differs, instead of rejecting."
    )

    def validate_file(self, upload):
        name = upload.name.lower()
        if not (name.endswith(".csv") or name.endswith(".csv.gz") or name.endswith(".gz")):
            raise serializers.ValidationError("Expected a .csv or .csv.gz file.")
        if upload.size == 0:
            raise serializers.ValidationError("The file is empty.")
        limit = settings.SCALEPLAN_MAX_UPLOAD_BYTES
        if upload.size > limit:
            from .exceptions import PayloadTooLarge

            raise PayloadTooLarge(f"The file is {upload.size} bytes; the limit is {limit} bytes.")
        return upload


def validate_family_names(names):
    """Family names must all exist; None (all families) passes through."""
    if names is None:
        return None
    known = set(Family.objects.filter(name__in=names).values_list("name", flat=True))
    unknown = sorted(set(names) - known)
    if unknown:
        raise serializers.ValidationError(f"Unknown families: {', '.join(unknown)}.")
    return names


class StatsRefreshRequestSerializer(serializers.Serializer):
    families = serializers.ListField(
        child=serializers.CharField(), required=False, allow_null=True, default=None,
        help_text="Family names to refresh; omit for all families.",
    )

    def validate_families(self, names):
        return validate_family_names(names)

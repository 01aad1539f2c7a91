"""Input and output of the corpus API: families, runs, observations, imports and stats refreshes."""
from django.conf import settings
from rest_framework import serializers

from ..api.base import SingleValuedFormMixin
from ..api.exceptions import PayloadTooLarge
from .models import Family, Observation, Run


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

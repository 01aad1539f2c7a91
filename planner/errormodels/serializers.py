"""Input and output of /api/v1/sweeps/ and /api/v1/error-model/."""
from rest_framework import serializers

from ..corpus.serializers import validate_family_names
from ..jobs.serializers import JobSerializer
from .models import ErrorModelArtifact


class SweepRequestSerializer(serializers.Serializer):
    families = serializers.ListField(
        child=serializers.CharField(), required=False, allow_null=True, default=None, min_length=3,
        help_text="Only these families (at least 3); omit for every family eligible for a backtest.",
    )

    def validate_families(self, names):
        return validate_family_names(names)


class SweepJobSerializer(JobSerializer):
    """A sweep job: progress = families swept / total; `result` once succeeded: the new artifact's figures."""

    url = serializers.HyperlinkedIdentityField(view_name="api:sweep-detail")

    def get_input(self, job) -> dict:
        return dict(job.input or {})


class ErrorModelSerializer(serializers.ModelSerializer):
    trained_on = serializers.SerializerMethodField()
    sweep_job = serializers.IntegerField(source="sweep_job_id", read_only=True, allow_null=True)

    class Meta:
        model = ErrorModelArtifact
        fields = ["version", "created_at", "validation", "trained_on", "sweep_job"]
        read_only_fields = fields

    def get_trained_on(self, artifact) -> dict:
        return artifact.model.get("trained_on", {})

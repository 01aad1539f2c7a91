"""A job as the API shows it; the plan, prediction and sweep serializers extend it."""
from django.urls import reverse
from rest_framework import serializers

from .heartbeat import job_queue, job_stall
from .models import Job


# Keys of Job.input safe to show: the server-side upload path is not.
_PUBLIC_INPUT_KEYS = (
    "filename", "size", "skip_invalid", "replace", "families",
    # predictions (the runs themselves stay off: thousands of rows on every poll)
    "target_params", "target_tokens", "coverage", "family", "metric", "other_metrics", "n_rows",
    # plans
    "target_compute", "budget_flops", "budget_fraction", "min_size", "max_size", "max_models", "max_epochs",
)


class JobSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:job-detail")
    message = serializers.CharField(source="progress_message", read_only=True)
    input = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)
    cancel_url = serializers.SerializerMethodField()
    stalled = serializers.SerializerMethodField(
        help_text="Set while a running job's worker is gone (no heartbeat for SCALEPLAN_STALLED_AFTER seconds): "
                  "since when, when the recovery will retry it, and a message saying so.")
    queue = serializers.SerializerMethodField(
        help_text="Set while the job is queued: queued jobs created before it (`ahead`), jobs `running`, and a "
                  "message saying so.")

    class Meta:
        model = Job
        fields = [
            "id", "url", "kind", "status", "progress", "message", "input", "result", "error",
            "created_by", "attempts", "created_at", "started_at", "heartbeat_at", "stalled", "queue", "finished_at",
            "cancel_url",
        ]
        read_only_fields = fields

    def get_input(self, job) -> dict:
        return {k: v for k, v in (job.input or {}).items() if k in _PUBLIC_INPUT_KEYS}

    def get_stalled(self, job) -> dict | None:
        stall = job_stall(job)
        if stall is None:
            return None
        return {"since": stall["since"].isoformat(), "retry_at": stall["retry_at"].isoformat(),
                "message": stall["message"]}

    def get_queue(self, job) -> dict | None:
        return job_queue(job)

    def get_cancel_url(self, job) -> str | None:
        if job.is_finished:
            return None
        url = reverse("api:job-cancel", args=[job.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url

"""The Job row: long work's state (status, progress, result), the truth about every job kind."""
from django.conf import settings
from django.db import models


class JobQuerySet(models.QuerySet):
    def visible_to(self, user):
        """The jobs ``user`` may see: staff all, others their own. Another user's job is then a 404, exactly
        like a missing one, so ids cannot be probed (a 403 would tell that the id exists)."""
        if not user.is_authenticated:
            return self.none()
        return self if user.is_staff else self.filter(created_by=user)


class Job(models.Model):
    """Long work. This row, not Celery's result backend, is the truth."""

    objects = JobQuerySet.as_manager()

    class Kind(models.TextChoices):
        CORPUS_STATS = "corpus_stats", "recompute corpus statistics"
        CORPUS_IMPORT = "corpus_import", "import a corpus file"
        PREDICTION = "prediction", "predict a target's loss from the user's runs"
        SWEEP = "sweep", "rebuild the error model (sweep of backtested designs)"
        PLAN = "plan", "recommend the small models to train"
        ADVICE = "advice", "advise the next run(s) to train"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    kind = models.CharField(max_length=32, choices=Kind.choices, db_index=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    progress = models.FloatField(default=0.0)
    progress_message = models.CharField(max_length=500, blank=True, default="")
    input = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    worker = models.CharField(max_length=200, blank=True, default="", help_text="Who claimed it.")
    attempts = models.PositiveIntegerField(default=0)
    # The running task's last sign of life, by the database's clock (planner.jobs.heartbeat); a running job
    # without one for SCALEPLAN_STALLED_AFTER seconds has lost its worker and is taken over.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # What a job of a coalescing kind covers (a stats refresh: its families): one such job queued or running
    # per (kind, scope), so a second request gets the job already in flight (job_create).
    scope = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__gte=0) & models.Q(progress__lte=1), name="job_progress_0_1"
            ),
            models.UniqueConstraint(
                fields=["kind", "scope"], condition=models.Q(status__in=["queued", "running"]) & ~models.Q(scope=""),
                name="job_one_in_flight_per_scope",
            ),
        ]

    def __str__(self):
        return f"job {self.pk} {self.kind} {self.status}"

    @property
    def is_finished(self):
        return self.status in self.FINISHED

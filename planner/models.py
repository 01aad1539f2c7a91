"""Persistence: the corpus (Family -> Run -> Observation) and jobs.

The corpus mirrors the canonical CSV (../shared/CORPUS_FORMAT.md): one
Observation per CSV row. Columns that the format allows to vary per row
(dataset, source, split, step, epochs, flops) live on Observation so that
export -> import is lossless; what the format fixes per run (family, arch,
params) lives on Run.
"""
from django.conf import settings
from django.db import models


class Arch(models.TextChoices):
    DEC = "dec", "decoder-only"
    ENC_DEC = "enc-dec", "encoder-decoder"
    MOE = "moe", "mixture of experts"
    SSM = "ssm", "state-space model"
    HYBRID = "hybrid", "hybrid"


class Split(models.TextChoices):
    NONE = "", "not given"
    TRAIN = "train", "train"
    VALIDATION = "validation", "validation"
    UNKNOWN = "unknown", "unknown"


class Family(models.Model):
    """Runs sharing architecture, data and recipe, differing in size, tokens or seed."""

    name = models.CharField(max_length=200, unique=True)
    arch = models.CharField(max_length=16, choices=Arch.choices, blank=True)
    dataset = models.CharField(max_length=500, blank=True)
    source = models.TextField(blank=True)
    primary_metric = models.CharField(
        max_length=200, blank=True, help_text="The loss metric used for fitting."
    )
    notes = models.TextField(blank=True)
    excluded_from_fitting = models.BooleanField(
        default=False, db_index=True, help_text="Curated out of fits and backtests."
    )
    # Summary statistics, recomputed by the corpus-statistics job after imports
    # (see planner.services.corpus_stats). Shape: planner.stats.FAMILY_STATS_VERSION.
    stats = models.JSONField(default=dict, blank=True)
    stats_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "families"

    def __str__(self):
        return self.name


class Run(models.Model):
    """One trained model (the CSV's ``model`` + ``seed``)."""

    family = models.ForeignKey(Family, on_delete=models.CASCADE, related_name="runs")
    name = models.CharField(max_length=200)
    seed = models.CharField(max_length=64, blank=True, default="")
    arch = models.CharField(max_length=16, choices=Arch.choices)
    params = models.BigIntegerField(help_text="Parameter count N (MoE: active per token).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["family__name", "params", "name", "seed"]
        constraints = [
            models.UniqueConstraint(fields=["name", "seed"], name="run_unique_name_seed"),
            models.CheckConstraint(condition=models.Q(params__gt=0), name="run_params_positive"),
        ]
        indexes = [models.Index(fields=["family", "params"])]

    def __str__(self):
        return self.name if not self.seed else f"{self.name} (seed {self.seed})"


class Observation(models.Model):
    """One metric of one run at one checkpoint."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="observations")
    tokens = models.FloatField(help_text="Tokens seen at this checkpoint (D > 0).")
    metric = models.CharField(max_length=200)
    value = models.FloatField()
    step = models.BigIntegerField(null=True, blank=True)
    epochs = models.FloatField(null=True, blank=True)
    flops = models.FloatField(null=True, blank=True, help_text="As reported; empty means 6*N*D.")
    split = models.CharField(max_length=16, choices=Split.choices, blank=True, default="")
    dataset = models.CharField(max_length=500, blank=True, default="")
    source = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["run", "metric", "tokens"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "metric", "tokens"], name="observation_unique_run_metric_tokens"
            ),
            models.CheckConstraint(condition=models.Q(tokens__gt=0), name="observation_tokens_positive"),
        ]
        # The unique constraint's index serves the fitter's query: one family's
        # primary metric over its runs, ordered by tokens (run_id IN (...) AND
        # metric = ? ORDER BY tokens).

    def __str__(self):
        return f"{self.run} {self.metric}@{self.tokens:g}={self.value:g}"


class Job(models.Model):
    """Long work. This row, not Celery's result backend, is the truth."""

    class Kind(models.TextChoices):
        CORPUS_STATS = "corpus_stats", "recompute corpus statistics"
        CORPUS_IMPORT = "corpus_import", "import a corpus file"
        PREDICTION = "prediction", "predict a target's loss from the user's runs"
        SWEEP = "sweep", "rebuild the error model (sweep of backtested designs)"
        PLAN = "plan", "recommend the small models to train"

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
        ]

    def __str__(self):
        return f"job {self.pk} {self.kind} {self.status}"

    @property
    def is_finished(self):
        return self.status in self.FINISHED


class SweepRow(models.Model):
    """One backtested design of one family in a sweep job (fits.sweep's row); what the error model learns from."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="sweep_rows")
    family = models.CharField(max_length=200)
    design_key = models.CharField(max_length=100, help_text='e.g. "k=3,l=5,f=0.5,p=default"')
    n_models = models.PositiveIntegerField()
    largest_index = models.PositiveIntegerField()
    fraction = models.FloatField()
    policy = models.CharField(max_length=32)
    scale_up = models.FloatField()
    train_compute_share = models.FloatField()
    tokens_per_model = models.FloatField()
    max_epochs = models.FloatField()
    has_curves = models.BooleanField()
    sizes = models.JSONField(default=list)
    law = models.CharField(max_length=64, blank=True, default="")
    n_points = models.PositiveIntegerField(default=0)
    are = models.FloatField(null=True, blank=True, help_text="Realised ARE on the target; null when the fit failed.")
    params = models.JSONField(default=dict, blank=True)
    success = models.BooleanField(default=False)
    rmse_log = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    seconds = models.FloatField()

    class Meta:
        ordering = ["job", "family", "largest_index", "n_models", "fraction", "policy"]
        constraints = [
            models.UniqueConstraint(fields=["job", "family", "design_key"], name="sweeprow_unique_job_family_design"),
        ]

    def __str__(self):
        return f"{self.family} {self.design_key} ARE={self.are}"


class ErrorModelArtifact(models.Model):
    """A versioned error model (fits.errormodel.ErrorModel.to_dict()); plans use the one active artifact."""

    version = models.PositiveIntegerField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    model = models.JSONField(help_text="ErrorModel.to_dict()")
    validation = models.JSONField(default=dict, help_text="Leave-one-family-out coverage and |log ratio|.")
    sweep_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="artifacts")
    is_active = models.BooleanField(default=False)

    class Meta:
        ordering = ["-version"]
        constraints = [
            # At most one active artifact, enforced by the database (activation is one transaction).
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="errormodel_one_active"
            ),
        ]

    def __str__(self):
        return f"error model v{self.version}{' (active)' if self.is_active else ''}"

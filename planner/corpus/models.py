"""Persistence of the corpus: Family -> Run -> Observation.

The corpus mirrors the canonical CSV (../shared/CORPUS_FORMAT.md): one
Observation per CSV row. Columns that the format allows to vary per row
(dataset, source, split, step, epochs, flops) live on Observation so that
export -> import is lossless; what the format fixes per run (family, arch,
params) lives on Run.
"""
from django.core.exceptions import ValidationError
from django.db import models

from fits import name_problem, text_problem


# The canonical format's one rule for names (fits.name_problem), for every entrance that is not a file:
# the admin's forms, and anything else that runs model validation.
def validate_family_name(value):
    if reason := name_problem(value, "family"):
        raise ValidationError(f"Family name {reason}.", code="invalid_name")


def validate_model_name(value):
    if reason := name_problem(value, "model"):
        raise ValidationError(f"Model name {reason}.", code="invalid_name")


def validate_text(value):
    if reason := text_problem(value):
        raise ValidationError(f"The text {reason}.", code="invalid_text")


def validate_prose(value):
    if reason := text_problem(value, prose=True):
        raise ValidationError(f"The text {reason}.", code="invalid_text")


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

    name = models.CharField(max_length=200, unique=True, validators=[validate_family_name])
    arch = models.CharField(max_length=16, choices=Arch.choices, blank=True)
    dataset = models.CharField(max_length=500, blank=True, validators=[validate_text])
    source = models.TextField(blank=True, validators=[validate_prose])
    primary_metric = models.CharField(
        max_length=200, blank=True, help_text="The loss metric used for fitting.", validators=[validate_text]
    )
    notes = models.TextField(blank=True)
    excluded_from_fitting = models.BooleanField(
        default=False, db_index=True, help_text="Curated out of fits and backtests."
    )
    # Summary statistics, recomputed by the corpus-statistics job after imports
    # (planner.corpus.services.corpus_stats_run). Shape: planner.corpus.stats.FAMILY_STATS_VERSION.
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
    name = models.CharField(max_length=200, validators=[validate_model_name])
    seed = models.CharField(max_length=64, blank=True, default="", validators=[validate_text])
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
    metric = models.CharField(max_length=200, validators=[validate_text])
    value = models.FloatField()
    step = models.BigIntegerField(null=True, blank=True)
    epochs = models.FloatField(null=True, blank=True)
    flops = models.FloatField(null=True, blank=True, help_text="As reported; empty means 6*N*D.")
    split = models.CharField(max_length=16, choices=Split.choices, blank=True, default="")
    dataset = models.CharField(max_length=500, blank=True, default="", validators=[validate_text])
    source = models.TextField(blank=True, default="", validators=[validate_prose])

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

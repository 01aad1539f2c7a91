"""Persistence of the error model: a sweep's backtested designs (SweepRow) and versioned artifacts."""
from django.db import models

from ..jobs.models import Job


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
    # The evidence the error model's fit level learns from, and what validation holds out together.
    method = models.CharField(max_length=64, blank=True, default="",
                              help_text="The candidate method the library chose for this design.")
    rollout_are = models.FloatField(null=True, blank=True,
                                    help_text="That method's error predicting the design's own largest sizes.")
    source = models.TextField(blank=True, default="", help_text="The family's source (paper).")
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
    # The corpus it learned from (planner.errormodels.shipped.corpus_fingerprint): a sweep over every family
    # records it, and so does the shipped model. Null: built elsewhere or over some families only.
    corpus_fingerprint = models.JSONField(null=True, blank=True,
                                          help_text="Counts and hash of the corpus it was built from, if known.")

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

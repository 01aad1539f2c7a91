"""Shapes of the laws API (read-only; the dicts come from planner.laws.services)."""
from rest_framework import serializers


class LawSummarySerializer(serializers.Serializer):
    """One family in the laws list: cheap fields only (the fit itself is per family)."""

    family = serializers.CharField()
    url = serializers.URLField(help_text="This family's law, backtest and interval.")
    arch = serializers.CharField()
    primary_metric = serializers.CharField()
    n_sizes = serializers.IntegerField(allow_null=True, help_text="From the family's statistics; null until computed.")
    excluded_from_fitting = serializers.BooleanField()
    cached = serializers.BooleanField(help_text="Whether the law is already computed for the family's current data.")
    law_available = serializers.BooleanField(allow_null=True, help_text="Null unless cached.")
    backtest_are = serializers.FloatField(allow_null=True, help_text="The backtest's ARE on the largest size; null "
                                                                     "unless cached and available.")


class _Part(serializers.Serializer):
    available = serializers.BooleanField()
    reason = serializers.CharField(required=False, help_text="Why the part is unavailable (or did not converge).")


class LawFitSerializer(_Part):
    law = serializers.CharField(required=False, help_text="The law's form, e.g. chinchilla+schedule.")
    formula = serializers.CharField(required=False, help_text="The law as text, with its optional terms.")
    success = serializers.BooleanField(required=False)
    message = serializers.CharField(required=False)
    params = serializers.DictField(child=serializers.FloatField(), required=False,
                                   help_text="E, A, alpha, B, beta of L = E + A/N^alpha + B/D^beta; for curves also "
                                             "C_schedule (the loss a checkpoint carries before its learning rate "
                                             "has decayed), for overfitting repeated data C_overfit.")
    stderr = serializers.DictField(child=serializers.FloatField(), required=False)
    normalised = serializers.DictField(required=False, help_text="Coefficients in the fitter's normalised units.")
    mixture = serializers.DictField(required=False, allow_null=True,
                                    help_text="The laws over the exponent grid and their posterior weights "
                                              "(weight, alpha, beta, coef); predictions average them.")
    prior = serializers.DictField(required=False, allow_null=True, help_text="The exponent prior the fit used.")
    stats = serializers.DictField(required=False)
    seconds = serializers.FloatField(required=False)
    nfev = serializers.IntegerField(required=False)
    version = serializers.IntegerField(required=False, help_text="Version of the fit result's shape.")
    n_rows_fitted = serializers.IntegerField(required=False)


class BacktestSerializer(_Part):
    are = serializers.FloatField(required=False, help_text="ARE of the law fitted on the smaller sizes.")
    are_best_loss = serializers.FloatField(required=False, allow_null=True)
    are_most_compute = serializers.FloatField(required=False, allow_null=True)
    scale_up = serializers.FloatField(required=False)
    n_train_points = serializers.IntegerField(required=False)
    n_target_points = serializers.IntegerField(required=False)


class IntervalSerializer(_Part):
    coverage = serializers.FloatField(required=False)
    n_boot = serializers.IntegerField(required=False)
    target_params = serializers.FloatField(required=False)
    target_tokens = serializers.FloatField(required=False)
    prediction = serializers.FloatField(required=False)
    lower = serializers.FloatField(required=False)
    upper = serializers.FloatField(required=False)
    actual = serializers.FloatField(required=False)
    actual_inside = serializers.BooleanField(required=False)
    relative_error = serializers.FloatField(required=False)


class LawDataSerializer(serializers.Serializer):
    n_rows = serializers.IntegerField()
    n_runs = serializers.IntegerField()
    sizes = serializers.ListField(child=serializers.FloatField())


class FamilyLawSerializer(serializers.Serializer):
    """Schema of planner.laws.services.family_law (the view returns the dict as is)."""

    version = serializers.IntegerField()
    family = serializers.CharField()
    primary_metric = serializers.CharField()
    excluded_from_fitting = serializers.BooleanField()
    data = LawDataSerializer()
    law = LawFitSerializer(help_text="The law fitted on all sizes with the default checkpoint policy.")
    backtest = BacktestSerializer(help_text="The paper's protocol: fit the smaller sizes, score the largest's last "
                                            "30% of training; against the best-loss and most-compute baselines.")
    interval = IntervalSerializer(help_text="80% interval for the largest size at its final tokens, from a fit on "
                                            "the smaller sizes.")
    computed_at = serializers.DateTimeField()

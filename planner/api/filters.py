"""Query filters for the corpus endpoints (django-filter, so they appear in the OpenAPI schema)."""
import django_filters as filters

from ..models import Arch, Family, Observation, Run, Split


class FamilyFilter(filters.FilterSet):
    arch = filters.ChoiceFilter(choices=Arch.choices)
    excluded = filters.BooleanFilter(field_name="excluded_from_fitting", help_text="Curated out of fitting.")

    class Meta:
        model = Family
        fields = ["arch", "excluded"]


class RunFilter(filters.FilterSet):
    family = filters.CharFilter(field_name="family__name", help_text="Family name (exact).")
    family_id = filters.NumberFilter(field_name="family_id")
    arch = filters.ChoiceFilter(choices=Arch.choices)
    name = filters.CharFilter(field_name="name", help_text="Run (model) name (exact).")
    params_min = filters.NumberFilter(field_name="params", lookup_expr="gte", help_text="Parameters >= this.")
    params_max = filters.NumberFilter(field_name="params", lookup_expr="lte", help_text="Parameters <= this.")

    class Meta:
        model = Run
        fields = ["family", "family_id", "arch", "name", "params_min", "params_max"]


class ObservationFilter(filters.FilterSet):
    family = filters.CharFilter(field_name="run__family__name", help_text="Family name (exact).")
    family_id = filters.NumberFilter(field_name="run__family_id")
    run = filters.NumberFilter(field_name="run_id", help_text="Run id.")
    model = filters.CharFilter(field_name="run__name", help_text="Run (model) name (exact).")
    metric = filters.CharFilter(field_name="metric")
    split = filters.ChoiceFilter(choices=[c for c in Split.choices if c[0]])
    tokens_min = filters.NumberFilter(field_name="tokens", lookup_expr="gte", help_text="Tokens >= this.")
    tokens_max = filters.NumberFilter(field_name="tokens", lookup_expr="lte", help_text="Tokens <= this.")

    class Meta:
        model = Observation
        fields = ["family", "family_id", "run", "model", "metric", "split", "tokens_min", "tokens_max"]

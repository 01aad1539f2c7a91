"""Query filters for the corpus endpoints (django-filter, so they appear in the OpenAPI schema).

Filters are strict, as every other input: a value that does not parse is a 400
naming the parameter, never silently ignored (``excluded=maybe`` must not list
every family). An empty choice or boolean means "any" (HTML filter forms send
empty fields), and the schema says so; an empty number is an error.
"""
import math

import django_filters as filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from ..corpus.models import Arch, Family, Observation, Run, Split
from ..jobs.models import Job


class RawNullBooleanSelect(forms.NullBooleanSelect):
    """The select of the HTML filter forms, passing the raw value on (Django's maps any unknown text to None)."""

    def value_from_datadict(self, data, files, name):
        return data.get(name)


class StrictNullBooleanField(forms.NullBooleanField):
    """true/false (or 1/0); empty means no filter; anything else is an error (Django's field reads it as None)."""

    widget = RawNullBooleanSelect
    _VALUES = {"true": True, "1": True, "false": False, "0": False}

    def to_python(self, value):
        if value in (None, "", "unknown"):  # "unknown": the select's own "any" option
            return None
        if isinstance(value, bool):
            return value
        parsed = self._VALUES.get(str(value).strip().lower())
        if parsed is None:
            raise forms.ValidationError(f"Expected true or false, got {value!r}.", code="invalid")
        return parsed

    def validate(self, value):
        pass


class BooleanFilter(filters.BooleanFilter):
    field_class = StrictNullBooleanField


class RejectEmptyMixin:
    """A number, or absent; a parameter given empty (``run=``) is an error, not "any"."""

    def to_python(self, value):
        if value == "":
            raise forms.ValidationError("Expected a number, got an empty value.", code="invalid")
        return super().to_python(value)


class StrictDecimalField(RejectEmptyMixin, forms.DecimalField):
    pass


class StrictIntegerField(RejectEmptyMixin, forms.IntegerField):
    pass


class NumberFilter(filters.NumberFilter):
    field_class = StrictDecimalField


_INT64 = (-(2**63), 2**63 - 1)


class IdFilter(filters.NumberFilter):
    """An object id: a whole number a database column can hold (SQLite fails on larger ones)."""

    field_class = StrictIntegerField

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=_INT64[0], max_value=_INT64[1], **kwargs)


@extend_schema_field(OpenApiTypes.NUMBER)
class NumberBound(NumberFilter):
    """A bound on an integer column: any number is a valid bound (params <= 1.5e9).

    It is rounded to the whole number that keeps the same rows (up for >=, down for <=), and held
    within the 64-bit range the column has: a bound past it keeps every row or none, as it should.
    """

    def filter(self, qs, value):
        if value is None:
            return qs
        whole = math.ceil(value) if self.lookup_expr == "gte" else math.floor(value)
        return super().filter(qs, min(max(whole, _INT64[0]), _INT64[1]))


def choice_filter(choices, **kwargs):
    """ChoiceFilter whose schema enum also admits the empty value (= any)."""
    values = [value for value, _ in choices]

    @extend_schema_field({"type": "string", "enum": [*values, ""]})
    class Choice(filters.ChoiceFilter):
        pass

    return Choice(choices=choices, **kwargs)


class FamilyFilter(filters.FilterSet):
    arch = choice_filter(Arch.choices)
    excluded = BooleanFilter(field_name="excluded_from_fitting", help_text="Curated out of fitting.")

    class Meta:
        model = Family
        fields = ["arch", "excluded"]


class RunFilter(filters.FilterSet):
    family = filters.CharFilter(field_name="family__name", help_text="Family name (exact).")
    family_id = IdFilter(field_name="family_id")
    arch = choice_filter(Arch.choices)
    name = filters.CharFilter(field_name="name", help_text="Run (model) name (exact).")
    params_min = NumberBound(field_name="params", lookup_expr="gte", help_text="Parameters >= this.")
    params_max = NumberBound(field_name="params", lookup_expr="lte", help_text="Parameters <= this.")

    class Meta:
        model = Run
        fields = ["family", "family_id", "arch", "name", "params_min", "params_max"]


class ObservationFilter(filters.FilterSet):
    family = filters.CharFilter(field_name="run__family__name", help_text="Family name (exact).")
    family_id = IdFilter(field_name="run__family_id")
    run = IdFilter(field_name="run_id", help_text="Run id.")
    model = filters.CharFilter(field_name="run__name", help_text="Run (model) name (exact).")
    metric = filters.CharFilter(field_name="metric")
    split = choice_filter([c for c in Split.choices if c[0]])
    tokens_min = NumberFilter(field_name="tokens", lookup_expr="gte", help_text="Tokens >= this.")
    tokens_max = NumberFilter(field_name="tokens", lookup_expr="lte", help_text="Tokens <= this.")

    class Meta:
        model = Observation
        fields = ["family", "family_id", "run", "model", "metric", "split", "tokens_min", "tokens_max"]


class JobStatusFilter(filters.FilterSet):
    status = choice_filter(Job.Status.choices)

    class Meta:
        model = Job
        fields = ["status"]


class JobFilter(JobStatusFilter):
    kind = choice_filter(Job.Kind.choices)

    class Meta:
        model = Job
        fields = ["kind", "status"]

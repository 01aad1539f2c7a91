"""Shared pieces of the REST API: the error shape for the schema, pagination, the 202 answer and form parsing.

Domain API views (planner.<domain>.api) build on these; planner.api.schema documents the errors from ERRORS.
"""
import re
from collections.abc import Mapping

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils import html


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField()


class ErrorSerializer(serializers.Serializer):
    """The one error shape of the API (schema only)."""

    error = ErrorDetailSerializer()


ERRORS = {code: OpenApiResponse(ErrorSerializer, description=why) for code, why in {
    400: "Invalid input (details: field -> messages)",
    401: "Authentication needed",
    403: "Not allowed",
    404: "Not found",
    409: "Conflicts with the job's state",
    413: "Upload too large",
    415: "Unsupported media type",
    429: "Too many requests",
    503: "Task queue unreachable: nothing was created; retry later (Retry-After)",
}.items()}


def errors(*codes):
    return {code: ERRORS[code] for code in codes}


class Pagination(PageNumberPagination):
    """Pages of up to 1000 items; a page_size that is not a positive integer is a 400 (DRF would ignore it)."""

    page_size_query_param = "page_size"
    max_page_size = 1000

    def _positive_int(self, request, name):
        """The parameter's one value as a positive integer, None if absent; anything else is a 400."""
        values = request.query_params.getlist(name)
        if not values:
            return None
        if len(values) > 1 or not re.fullmatch(r"\s*[0-9]+\s*", values[0]) or int(values[0]) < 1:
            raise ValidationError({name: [f"Expected one positive integer, got {', '.join(map(repr, values))}."]})
        return int(values[0])

    def get_page_size(self, request):
        size = self._positive_int(request, self.page_size_query_param)
        return self.page_size if size is None else min(size, self.max_page_size)

    def get_page_number(self, request, paginator):
        number = self._positive_int(request, self.page_query_param)
        return 1 if number is None else number  # past the last page: DRF's 404 "Invalid page."

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = f"Items per page (default {self.page_size}; larger than " \
                                           f"{self.max_page_size} counts as {self.max_page_size})."
        return parameters


def accepted(request, serializer_class, job):
    """202 with the job (as serializer_class shows it) and its URL in Location, to poll."""
    body = serializer_class(job, context={"request": request}).data
    # str(): the URL is a DRF Hyperlink (a str subclass), which WSGI servers refuse in headers.
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": str(body["url"])})


class SingleValuedFormMixin:
    """A form field sent twice is an error, not "the last one wins" as in DRF (fields in `repeatable` may repeat)."""

    repeatable = ()

    def to_internal_value(self, data):
        if html.is_html_input(data):
            repeated = {key: ["Given more than once; send one value."] for key in data
                        if key in self.fields and key not in self.repeatable and len(data.getlist(key)) > 1}
            if repeated:
                raise serializers.ValidationError(repeated)
        return super().to_internal_value(data)


class RejectUnknownFieldsMixin:
    """A key the serializer does not take is a 400 naming it, not silently ignored (a typo'd optional key
    would otherwise do nothing). Keys in ``ignored_keys`` are let through (a browser form's CSRF token)."""

    ignored_keys = ("csrfmiddlewaretoken",)
    rejects_unknown_fields = True  # the schema says so (planner.api.schema)

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(str(k) for k in data if k not in self.fields and k not in self.ignored_keys)
            if unknown:
                known = ", ".join(name for name, f in self.fields.items() if not f.read_only)
                raise serializers.ValidationError(
                    {key: [f"Unknown field {key!r}; this request takes {known}."] for key in unknown})
        return super().to_internal_value(data)

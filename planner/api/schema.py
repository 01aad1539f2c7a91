"""The OpenAPI schema documents every error an operation can answer, not only those written by hand.

DRF answers some errors whatever the view says: a bad token is 401 on any view
(token authentication runs first), a failed permission or CSRF check is 403, an
out-of-range page is 404, a bad filter value 400, a body of another media type
415, a throttled request 429. Each operation's @extend_schema lists what its own
code adds; this schema class adds the framework's ones from what the view is
(authentication, permissions, pagination, filters, request body, throttles), all
in the project's one error shape. schemathesis checks the result
(tests/planner/test_api_fuzz.py): a response whose status is not documented fails.
Request bodies that refuse unknown keys (``rejects_unknown_fields``) say so: additionalProperties false.
"""
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import permissions

from .base import ERRORS

_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class AutoSchema(SpectacularAutoSchema):
    def _error_codes(self) -> set[int]:
        view = self.view
        codes = {401}  # an invalid or inactive token, on every operation
        guarded = [p for p in view.get_permissions() if not isinstance(p, permissions.AllowAny)]
        if guarded or self.method in _UNSAFE:
            codes.add(403)  # permissions, and SessionAuthentication's CSRF check on unsafe methods
        if "{" in self.path or getattr(view, "pagination_class", None) is not None and self._is_list_view():
            codes.add(404)  # an unknown object, or a page past the end
        if self.method == "GET" and self._is_list_view() and (
                getattr(view, "pagination_class", None) or getattr(view, "filterset_class", None)):
            codes.add(400)  # a page size or filter value that does not parse
        if self.method in _UNSAFE and self.method != "DELETE":
            codes.update({400, 415})  # invalid input; a body in a media type the view does not parse
        if view.get_throttles() and self.method in _UNSAFE:
            codes.add(429)  # planner.api.throttling counts creations only
        return codes

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in sorted(self._error_codes()):
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(ERRORS[code], str(code), direction=direction)
        return responses

    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        if direction == "request" and getattr(serializer, "rejects_unknown_fields", False):
            schema["additionalProperties"] = False
        return schema

"""One JSON error shape for every API error:

    {"error": {"code": "<machine code>", "message": "<for humans>", "details": {...}}}

DRF exceptions, Django's Http404/PermissionDenied, domain errors (job state
conflicts, an unreachable broker) and unexpected exceptions all go through
`exception_handler` (settings REST_FRAMEWORK["EXCEPTION_HANDLER"]). Requests
under /api/ that never reach a DRF view (unknown URL, a crash in middleware)
get the same shape from `api_not_found` and the project's handler404/handler500.
"""
import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404, JsonResponse
from django.views import csrf, defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from ..jobs.services import JobEnqueueError, JobError

log = logging.getLogger(__name__)

# What a 503 for an unreachable task queue suggests (Retry-After): about how long a broker restart takes.
ENQUEUE_RETRY_AFTER_SECONDS = 30


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The upload is too large."


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"
    default_detail = "A service the API needs is unavailable; try again later."


class CorpusRejected(exceptions.ValidationError):
    """A corpus file broke the canonical format: details.problems lists line, column and reason."""

    def __init__(self, error):
        super().__init__({"file": [str(error).splitlines()[0]]})
        self.message = str(error).splitlines()[0]
        self.extra = {"problems": [p.to_dict() for p in error.problems]}


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with the current state of the resource."


def error_body(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


def _as_details(detail):
    """Validation details as an object: field -> messages (non-field errors under non_field_errors)."""
    if isinstance(detail, dict):
        return detail
    if isinstance(detail, list):
        return {settings.REST_FRAMEWORK.get("NON_FIELD_ERRORS_KEY", "non_field_errors"): detail}
    return {}


def exception_handler(exc, context):
    retry_after = None
    if isinstance(exc, JobEnqueueError):
        # Nothing was created (planner.jobs.services), so the client may simply retry.
        exc = ServiceUnavailable(detail=str(exc))
        retry_after = ENQUEUE_RETRY_AFTER_SECONDS
        exc.extra = {"retry_after_seconds": retry_after}
    elif isinstance(exc, JobError):
        exc = Conflict(detail=str(exc))

    # Django's request limits, raised while DRF parses the body: 413 naming the limit, 400.
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(detail=(f"The request body is too large; the limit for a request that is not a file "
                                      f"upload (multipart/form-data) is {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."))
    elif isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        exc = exceptions.ParseError(detail=str(exc))

    # Django's own exceptions, as DRF would convert them, so their code is kept.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)

    response = drf_exception_handler(exc, context)
    if response is None:
        # Not an API exception: a bug. Log it with its traceback and answer in our shape.
        log.exception("unhandled API error", exc_info=exc)
        set_rollback()  # with ATOMIC_REQUESTS, nothing half-done is committed
        return Response(
            error_body("server_error", "Internal server error."), status=status.HTTP_500_INTERNAL_SERVER_ERROR
        )

    if isinstance(exc, exceptions.ValidationError):
        code, message, details = "invalid", "Invalid input.", _as_details(response.data)
        details = {**details, **(getattr(exc, "extra", None) or {})}
        message = getattr(exc, "message", message)
    else:
        detail = getattr(exc, "detail", None)
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        message = str(detail) if detail is not None else str(exc)
        details = dict(getattr(exc, "extra", None) or {})
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            details["retry_after_seconds"] = exc.wait
    response.data = error_body(code, message, details)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _is_api(request):
    return request.path.startswith("/api/")


@csrf_exempt  # a 404 whatever the method: an unknown URL has no form to protect
def api_not_found(request, *args, **kwargs):
    """Catch-all for unknown /api/ URLs (works in DEBUG too, unlike handler404)."""
    return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}."), status=404)


def csrf_failure(request, reason=""):
    """settings.CSRF_FAILURE_VIEW: the API's error shape under /api/, Django's page elsewhere."""
    if _is_api(request):
        return JsonResponse(error_body("csrf_failed", f"CSRF check failed: {reason}"), status=403)
    return csrf.csrf_failure(request, reason=reason)


def handler404(request, exception=None):
    if _is_api(request):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


def handler500(request):
    if _is_api(request):
        return JsonResponse(error_body("server_error", "Internal server error."), status=500)
    return defaults.server_error(request)

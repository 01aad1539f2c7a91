"""Request size limits, enforced before a request body is read into memory or onto disk.

Every endpoint, API or page, answers 413 naming the limit:

- ``UploadLimitMiddleware`` answers 413 from the Content-Length alone, before any
  view touches the body (so a 10 GB POST costs nothing but the refusal): a multipart
  body (a file upload) may carry SCALEPLAN_MAX_UPLOAD_BYTES, any other body (JSON, a
  form) DATA_UPLOAD_MAX_MEMORY_SIZE (SCALEPLAN_MAX_BODY_BYTES, 10 MiB);
- ``LimitedUploadHandler`` (first in FILE_UPLOAD_HANDLERS) counts the file bytes as
  Django's multipart parser streams them, and stops at the limit, for bodies whose
  length is not declared (chunked) or is wrong;
- Django's own RequestDataTooBig (the non-file fields of a multipart body over
  DATA_UPLOAD_MAX_MEMORY_SIZE) becomes the same 413, here for pages and in
  planner.api.exceptions for the API.

Decompressed size and row count are checked later, while the file is read (fits.canonical).
"""
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import FileUploadHandler
from django.shortcuts import render

from ..api.exceptions import PayloadTooLarge, error_body

# Multipart framing and the small fields sent beside the file.
MULTIPART_ALLOWANCE = 64 * 1024


class UploadTooLarge(PayloadTooLarge):
    """Raised while a body is parsed: a DRF view answers 413 in the API's shape, a page via the middleware."""


def too_large_response(request, message):
    from django.http import JsonResponse

    if request.path.startswith("/api/"):
        return JsonResponse(error_body("payload_too_large", message), status=413)
    return render(request, "upload_too_large.html", {"message": message}, status=413)


def _limit_message(what):
    return f"{what}; the upload limit is {settings.SCALEPLAN_MAX_UPLOAD_BYTES} bytes."


def body_limit_message(length=None):
    """413's message for a body that is not a file upload."""
    what = f"The request body is {length} bytes" if length is not None else "The request body is too large"
    return (f"{what}; the limit for a request that is not a file upload (multipart/form-data) is "
            f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")


class UploadLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.SCALEPLAN_MAX_UPLOAD_BYTES + MULTIPART_ALLOWANCE:
            return too_large_response(request, _limit_message(f"The request is {length} bytes"))
        multipart = request.META.get("CONTENT_TYPE", "").lower().startswith("multipart/")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if not multipart and limit is not None and length > limit:
            return too_large_response(request, body_limit_message(length))
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, UploadTooLarge):
            return too_large_response(request, str(exception.detail))
        if isinstance(exception, RequestDataTooBig):
            return too_large_response(request, body_limit_message())
        return None


class LimitedUploadHandler(FileUploadHandler):
    """Counts the file bytes of one request; over the limit, parsing stops with UploadTooLarge."""

    def __init__(self, request=None):
        super().__init__(request)
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.SCALEPLAN_MAX_UPLOAD_BYTES:
            raise UploadTooLarge(f"The file is over the upload limit of {settings.SCALEPLAN_MAX_UPLOAD_BYTES} bytes "
                                 "(reading stopped there).")
        return raw_data  # the next handlers (memory, then temporary file) store it

    def file_complete(self, file_size):
        return None

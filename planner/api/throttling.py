"""Per-user rate limits on creating work: plans, predictions and corpus uploads.

DRF's ScopedRateThrottle with two changes: it counts unsafe requests only (a user
polling their plans is not creating any), and it keeps its counts in the
"throttle" cache, which every web process shares (DRF's default cache is per
process, so the limit would grow with the number of gunicorn workers).

The HTML forms call :func:`form_throttle` with the API's scope, so a user has one
limit whether they use the form, the API or both.
"""
import math
from types import SimpleNamespace

from django.core.cache import caches
from django.utils.connection import ConnectionProxy
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import ScopedRateThrottle


class CreationRateThrottle(ScopedRateThrottle):
    cache = ConnectionProxy(caches, "throttle")

    def allow_request(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)


def form_throttle(request, scope: str) -> str | None:
    """Count a form submission against `scope`: None if allowed, else the message saying when to retry.

    The caller answers 429 with the message and a Retry-After header (``request.throttle_wait``).
    """
    throttle = CreationRateThrottle()
    if throttle.allow_request(request, SimpleNamespace(throttle_scope=scope)):
        return None
    wait = math.ceil(throttle.wait() or 1)
    request.throttle_wait = wait
    return (f"Too many requests: at most {throttle.rate} per user for {scope}. "
            f"Try again in {wait} seconds.")


def throttled_response(request, response):
    """Set the 429 status and Retry-After on a rendered form that form_throttle refused."""
    response.status_code = 429
    response["Retry-After"] = str(request.throttle_wait)
    return response

"""Per-user rate limits on creating work: plans, predictions and corpus uploads.

DRF's ScopedRateThrottle (its rates, scopes, cache keys, 429 with Retry-After) with three changes:

- it counts unsafe requests only (a user polling their plans is not creating any);
- it keeps its counts in the "throttle" cache, shared by every web process (DRF's default cache is per
  process, so the limit would grow with the number of gunicorn workers): Redis (Django's RedisCache)
  when REDIS_URL is set, else a file cache under DATA_DIR (settings.CACHES);
- each count is one atomic increment of a counter per fixed window (``cache.add`` then ``cache.incr``:
  SET NX and INCR in Redis) instead of DRF's read-modify-write of a request history, which concurrent
  requests overran (308 plans let through a limit of 300 by two clients). Windows are aligned to the
  rate's period (the hour for N/hour), so a burst across a boundary may see up to twice N. The file
  cache's increment is a read and a write, not atomic across processes: without Redis a few requests
  past the limit can slip through under concurrency (documented in the README).

If the cache cannot be reached (Redis down) the request is let through and logged: creating the job needs
the broker anyway, which then answers 503.

The HTML forms call :func:`form_throttle` with the API's scope, so a user has one
limit whether they use the form, the API or both.
"""
import logging
import math
from types import SimpleNamespace

from django.core.cache import caches
from django.utils.connection import ConnectionProxy
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import ScopedRateThrottle

log = logging.getLogger(__name__)


def _count(cache, key: str, timeout: float) -> int:
    """One more request in the window ``key``: its count after this one, atomically where the cache is."""
    if cache.add(key, 1, timeout=timeout):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr: this is the window's first request again
        cache.add(key, 1, timeout=timeout)
        return 1


class CreationRateThrottle(ScopedRateThrottle):
    cache = ConnectionProxy(caches, "throttle")

    def allow_request(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_end = (window + 1) * self.duration
        try:
            count = _count(self.cache, f"{self.key}:{window}", timeout=self.duration + 60)
        except Exception as exc:  # noqa: BLE001 (any cache backend's connection error)
            log.warning("throttle %s not counted, the cache is unreachable: %s", self.scope, exc)
            return True
        return count <= self.num_requests or self.throttle_failure()

    def wait(self):
        return max(1.0, self.window_end - self.timer())


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

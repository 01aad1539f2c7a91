"""Download the manifest's ColPret files from a raw-file base URL into a directory.

A 404 means the file is absent from that checkout (reported by the converter, not
fatal). Connection errors, timeouts and 5xx answers are retried with exponential
backoff (urllib3's Retry); when retries run out the error names the URL and why.
"""
from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError, TimeoutError as TransportTimeout
from urllib3.util.retry import Retry

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
_PINNED = re.compile(r"/[0-9a-f]{7,40}/")


class DownloadError(RuntimeError):
    """A ColPret file could not be downloaded (after retries)."""


def check_base_url(base_url: str) -> str:
    """The base URL with a trailing slash; https only, except plain http to this machine (tests)."""
    parts = urlsplit(base_url)
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise DownloadError(f"{base_url}: plain http is accepted only for localhost; use https")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DownloadError(f"{base_url}: not an http(s) URL")
    return base_url if base_url.endswith("/") else base_url + "/"


def is_pinned(base_url: str) -> bool:
    """Whether a GitHub raw URL names a commit rather than a branch (a branch can change under us)."""
    return urlsplit(base_url).hostname != "raw.githubusercontent.com" or bool(_PINNED.search(base_url + "/"))


def _session(retries: int, backoff: float) -> requests.Session:
    retry = Retry(
        total=retries, connect=retries, read=retries, status=retries,
        status_forcelist=(500, 502, 503, 504), allowed_methods=("GET",),
        backoff_factor=backoff, raise_on_status=False, respect_retry_after_header=True,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def download(
    base_url: str,
    paths: tuple[str, ...],
    target: Path,
    *,
    timeout: float | tuple[float, float] = (10.0, 60.0),
    retries: int = 4,
    backoff: float = 0.5,
    workers: int = 8,
) -> list[str]:
    """Fetch each path under base_url into target/path; return the paths that were absent (404)."""
    base = check_base_url(base_url)
    local = threading.local()

    def fetch(path: str) -> str | None:
        if not hasattr(local, "session"):
            local.session = _session(retries, backoff)
        url = urljoin(base, quote(path))
        try:
            with local.session.get(url, timeout=timeout, stream=True) as response:
                if response.status_code == 404:
                    return path
                if response.status_code != 200:
                    raise DownloadError(f"{url}: HTTP {response.status_code} {response.reason} "
                                        f"(after {retries} retries)")
                destination = target / path
                destination.parent.mkdir(parents=True, exist_ok=True)
                with open(destination, "wb") as out:
                    for chunk in response.iter_content(chunk_size=1 << 16):
                        out.write(chunk)
        except requests.exceptions.Timeout as exc:
            raise DownloadError(f"{url}: timed out (timeout {timeout}s, {retries} retries)") from exc
        except requests.exceptions.ConnectionError as exc:
            # Once retries run out, urllib3 reports a timeout as a connection error wrapping it
            # (a refused or unresolvable connection is a TimeoutError subclass too, for compatibility).
            reason = getattr(exc.args[0] if exc.args else None, "reason", None)
            if isinstance(reason, TransportTimeout) and not isinstance(reason, NewConnectionError):
                raise DownloadError(f"{url}: timed out (timeout {timeout}s, {retries} retries)") from exc
            raise DownloadError(f"{url}: connection failed after {retries} retries ({exc})") from exc
        except requests.exceptions.RequestException as exc:
            raise DownloadError(f"{url}: {exc}") from exc
        return None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(fetch, path) for path in paths]
        try:
            absent = [p for p in (future.result() for future in futures) if p is not None]
        except DownloadError:
            for future in futures:  # one failure fails the download: do not wait out the others' retries
                future.cancel()
            raise
    if len(absent) == len(paths):
        raise DownloadError(f"{base}: none of the {len(paths)} ColPret files exist there (all 404); "
                            "is this the raw-file base URL of a ColPret commit?")
    return absent

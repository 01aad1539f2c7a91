"""Pieces the browser tests share: the web server process, the page guard, screenshots, logging in.

Fixtures that use them are in conftest.py; the tests import the helpers from here.
"""
from __future__ import annotations

import csv
import gzip
import os
import re
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tests.conftest import stop_process_group

# Flags that work for Debian's Chromium on this kind of machine (root, no GPU, no network but the loopback).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Pages wait this long for a job to finish on a worker the test has just started (CI machines are busy).
JOB_TIMEOUT_MS = 60_000


# --- the web server ------------------------------------------------------------


class WebServer:
    """gunicorn serving planner.wsgi (deploy/gunicorn.conf.py) in its own process group, logging to a file."""

    def __init__(self, *, root: Path, env: dict, port: int, workers: int = 2):
        self.log_path = root / "gunicorn.log"
        self._log = open(self.log_path, "wb")
        cmd = [sys.executable, "-m", "gunicorn", "planner.wsgi:application", "--config", "deploy/gunicorn.conf.py",
               "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
        self.proc = subprocess.Popen(cmd, cwd=root_of_project(), env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.url = self._wait_listening()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait_listening(self, timeout: float = 30) -> str:
        # Port 0 lets the kernel choose a free port; gunicorn says which one it got.
        deadline = time.monotonic() + timeout
        url = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}):\n{self.log()}")
            if url is None:
                found = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", self.log())
                url = found and found.group(1)
            if url:
                try:
                    with urllib.request.urlopen(url + "/", timeout=5) as response:
                        if response.status == 200:
                            return url
                except OSError:
                    pass  # workers still booting
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {timeout} s:\n{self.log()}")

    def stop(self):
        stop_process_group(self.proc)  # gunicorn's graceful shutdown on SIGTERM
        self._log.close()


def root_of_project() -> Path:
    return Path(__file__).resolve().parents[2]


# --- what the browser saw --------------------------------------------------------


# Reports each CSP violation of the document to the guard (the event is the standard's; it carries the
# directive and URL that Chromium's console text only describes).
_CSP_LISTENER = """
window.addEventListener("securitypolicyviolation", (e) => window.__scaleplanCspViolation({
    directive: e.effectiveDirective, blockedURI: e.blockedURI, documentURI: e.documentURI,
    sourceFile: e.sourceFile, lineNumber: e.lineNumber,
}), true);
"""
# Chromium's console errors for a violation, already reported from the event. Should its wording change,
# a violation is reported twice (once as a console error). (A Web Worker's violations fire in the worker,
# not on this window; the pages start no workers.)
_CSP_CONSOLE_TEXT = re.compile(r"violates the (following|document's) Content Security Policy")


@dataclass
class PageGuard:
    """Collects what must not happen on a page: console errors, uncaught errors, failed or refused requests.

    Same-origin responses of 400 and above are problems (a form with bad input answers 200 with
    its errors); requests to any other origin are problems too, since the service must work with
    no network. The pages' Content-Security-Policy makes the browser refuse most of those itself
    (and inline script or style), so they never become requests: the page's
    ``securitypolicyviolation`` events are reported instead, one line each with the directive and
    the refused URL (Chromium's own console errors for them say the same, so they are not
    repeated). `responses` keeps every response seen, for tests to inspect.
    """

    origin: str
    problems: list[str] = field(default_factory=list)
    responses: list[tuple[str, str, int, str]] = field(default_factory=list)  # method, url, status, type
    _reported: int = 0

    def attach(self, page):
        # Before any navigation: the binding and the listener then exist in every document the page loads.
        # Init scripts and bindings are installed by Playwright over the DevTools protocol, outside the CSP.
        page.expose_binding("__scaleplanCspViolation", lambda source, v: self._on_csp_violation(v))
        page.add_init_script(_CSP_LISTENER)
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught error on {page.url}: {error}"))
        page.on("request", self._on_request)
        page.on("requestfailed", self._on_request_failed)
        page.on("response", self._on_response)

    def _on_console(self, message):
        if message.type == "error" and not _CSP_CONSOLE_TEXT.search(message.text):
            where = message.location
            self.problems.append(f"console error: {message.text} (at {where.get('url')}:{where.get('lineNumber')})")

    def _on_csp_violation(self, v: dict):
        blocked = v["blockedURI"]  # a URL, or a keyword: "inline", "eval", "data", ...
        cross_origin = "://" in blocked and not self._same_origin(blocked)
        what = f"request to another origin {blocked}" if cross_origin else blocked
        self.problems.append(f"refused by the Content-Security-Policy ({v['directive']}): {what} "
                             f"(at {v['sourceFile'] or v['documentURI']}:{v['lineNumber']})")

    def _same_origin(self, url: str) -> bool:
        return url == self.origin or url.startswith(self.origin + "/")

    def _on_request(self, request):
        scheme = urlsplit(request.url).scheme
        if scheme in ("http", "https", "ws", "wss") and not self._same_origin(request.url):
            self.problems.append(f"request to another origin: {request.method} {request.url}")

    def _on_request_failed(self, request):
        if self._same_origin(request.url):
            self.problems.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def _on_response(self, response):
        request = response.request
        self.responses.append((request.method, response.url, response.status,
                               response.headers.get("content-type", "")))
        if self._same_origin(response.url) and response.status >= 400:
            self.problems.append(f"HTTP {response.status} for {request.method} {response.url}")

    def check(self, when: str):
        """Fail with every problem not reported yet."""
        new = self.problems[self._reported:]
        self._reported = len(self.problems)
        assert not new, f"{when}: the browser saw\n  " + "\n  ".join(new)


class Screenshots:
    """shot("step") saves a full-page screenshot as NN-step.png in the test's directory, then checks the guard."""

    def __init__(self, page, directory: Path, guard: PageGuard):
        self.page, self.directory, self.guard = page, directory, guard
        self.taken: list[Path] = []

    def __call__(self, step: str) -> Path:
        path = self.directory / f"{len(self.taken) + 1:02d}-{step}.png"
        self.page.screenshot(path=path, full_page=True)
        self.taken.append(path)
        self.guard.check(f"at step {step!r}")
        return path


def screenshot_root() -> Path:
    return Path(os.environ.get("SCALEPLAN_SCREENSHOTS") or root_of_project() / "test-artifacts" / "screenshots")


# --- steps every scenario takes ----------------------------------------------------


def log_in(page, user, *, then: str, login_path: str = "/accounts/login/", button: str = "Log in"):
    """Open `then`, which sends an anonymous user to the login form; log in there and land back on `then`."""
    from playwright.sync_api import expect

    page.goto(then)
    expect(page).to_have_url(re.compile(re.escape(login_path) + r"\?next="))
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("pw-" + user.username)
    page.get_by_role("button", name=button).click()
    expect(page).to_have_url(re.compile(re.escape(then) + "$"))


def png_responses(guard) -> list[tuple[str, int, str]]:
    """(path, status, content type) of every .png the page fetched."""
    return [(urlsplit(url).path, status, kind) for _, url, status, kind in guard.responses if url.endswith(".png")]


def images_loaded(page) -> list[dict]:
    """Every <img> once the browser has finished with it: src and natural size (0 = it did not decode)."""
    page.wait_for_function("() => [...document.images].every(img => img.complete)")
    return page.eval_on_selector_all(
        "img", "imgs => imgs.map(img => ({src: img.getAttribute('src'), width: img.naturalWidth, "
               "height: img.naturalHeight}))")


# --- real corpus data, as a user's file --------------------------------------------


def corpus_family(family: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one family in the reference corpus (../shared/corpus), as the canonical CSV has them."""
    import pytest
    from django.conf import settings

    path = settings.SCALEPLAN_SHARED_DIR / "corpus" / "colpret.csv.gz"
    if not path.exists():
        pytest.skip(f"reference corpus not found at {path}")
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        header = next(csv.reader([f.readline()]))
        rows = list(csv.reader(line for line in f if line.startswith(family + ",")))
    return header, [row for row in rows if row[0] == family]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path

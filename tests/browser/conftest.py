"""Browser tests: Playwright driving Debian's Chromium against gunicorn, with real Celery workers over Redis.

The server is a real gunicorn process (deploy/gunicorn.conf.py, DEBUG off, static
files collected and served by WhiteNoise, as in production) on the test database,
started once per session. Workers are started by each test when it wants its job
to run (tests/conftest.py's `celery_workers`), so a page can be seen queued first.

Every test fails on a browser console error, an uncaught page error, a failed or
4xx/5xx same-origin request, a request to another origin, or anything the pages'
Content-Security-Policy refuses (support.PageGuard).
Screenshots of each step go to test-artifacts/screenshots/<test>/ (SCALEPLAN_SCREENSHOTS
to put them elsewhere); a failing test leaves failure.png there and prints the ends
of the server's and workers' logs.

Needs Chromium (/usr/bin/chromium, Debian's `chromium` package; SCALEPLAN_CHROMIUM for
another path), PostgreSQL and Redis: without them the tests skip, or fail under CI=true.
SCALEPLAN_BROWSER_PORT fixes the server's port (default: any free one).
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.browser.support import CHROMIUM_ARGS, PageGuard, Screenshots, WebServer, root_of_project, screenshot_root
from tests.conftest import TEST_QUEUE, _broker_url, _database_url, _require

_phase_reports = pytest.StashKey[dict]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the item, so the page fixture knows at teardown whether the test failed.
    report = yield
    item.stash.setdefault(_phase_reports, {})[report.when] = report
    return report


@pytest.fixture(scope="session")
def chromium_executable():
    executable = os.environ.get("SCALEPLAN_CHROMIUM", "/usr/bin/chromium")
    _require(os.access(executable, os.X_OK),
             f"browser tests need Chromium at {executable} (Debian: apt-get install chromium)")
    return executable


@pytest.fixture(scope="session")
def web_server(chromium_executable, django_db_setup, tmp_path_factory):
    """gunicorn on the test database, static files collected into a private STATIC_ROOT.

    (It asks for Chromium first only so that a machine without one skips before starting a server.)
    """
    database, broker = _database_url(), _broker_url()
    root = tmp_path_factory.mktemp("browser-server")
    env = {
        **os.environ,
        "SCALEPLAN_ENV": "development",
        "DEBUG": "false",
        "DATABASE_URL": database,
        "REDIS_URL": broker,
        "CELERY_BROKER_URL": broker,
        # This session's queue: the workers the tests start consume it.
        "CELERY_TASK_DEFAULT_QUEUE": TEST_QUEUE,
        "SCALEPLAN_DATA_DIR": str(root / "data"),
        "STATIC_ROOT": str(root / "static"),
        "LOG_LEVEL": "INFO",
    }
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=root_of_project(),
                   env=env, check=True)
    server = WebServer(root=root, env=env, port=int(os.environ.get("SCALEPLAN_BROWSER_PORT", "0")))
    server.data_dir = root / "data"
    yield server
    server.stop()


@pytest.fixture(scope="package")
def browser(chromium_executable):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop in this thread, and Django refuses ORM calls when it sees
    # one. Nothing async touches the ORM here (the test body and fixtures are plain synchronous code), so
    # allow it while the browser is up - only for this package's tests.
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=chromium_executable, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture
def guard(web_server):
    return PageGuard(origin=web_server.url)


@pytest.fixture
def page(request, browser, web_server, guard):
    """A fresh browser context (no cookies) on the server, watched by `guard`; checked again at teardown."""
    context = browser.new_context(base_url=web_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    guard.attach(tab)
    yield tab
    if _failed(request):
        directory = _shot_dir(request)
        directory.mkdir(parents=True, exist_ok=True)
        try:
            tab.screenshot(path=directory / "failure.png", full_page=True)
        except Exception as exc:  # the page may be what broke
            print(f"no failure screenshot: {exc}")
        print(f"screenshots: {directory}\n--- gunicorn log (end) ---\n{web_server.log()[-4000:]}")
    context.close()
    guard.check("by the end of the test")


def _failed(request) -> bool:
    return any(report.failed for report in request.node.stash.get(_phase_reports, {}).values())


def _shot_dir(request):
    return screenshot_root() / re.sub(r"[^\w.-]+", "-", request.node.name).strip("-")


@pytest.fixture
def shot(request, page, guard):
    """shot("step"): a full-page screenshot of this step (NN-step.png), then no problem may have been seen."""
    directory = _shot_dir(request)
    shutil.rmtree(directory, ignore_errors=True)  # only this run's pictures
    directory.mkdir(parents=True)
    return Screenshots(page, directory, guard)


@pytest.fixture
def start_worker(request, celery_workers, web_server):
    """start_worker() -> a Celery worker on this session's queue, sharing the server's data directory."""
    started = []

    def start():
        started.append(celery_workers(f"worker{len(started) + 1}", SCALEPLAN_DATA_DIR=str(web_server.data_dir)))
        return started[-1]

    yield start
    if _failed(request):
        for worker in started:
            print(f"--- {worker.name} log (end) ---\n{worker.log()[-4000:]}")

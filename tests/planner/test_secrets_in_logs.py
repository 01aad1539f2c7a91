"""Secrets never reach the logs: SECRET_KEY, database and Redis passwords, API tokens, login passwords.

Each test drives an error path with logging captured at DEBUG (everything any
logger emits) and looks for the secret strings in what was logged and in the
response (a job whose task cannot be sent is not kept, so no row can hold one).
"""
import logging
import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.test import Client, RequestFactory
from django.views.debug import SafeExceptionReporterFilter

from planner.models import Job
from tests.conftest import BASE_DIR
from tests.planner.plans.test_plans import REQUEST as PLAN_REQUEST
from tests.planner.plans.test_plans import error_model  # noqa: F401 (fixture)
from tests.planner.test_settings import boot

pytestmark = pytest.mark.django_db

BROKER_PASSWORD = "Br0ker-pa55word-xyzzy"
DB_PASSWORD = "Db-pa55word-plugh"
LOGIN_PASSWORD = "Hunter2-not-the-password"


@pytest.fixture
def logged(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_absent(text, *secrets):
    for secret in secrets:
        assert secret not in text, f"{secret!r} was logged"


def test_an_unexpected_api_error_logs_no_token_or_secret_key(logged, client_for, owner, monkeypatch, settings):
    from planner.corpus import api as views

    settings.DEBUG = False
    monkeypatch.setattr(views.FamilyList, "list", lambda self, request: 1 / 0)
    response = client_for(owner).get("/api/v1/families/", HTTP_X_API_KEY="also-" + owner.token)
    assert response.status_code == 500 and response.json()["error"]["code"] == "server_error"
    assert "ZeroDivisionError" in logged.text  # the error is logged, with its traceback
    assert_absent(logged.text + response.content.decode(), owner.token, settings.SECRET_KEY)


def test_an_unexpected_page_error_logs_no_session_or_secret_key(logged, owner, monkeypatch, settings):
    from planner.corpus import views

    settings.DEBUG = False
    monkeypatch.setattr(views.Family.objects, "count", lambda: 1 / 0)
    client = Client(raise_request_exception=False)
    client.force_login(owner)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    response = client.get("/", HTTP_AUTHORIZATION=f"Token {owner.token}")
    assert response.status_code == 500
    assert "Internal Server Error: /" in logged.text
    assert_absent(logged.text + response.content.decode(), owner.token, session, settings.SECRET_KEY)


def test_a_failed_login_logs_no_password(logged, owner):
    response = Client().post("/accounts/login/", {"username": "owner", "password": LOGIN_PASSWORD})
    assert response.status_code == 200 and b"Please enter a correct username and password" in response.content
    assert_absent(logged.text, LOGIN_PASSWORD)


def test_error_reports_of_the_login_form_mask_the_password():
    from django.contrib.auth.views import LoginView

    request = RequestFactory().post("/accounts/login/", {"username": "owner", "password": LOGIN_PASSWORD})
    LoginView.as_view()(request)
    assert request.sensitive_post_parameters == "__ALL__"  # Django's sensitive_post_parameters()
    shown = SafeExceptionReporterFilter().get_post_parameters(request)
    assert shown["password"] != LOGIN_PASSWORD and set(shown["password"]) == {"*"}


@pytest.mark.django_db(transaction=True)  # the task is sent on commit
def test_an_unreachable_broker_with_a_password_is_reported_without_it(logged, client_for, owner,
                                                                      error_model):  # noqa: F811
    from planner.celery import app

    saved = app.conf.broker_url
    app._pool, app.amqp._producer_pool = None, None
    app.conf.broker_url = f"redis://:{BROKER_PASSWORD}@127.0.0.1:1/0"
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(settings, "CELERY_BROKER_URL", app.conf.broker_url)
            response = client_for(owner).post("/api/v1/plans/", PLAN_REQUEST, format="json")
    finally:
        app._pool, app.amqp._producer_pool = None, None
        app.conf.broker_url = saved
    # Nothing is created when the broker is down (planner/jobs.py), so there is no job row to look at: the
    # user reads the reason in the response, the operator reads where the broker was in the log.
    assert response.status_code == 503
    assert "The task queue is unreachable, so the plan was not started" in response.json()["error"]["message"]
    assert not Job.objects.exists()
    assert "not created: the task broker is unreachable" in logged.text and "127.0.0.1:1" in logged.text
    assert_absent(logged.text + response.content.decode(), BROKER_PASSWORD)


@pytest.mark.subprocess
def test_a_database_url_password_stays_out_of_a_failed_connection_message(tmp_path):
    done = boot(tmp_path, argv=["manage.py", "migrate", "--noinput"],
                DATABASE_URL=f"postgres://postgres:{DB_PASSWORD}@127.0.0.1:1/scaleplan")
    assert done.returncode != 0 and "127.0.0.1" in done.stderr  # it failed, and said where
    assert_absent(done.stdout + done.stderr, DB_PASSWORD)


@pytest.mark.subprocess
def test_the_worker_banner_and_broker_errors_mask_the_redis_password(tmp_path):
    env = {**os.environ, "CELERY_BROKER_URL": f"redis://:{BROKER_PASSWORD}@127.0.0.1:1/0",
           "SCALEPLAN_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "planner", "worker", "--loglevel", "DEBUG", "--pool", "solo",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while "Cannot connect to" not in log.read_text(errors="replace") and time.monotonic() < deadline:
                time.sleep(0.5)
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
    text = log.read_text(errors="replace")
    assert "Cannot connect to redis://:**@127.0.0.1:1/0" in text, text[-2000:]
    assert "transport:   redis://:**@127.0.0.1:1/0" in text
    assert_absent(text, BROKER_PASSWORD)


@pytest.mark.subprocess
def test_the_scripts_mask_url_passwords_in_what_they_print():
    line = f"tests on database postgres://app:{DB_PASSWORD}@db:5432/x, broker redis://:{BROKER_PASSWORD}@r:6379/1"
    done = subprocess.run(["bash", "-c", 'source scripts/lib.sh && scaleplan_redact "$1"', "_", line],
                          cwd=BASE_DIR, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "tests on database postgres://app:***@db:5432/x, broker redis://:***@r:6379/1"
    for script in ("scripts/test", "scripts/serve"):
        text = (BASE_DIR / script).read_text()
        for line in text.splitlines():
            if "scaleplan_log" in line and any(f"${{{v}" in line for v in ("DATABASE_URL", "REDIS_URL",
                                                                               "CELERY_BROKER_URL")):
                assert "scaleplan_redact" in line, (script, line)

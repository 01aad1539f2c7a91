"""Job services (planner.jobs.services, planner.jobs.dispatch): guarded transitions, enqueue on commit, recovery."""
from datetime import timedelta

import pytest
from django.utils import timezone

from planner.jobs.services import (
    MAX_ATTEMPTS,
    JobCancelled,
    JobEnqueueError,
    JobError,
    ProgressReporter,
    job_cancel,
    job_claim,
    job_create,
    job_fail,
    job_set_progress,
    job_succeed,
    stale_before,
)
from planner.models import Job
from tests.planner.plans.test_plans import error_model  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def queued(**kw):
    return Job.objects.create(kind=Job.Kind.CORPUS_STATS, input={"families": None}, **kw)


def test_create_saves_a_queued_row_and_enqueues_only_after_commit(owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = job_create(kind=Job.Kind.CORPUS_STATS, input={"families": ["tiny"]}, created_by=owner)
    assert len(callbacks) == 1
    job.refresh_from_db()
    assert (job.status, job.input, job.created_by, job.attempts) == ("queued", {"families": ["tiny"]}, owner, 0)


@pytest.mark.django_db(transaction=True)  # the task is sent on commit
def test_with_eager_tasks_a_job_sent_by_name_runs_in_the_calling_process(corpus):
    # CELERY_TASK_ALWAYS_EAGER (debugging): send_task would ignore it, so dispatch runs the registered task here.
    from planner.celery import app

    saved, app.conf.task_always_eager = app.conf.task_always_eager, True
    try:
        job = job_create(kind=Job.Kind.CORPUS_STATS, input={"families": ["tiny"]})
    finally:
        app.conf.task_always_eager = saved
    job.refresh_from_db()
    assert (job.status, job.result["families"]) == ("succeeded", ["tiny"])


def test_it_rejects_an_unknown_kind_and_saves_nothing():
    with pytest.raises(JobError, match="unknown job kind 'bake'"):
        job_create(kind="bake", input={})
    assert not Job.objects.exists()


def test_an_unreachable_broker_creates_nothing_and_says_so(unreachable_broker, django_capture_on_commit_callbacks):
    with pytest.raises(JobEnqueueError, match="task queue is unreachable, so the statistics refresh was not started "
                                              "and nothing was saved") as err:
        with django_capture_on_commit_callbacks(execute=True):
            job_create(kind=Job.Kind.CORPUS_STATS, input={})
    assert not Job.objects.exists()
    assert err.value.kind == "corpus_stats" and "127.0.0.1:1" not in str(err.value)  # internal hosts stay in the log


def test_claim_takes_a_queued_job_once():
    job = queued()
    claimed = job_claim(job_id=job.pk, worker="w1")
    assert (claimed.status, claimed.worker, claimed.attempts) == ("running", "w1", 1)
    assert claimed.started_at is not None
    assert job_claim(job_id=job.pk, worker="w2") is None
    job.refresh_from_db()
    assert (job.worker, job.attempts) == ("w1", 1)


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_claim_does_nothing_for_a_finished_job(status):
    job = queued(status=status)
    assert job_claim(job_id=job.pk, worker="w") is None
    job.refresh_from_db()
    assert job.status == status and job.attempts == 0


def test_claim_does_nothing_for_a_missing_job():
    assert job_claim(job_id=987654, worker="w") is None


def test_claim_retakes_a_running_job_only_once_its_worker_must_be_gone():
    job = queued(status="running", started_at=timezone.now(), attempts=1, worker="dead")
    assert job_claim(job_id=job.pk, worker="w2") is None
    Job.objects.filter(pk=job.pk).update(started_at=stale_before() - timedelta(seconds=1))
    claimed = job_claim(job_id=job.pk, worker="w2")
    assert (claimed.status, claimed.worker, claimed.attempts) == ("running", "w2", 2)


def test_it_gives_up_on_a_job_whose_worker_was_lost_too_often():
    job = queued(status="running", started_at=stale_before() - timedelta(seconds=1), attempts=MAX_ATTEMPTS)
    assert job_claim(job_id=job.pk, worker="w") is None
    job.refresh_from_db()
    assert job.status == "failed" and f"lost {MAX_ATTEMPTS} times" in job.error


def test_progress_is_clamped_and_never_goes_backwards():
    job = queued(status="running")
    job_set_progress(job_id=job.pk, fraction=0.5, message="half")
    job_set_progress(job_id=job.pk, fraction=0.2, message="late report")
    job.refresh_from_db()
    assert (job.progress, job.progress_message) == (0.5, "half")
    job_set_progress(job_id=job.pk, fraction=7, message="done")
    job.refresh_from_db()
    assert job.progress == 1.0
    job_set_progress(job_id=job.pk, fraction=-1, message="")
    job.refresh_from_db()
    assert job.progress == 1.0


@pytest.mark.parametrize("status", ["cancelled", "failed", "queued"])
def test_progress_on_a_job_that_is_not_running_stops_the_work(status):
    job = queued(status=status)
    with pytest.raises(JobCancelled, match=status):
        job_set_progress(job_id=job.pk, fraction=0.5, message="")


def test_succeed_stores_the_result_only_for_a_running_job():
    job = queued(status="running")
    assert job_succeed(job_id=job.pk, result={"n": 1})
    job.refresh_from_db()
    assert (job.status, job.result, job.progress) == ("succeeded", {"n": 1}, 1.0)
    assert job.finished_at is not None
    cancelled = queued(status="cancelled")
    assert not job_succeed(job_id=cancelled.pk, result={"n": 2})
    cancelled.refresh_from_db()
    assert cancelled.status == "cancelled" and cancelled.result is None


def test_fail_records_the_error_but_never_overwrites_an_outcome():
    job = queued(status="running")
    failed = job_fail(job_id=job.pk, error="boom", result={"problems": []})
    assert (failed.status, failed.error, failed.result) == ("failed", "boom", {"problems": []})
    done = queued(status="succeeded", result={"ok": True})
    assert job_fail(job_id=done.pk, error="late") is None
    done.refresh_from_db()
    assert done.status == "succeeded" and done.error == ""


@pytest.mark.parametrize("status", ["queued", "running"])
def test_cancel_stops_a_queued_or_running_job(status):
    job = job_cancel(job=queued(status=status))
    assert job.status == "cancelled" and job.finished_at is not None


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_it_rejects_cancelling_a_finished_job(status):
    job = queued(status=status)
    with pytest.raises(JobError, match=f"already {status}"):
        job_cancel(job=job)


@pytest.mark.django_db(transaction=True)
def test_progress_inside_a_transaction_is_visible_and_notices_cancellation():
    """An import reports progress from inside its transaction; others must see it at once."""
    from django.db import transaction

    job = queued(status="running")
    seen_outside = []
    with ProgressReporter(job.pk) as progress, pytest.raises(JobCancelled):
        with transaction.atomic():
            progress(0.3, "reading")
            # Another connection (a thread, like a web request) reads and cancels.
            from concurrent.futures import ThreadPoolExecutor

            from django.db import connection

            def other_request():
                try:
                    seen = Job.objects.get(pk=job.pk)
                    seen_outside.append((seen.progress, seen.progress_message))
                    job_cancel(job=seen)
                finally:
                    connection.close()

            with ThreadPoolExecutor(1) as pool:
                pool.submit(other_request).result(timeout=10)
            progress(0.6, "writing")
    from django.db import connection

    if connection.vendor != "sqlite":
        assert seen_outside == [(0.3, "reading")]
    job.refresh_from_db()
    assert job.status == "cancelled"


# --- a real Redis that dies -----------------------------------------------------------
# The service's own redis-server is killed outright (tests/conftest.py ThrowawayRedis):
# every way a user creates a job answers 503, creates nothing and works again once Redis is back.


def post_one_of_each_kind(client_for, owner, staff, sweep_families=None):
    """A plan, a prediction, an import and a sweep through the API: {kind: response}."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.conftest import SMALL_CORPUS
    from tests.planner.predictions.test_api_predictions import body as prediction_body
    from tests.planner.plans.test_plans import REQUEST as PLAN_REQUEST

    user, admin = client_for(owner), client_for(staff)
    return {
        "plan": user.post("/api/v1/plans/", PLAN_REQUEST, format="json"),
        "prediction": user.post("/api/v1/predictions/", prediction_body(), format="json"),
        "import": admin.post("/api/v1/imports/", {"file": SimpleUploadedFile("c.csv", SMALL_CORPUS.encode())},
                             format="multipart"),
        "error-model rebuild": admin.post("/api/v1/sweeps/", {"families": sweep_families} if sweep_families else {},
                                          format="json"),
    }


@pytest.mark.subprocess
@pytest.mark.django_db(transaction=True)
def test_with_redis_down_every_job_kind_answers_503_creates_nothing_and_works_once_redis_is_back(
        client_for, owner, staff, error_model, throwaway_redis, settings):
    uploads = settings.DATA_DIR / "uploads"

    def files():
        return sorted(uploads.rglob("*")) if uploads.exists() else []

    up = post_one_of_each_kind(client_for, owner, staff)
    assert {kind: r.status_code for kind, r in up.items()} == dict.fromkeys(up, 202)
    assert throwaway_redis.queue_length() == 4
    jobs_before, files_before = set(Job.objects.values_list("pk", flat=True)), files()

    throwaway_redis.kill()
    down = post_one_of_each_kind(client_for, owner, staff)
    for noun, response in down.items():
        assert response.status_code == 503, (noun, response.content)
        assert response["Retry-After"] == "30"
        assert response.json() == {"error": {
            "code": "service_unavailable", "details": {"retry_after_seconds": 30},
            "message": f"The task queue is unreachable, so the {noun} was not started and nothing was saved; "
                       "try again in a minute."}}
    assert set(Job.objects.values_list("pk", flat=True)) == jobs_before  # nothing created, nothing left queued
    assert files() == files_before  # the upload that could not be queued is gone

    throwaway_redis.start()  # the same address, empty: the web process reconnects by itself
    again = post_one_of_each_kind(client_for, owner, staff)
    assert {kind: r.status_code for kind, r in again.items()} == dict.fromkeys(again, 202)
    assert throwaway_redis.queue_length() == 4


@pytest.mark.subprocess
@pytest.mark.django_db(transaction=True)
def test_with_redis_down_the_forms_answer_503_with_the_reason_on_the_page_and_create_nothing(
        client, owner, staff, error_model, throwaway_redis):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.conftest import SMALL_CORPUS
    from tests.planner.plans.test_views_plans import FORM as PLAN_FORM
    from tests.planner.predictions.test_views_predictions import form as prediction_form

    throwaway_redis.kill()
    client.force_login(owner)
    pages = {
        "plan": client.post("/plans/new", PLAN_FORM),
        "prediction": client.post("/predictions/new", prediction_form()),
    }
    client.force_login(staff)
    pages["import"] = client.post("/admin/planner/job/import/", {"file": SimpleUploadedFile("c.csv", SMALL_CORPUS.encode())})
    for noun, response in pages.items():
        assert response.status_code == 503, (noun, response.status_code)
        html = response.content.decode()
        assert f"The task queue is unreachable, so the {noun} was not started and nothing was saved" in html
        assert 'name="csrfmiddlewaretoken"' in html  # the form again, ready to send once Redis is back
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_redis_that_accepts_connections_but_never_answers_gets_a_503_within_seconds(client_for, owner, staff, settings):
    import socket
    import time

    from tests.conftest import _require, broker_at

    # The timeouts under test are the Redis broker's settings (planner/settings.py).
    _require(settings.CELERY_BROKER_URL.startswith("redis"), "needs the Redis broker settings: set REDIS_URL")

    with socket.socket() as silent:  # the kernel completes the handshake; nobody ever reads or replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        with broker_at(f"redis://127.0.0.1:{silent.getsockname()[1]}/0"):
            started = time.monotonic()
            response = client_for(staff).post("/api/v1/stats/refresh/", {}, format="json")
            took = time.monotonic() - started
    assert response.status_code == 503 and response.json()["error"]["code"] == "service_unavailable"
    assert took < 20, took  # the broker's socket timeout (5 s), not gunicorn's 120 s or forever
    assert not Job.objects.exists()

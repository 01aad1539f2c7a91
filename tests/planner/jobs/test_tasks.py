"""Celery tasks (planner.jobs.tasks): in-process behaviour, then real worker processes over Redis."""
import gzip
import re
import time

import pytest

from planner.corpus import stats as stats_module
from planner.jobs.services import job_cancel, job_create
from planner.models import Family, Job, Observation
from planner.jobs.tasks import run_job
from tests.conftest import SMALL_CORPUS, wait_for_job

# The task runs its own transactions (and a progress thread), so the test data must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


def stats_job(**input):
    return Job.objects.create(kind=Job.Kind.CORPUS_STATS, input={"families": None, **input})


def import_job(settings, text, name="upload.csv", **options):
    path = settings.DATA_DIR / "uploads" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    return Job.objects.create(
        kind=Job.Kind.CORPUS_IMPORT,
        input={"path": str(path), "filename": name, "skip_invalid": False, "replace": False, **options},
    )


# --- in process ----------------------------------------------------------------


def test_a_stats_job_stores_the_result_and_the_family_stats(corpus):
    job = stats_job()
    run_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    # The statistics, then the laws the corpus pages show (tiny's and other's: computed, available or not).
    assert job.result == {"families_refreshed": 2, "families": ["other", "tiny"], "laws_computed": 2,
                          "laws_cached_already": 0}
    assert (job.progress, job.attempts) == (1.0, 1)
    assert job.progress_message == "2 families refreshed, 2 laws computed"
    assert Family.objects.get(name="tiny").stats["n_runs"] == 3


def test_running_the_same_job_twice_does_the_work_once(corpus, monkeypatch):
    job = stats_job()
    run_job.apply(args=[job.pk])
    calls = []
    monkeypatch.setattr(stats_module, "family_stats_compute", lambda f: calls.append(f) or {})
    run_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert calls == []
    assert (job.status, job.attempts) == ("succeeded", 1)
    assert Family.objects.get(name="tiny").stats["n_runs"] == 3


def test_an_import_job_imports_the_upload_and_refreshes_the_touched_families(settings):
    job = import_job(settings, SMALL_CORPUS, name="small.csv.gz")
    run_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.result["import"]["rows_inserted"] == 8
    assert job.result["stats"]["families"] == ["other", "tiny"]
    assert Family.objects.get(name="tiny").stats["n_runs"] == 3
    assert Observation.objects.count() == 8
    assert not (settings.DATA_DIR / "uploads" / "small.csv.gz").exists()


def test_an_invalid_upload_fails_the_job_with_line_column_and_reason(settings):
    bad = SMALL_CORPUS.replace("tiny-50m,dec,50000000,1e9", "tiny-50m,dec,50000000,-1e9")
    job = import_job(settings, bad)
    run_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == "failed"
    assert "nothing was written" in job.error and "line 6" in job.error
    assert not list(settings.DATA_DIR.rglob("*.csv"))
    assert job.result["problems"] == [{"line": 6, "column": "tokens", "reason": job.result["problems"][0]["reason"]}]
    assert not Observation.objects.exists()


def test_a_job_whose_upload_vanished_fails_with_the_file_named(settings):
    job = import_job(settings, SMALL_CORPUS, name="gone.csv")
    (settings.DATA_DIR / "uploads" / "gone.csv").unlink()
    run_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == "failed" and "'gone.csv' is no longer on disk" in job.error


def test_an_unexpected_error_fails_the_job_with_its_text(corpus, monkeypatch):
    def broken(family):
        raise ZeroDivisionError("division by zero in stats")

    monkeypatch.setattr(stats_module, "family_stats_compute", broken)
    job = stats_job()
    run_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert (job.status, job.error) == ("failed", "ZeroDivisionError: division by zero in stats")


def test_a_job_over_its_soft_time_limit_fails_with_the_limit_named(corpus, monkeypatch, settings):
    from celery.exceptions import SoftTimeLimitExceeded

    def too_slow(family):
        raise SoftTimeLimitExceeded()  # what the worker raises in the task when the soft limit passes

    monkeypatch.setattr(stats_module, "family_stats_compute", too_slow)
    job = stats_job()
    run_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error == f"Stopped: took longer than {settings.CELERY_TASK_SOFT_TIME_LIMIT} s."


def test_a_running_job_stops_at_its_next_progress_report_once_cancelled(corpus, monkeypatch):
    job = stats_job()
    compute = stats_module.family_stats_compute

    def compute_then_user_cancels(family):
        job_cancel(job=Job.objects.get(pk=job.pk))
        return compute(family)

    monkeypatch.setattr(stats_module, "family_stats_compute", compute_then_user_cancels)
    run_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == "cancelled" and job.result is None
    # The first family ("other") was done before the cancel was noticed; "tiny" never started.
    assert Family.objects.get(name="other").stats != {}
    assert Family.objects.get(name="tiny").stats == {}


def cancel_from_another_connection(job_id):
    """Cancel as a web request would: its own connection, committed at once."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def cancel():
        try:
            job_cancel(job=Job.objects.get(pk=job_id))
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(cancel).result(timeout=10)


def test_a_cancelled_import_writes_nothing(settings, monkeypatch):
    from planner.corpus import importing

    job = import_job(settings, SMALL_CORPUS)
    real_upsert = importing._upsert_families

    def upsert_then_user_cancels(*args, **kwargs):
        cancel_from_another_connection(job.pk)
        return real_upsert(*args, **kwargs)

    monkeypatch.setattr(importing, "_upsert_families", upsert_then_user_cancels)
    run_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert not Family.objects.exists() and not Observation.objects.exists()
    assert not list(settings.DATA_DIR.rglob("*.csv")), "the upload is removed once the job has an outcome"


def test_a_job_running_elsewhere_is_left_alone_and_checked_again_once_it_could_be_stale(
    corpus, monkeypatch, settings
):
    from celery.exceptions import Retry
    from django.utils import timezone

    job = stats_job()
    Job.objects.filter(pk=job.pk).update(status="running", started_at=timezone.now(), worker="other", attempts=1)
    asked = []

    def retry(countdown):
        # Eager mode would run the retry inline at once; record when it was asked for instead.
        asked.append(countdown)
        return Retry(when=countdown)

    monkeypatch.setattr(run_job, "retry", retry)
    run_job.apply(args=[job.pk])
    assert len(asked) == 1
    assert settings.CELERY_TASK_TIME_LIMIT < asked[0] <= settings.CELERY_TASK_TIME_LIMIT + 62
    job.refresh_from_db()
    assert (job.status, job.worker, job.attempts) == ("running", "other", 1)


# --- real workers over Redis -----------------------------------------------------------


@pytest.mark.worker
def test_a_real_worker_takes_a_job_from_queued_to_succeeded(celery_worker_process, corpus):
    job = job_create(kind=Job.Kind.CORPUS_STATS, input={"families": ["tiny"]})
    assert Job.objects.get(pk=job.pk).status in ("queued", "running", "succeeded")
    job = wait_for_job(job.pk)
    assert job.status == "succeeded", (job.error, celery_worker_process.log())
    assert job.result == {"families_refreshed": 1, "families": ["tiny"], "laws_computed": 1, "laws_cached_already": 0}
    assert job.worker.startswith(celery_worker_process.name)
    assert Family.objects.get(name="tiny").stats["n_sizes"] == 2


@pytest.mark.worker
def test_two_workers_given_the_same_job_run_it_once(celery_workers, settings):
    first, second = celery_workers("worker1"), celery_workers("worker2")
    job = import_job(settings, SMALL_CORPUS)
    for _ in range(4):  # the same job id delivered several times, as on redelivery
        run_job.apply_async(args=[job.pk])
    job = wait_for_job(job.pk)
    assert job.status == "succeeded", job.error
    assert job.attempts == 1
    assert Observation.objects.count() == 8
    logs = first.log() + second.log()
    assert len(re.findall(rf"job {job.pk} \(corpus_import\) claimed by", logs)) == 1, logs
    # Every delivery was handled by some worker: one ran it, the others found it taken or done.
    wait_until = time.monotonic() + 10
    while time.monotonic() < wait_until:
        logs = first.log() + second.log()
        if len(re.findall(rf"job {job.pk} (not claimed|is running elsewhere)", logs)) >= 3:
            break
        time.sleep(0.1)
    assert len(re.findall(rf"job {job.pk} (not claimed|is running elsewhere)", logs)) >= 3, logs


@pytest.mark.worker
def test_a_real_worker_marks_a_failing_job_failed_with_the_error(celery_worker_process, settings):
    bad = SMALL_CORPUS.replace("val_loss,3.5", "val_loss,not-a-number")
    job = import_job(settings, bad)
    run_job.apply_async(args=[job.pk])
    job = wait_for_job(job.pk)
    assert job.status == "failed"
    assert "line 3" in job.error and "value" in job.error
    assert not Observation.objects.exists()


@pytest.mark.worker
def test_a_job_cancelled_while_queued_never_runs(celery_workers, corpus):
    job = job_create(kind=Job.Kind.CORPUS_STATS, input={"families": None})  # sent, no worker yet
    job_cancel(job=job)
    worker = celery_workers("worker1")
    deadline = time.monotonic() + 15
    while f"job {job.pk} not claimed: cancelled" not in worker.log():
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.1)
    job.refresh_from_db()
    assert job.status == "cancelled" and job.attempts == 0
    assert Family.objects.get(name="tiny").stats == {}


@pytest.mark.worker
def test_a_real_worker_stops_an_import_at_the_soft_time_limit_and_writes_nothing(celery_workers, settings):
    import shutil

    source = settings.SCALEPLAN_SHARED_DIR / "corpus" / "colpret.csv.gz"
    if not source.is_file():
        pytest.skip(f"reference corpus not found at {source}")
    worker = celery_workers("worker1")
    job = import_job(settings, "", name="colpret.csv.gz")
    shutil.copyfile(source, job.input["path"])
    # The sender's limits travel in the message; the full corpus takes longer than 1 s.
    run_job.apply_async(args=[job.pk], soft_time_limit=1)
    job = wait_for_job(job.pk, timeout=60)
    assert job.status == "failed", (job.status, worker.log())
    assert job.error == "Stopped: took longer than 1 s."
    assert not Observation.objects.exists() and not Family.objects.exists()


def test_a_skip_invalid_import_reports_the_skipped_rows_capped_on_the_job(settings, monkeypatch):
    from planner.corpus import services as services_corpus

    monkeypatch.setattr(services_corpus, "MAX_PROBLEMS_STORED", 1)
    bad = SMALL_CORPUS.replace("tiny,tiny-10m,dec,10000000,2e9", "tiny,tiny-10m,dec,10000000,-2e9").replace(
        "val_loss,2.5,", "val_loss,inf,"
    )
    job = import_job(settings, bad, skip_invalid=True)
    run_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    report = job.result["import"]
    assert (report["rows_inserted"], report["rows_skipped"], report["n_problems"]) == (6, 2, 2)
    assert report["problems_truncated"] is True
    assert [(p["line"], p["column"]) for p in report["problems"]] == [(3, "tokens")]


@pytest.mark.worker
def test_a_real_worker_recovers_a_job_whose_worker_died(celery_worker_process, corpus):
    from datetime import timedelta

    from planner.jobs.services import stale_before

    # As left by a worker killed mid-job: running, started before the hard limit could have passed.
    job = stats_job()
    Job.objects.filter(pk=job.pk).update(
        status="running", worker="dead@host:1", attempts=1, started_at=stale_before() - timedelta(seconds=5)
    )
    run_job.apply_async(args=[job.pk])  # the redelivered message
    job = wait_for_job(job.pk)
    assert job.status == "succeeded", (job.error, celery_worker_process.log())
    assert job.attempts == 2 and job.worker.startswith(celery_worker_process.name)
    assert Family.objects.get(name="tiny").stats["n_runs"] == 3

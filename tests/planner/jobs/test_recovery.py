"""Periodic recovery (planner.jobs.recovery): jobs whose message was lost are sent again, once per period.

In process, sends are recorded instead of made; then a real Redis loses its
queue and a real worker finishes what recovery sends again, and a real Celery
beat process drives recovery on its own.
"""
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from planner.jobs import recovery
from planner.jobs.services import stale_before
from planner.models import Job, SweepRow
from planner.jobs.recovery import jobs_recover
from tests.conftest import wait_for_job
from tests.planner.plans.test_plans import error_model  # noqa: F401 (fixture)
from tests.planner.errormodels.test_sweeps import NoBroker

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """What recovery sends: run_job ids in .jobs, sweep family tasks and finalisers as NoBroker records them."""
    no_broker = NoBroker(monkeypatch)
    no_broker.jobs = []
    monkeypatch.setattr(recovery, "job_send", lambda job_id, **options: no_broker.jobs.append(job_id))
    return no_broker


def job(*, age=timedelta(hours=1), **fields):
    """A job whose row nobody touched for `age`."""
    fields.setdefault("kind", Job.Kind.CORPUS_STATS)
    row = Job.objects.create(input={}, **fields)
    Job.objects.filter(pk=row.pk).update(updated_at=timezone.now() - age)
    return Job.objects.get(pk=row.pk)


def abandoned(**fields):
    """Running, started before its worker's hard time limit could have passed."""
    long_ago = stale_before() - timedelta(minutes=1)
    return job(status=Job.Status.RUNNING, started_at=long_ago, attempts=1, worker="dead@host:1",
               age=timezone.now() - long_ago, **fields)


def test_a_queued_job_untouched_for_the_period_is_sent_again_once(sent):
    lost = job()
    recent = job(age=timedelta(seconds=10))
    assert jobs_recover()["queued"] == [lost.pk]
    assert sent.jobs == [lost.pk]
    assert jobs_recover()["queued"] == []  # its updated_at moved: not again before another period
    assert sent.jobs == [lost.pk]
    assert Job.objects.get(pk=recent.pk).status == "queued"


def test_an_abandoned_running_job_is_sent_again_and_a_live_one_is_not(sent):
    dead = abandoned()
    live = job(status=Job.Status.RUNNING, started_at=timezone.now() - timedelta(seconds=5))
    finished = job(status=Job.Status.SUCCEEDED, started_at=stale_before() - timedelta(hours=1))
    report = jobs_recover()
    assert report["running"] == [dead.pk] and sent.jobs == [dead.pk]
    assert {live.pk, finished.pk}.isdisjoint(sent.jobs)


def sweep(stage, families=("a", "b", "c"), written=(), **result):
    row = abandoned(kind=Job.Kind.SWEEP, result={"stage": stage, "families": list(families), **result})
    SweepRow.objects.bulk_create(
        SweepRow(job=row, family=name, design_key="k=1", n_models=1, largest_index=0, fraction=1.0, policy="default",
                 scale_up=2.0, train_compute_share=0.1, tokens_per_model=1e9, max_epochs=1.0, has_curves=True,
                 sizes=[1e8], law="chinchilla", n_points=5, are=0.01, params={}, success=True, seconds=0.1)
        for name in written
    )
    return row


def test_a_stalled_sweep_gets_only_its_missing_families_sent_again(sent):
    stalled = sweep("sweeping", written=["b"])
    assert jobs_recover()["sweeps"] == {stalled.pk: ["a", "c"]}
    assert sent.family_tasks == [(stalled.pk, "a"), (stalled.pk, "c")] and sent.jobs == []


def test_a_sweep_with_every_family_written_but_no_finaliser_gets_the_finaliser(sent):
    stalled = sweep("sweeping", written=["a", "b", "c"])
    assert jobs_recover()["sweeps"] == {stalled.pk: ["finaliser"]}
    assert sent.finalisers == [(stalled.pk,)] and sent.family_tasks == []


def test_a_dead_finaliser_is_sent_again_but_a_sweep_still_moving_is_left_alone(sent):
    dead = sweep("finalising", written=["a", "b", "c"], finalising_since=(stale_before() - timedelta(1)).isoformat())
    moving = sweep("sweeping", written=["a"])
    Job.objects.filter(pk=moving.pk).update(updated_at=timezone.now())  # a family was written just now
    fresh = sweep("finalising", written=["a", "b", "c"], finalising_since=timezone.now().isoformat())
    report = jobs_recover()
    assert report["sweeps"] == {dead.pk: ["finaliser"]}
    assert sent.finalisers == [(dead.pk,)] and sent.family_tasks == [] and sent.jobs == []
    assert fresh.pk not in report["sweeps"]


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_the_job_stays_due_for_the_next_recovery(unreachable_broker):
    lost = job()
    report = jobs_recover()
    assert report["send_failed"] == [lost.pk] and report["queued"] == []
    assert Job.objects.get(pk=lost.pk).updated_at == lost.updated_at  # its turn given back


def test_the_command_says_what_it_sent(sent, capsys):
    lost = job()
    call_command("recover_jobs")
    assert capsys.readouterr().out.strip() == (
        f"sent again: 1 queued job(s) [{lost.pk}], 0 abandoned running job(s) [], 0 stalled sweep(s)")


# --- real Redis, real workers, real beat -------------------------------------------------


@pytest.mark.worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_jobs_whose_messages_redis_lost_are_finished_by_a_worker_once_recovery_sends_them_again(
        throwaway_redis, celery_workers, client_for, owner, staff, error_model, settings):
    from tests.planner.jobs.test_jobs import post_one_of_each_kind
    from tests.planner.errormodels.test_sweeps import SMALL_FAMILIES, import_small_families

    import_small_families()  # something to sweep
    responses = post_one_of_each_kind(client_for, owner, staff, sweep_families=list(SMALL_FAMILIES))
    ids = [r.json()["id"] for r in responses.values()]
    # Redis dies with the queue in memory and comes back empty: the jobs are committed, their messages gone.
    throwaway_redis.kill()
    throwaway_redis.start()
    assert throwaway_redis.queue_length() == 0
    worker = celery_workers("worker1", CELERY_BROKER_URL=throwaway_redis.url, REDIS_URL=throwaway_redis.url)
    assert set(Job.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"queued"}

    settings.SCALEPLAN_RESEND_AFTER = 0  # instead of waiting the production five minutes
    assert sorted(jobs_recover()["queued"]) == sorted(ids)
    for pk in ids:
        done = wait_for_job(pk, timeout=90)
        assert done.status == "succeeded", (done.kind, done.error, worker.log())
        assert done.attempts == 1  # run once


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_celery_beat_drives_recovery_of_a_job_that_was_never_sent(throwaway_redis, celery_workers, corpus, tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import BASE_DIR, TEST_QUEUE

    # As left by a web process killed between its commit and the send.
    never_sent = Job.objects.create(kind=Job.Kind.CORPUS_STATS, input={"families": None})
    env = {"CELERY_BROKER_URL": throwaway_redis.url, "REDIS_URL": throwaway_redis.url, "SCALEPLAN_RESEND_AFTER": "1",
           # beat sends to the default queue: this session's, which its worker reads
           "CELERY_TASK_DEFAULT_QUEUE": TEST_QUEUE}
    worker = celery_workers("worker1", **env)
    log = open(tmp_path / "beat.log", "wb")
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "planner", "beat", "--loglevel", "INFO"],
        cwd=BASE_DIR, env={**os.environ, **worker.env, **env}, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        done = wait_for_job(never_sent.pk, timeout=60)
    finally:
        beat.terminate()
        beat.wait(timeout=15)
        log.close()
    beat_log = (tmp_path / "beat.log").read_text()
    assert done.status == "succeeded", (done.error, worker.log(), beat_log)
    assert "planner.recover_jobs" in beat_log and "celerybeat-schedule" not in os.listdir(BASE_DIR)

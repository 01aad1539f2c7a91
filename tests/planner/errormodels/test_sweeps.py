"""The error-model rebuild (planner.errormodels.services, planner.errormodels.tasks): a sweep job split per family.

In process: the stages called directly (runner, family task, finaliser) on three
small real corpus families. Then real workers over Redis run a whole sweep job.
"""
import functools
import json

import numpy as np

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction

from planner.corpus.selectors import primary_frame
from planner.errormodels import services as services_sweeps
from planner.errormodels.services import (
    error_model_activate,
    error_model_active,
    error_model_store,
    sweep_family_run,
    sweep_finalise,
    sweep_run,
    sweep_table,
)
from planner.jobs.services import JobHandedOff, job_cancel
from planner.models import ErrorModelArtifact, Family, Job, SweepRow
from tests.conftest import wait_for_job

# Three real families whose sweeps take about a second each.
SMALL_FAMILIES = ("gzip-pcfg-0.12", "gzip-pcfg-0.23", "t5-pile")

pytestmark = pytest.mark.django_db(transaction=True)


@functools.lru_cache(maxsize=1)
def corpus_slice():
    """The small families' rows of the reference corpus (read once per test process) and their families table."""
    from fits.canonical import read_canonical, read_families

    shared = settings.SCALEPLAN_SHARED_DIR / "corpus"
    rows, _ = read_canonical(shared / "colpret.csv.gz")
    rows = rows[rows["family"].isin(SMALL_FAMILIES)].reset_index(drop=True)
    families = read_families(shared / "families.csv")
    return rows, families[families["family"].isin(SMALL_FAMILIES)].reset_index(drop=True)


def import_small_families():
    from planner.corpus.importing import import_canonical

    rows, families = corpus_slice()
    import_canonical(rows.copy(), families=families.copy())


@pytest.fixture
def small_corpus_db(db):
    import_small_families()


def sweep_job(**input):
    return Job.objects.create(kind=Job.Kind.SWEEP, status=Job.Status.RUNNING, input={"families": None, **input})


class NoBroker:
    """Stands in for task sending in process: records what would be sent."""

    def __init__(self, monkeypatch):
        self.family_tasks, self.finalisers = [], []
        from planner.jobs import dispatch

        monkeypatch.setattr(dispatch, "sweep_family_send",
                            lambda job_id, family, **kw: self.family_tasks.append((job_id, family)))
        monkeypatch.setattr(dispatch, "sweep_finalise_send", lambda job_id, **kw: self.finalisers.append((job_id,)))


@pytest.fixture
def no_broker(monkeypatch):
    return NoBroker(monkeypatch)


def progress_sink(*args):
    pass


def test_the_primary_frame_leaves_out_excluded_families_and_other_metrics(small_corpus_db):
    Family.objects.filter(name="t5-pile").update(excluded_from_fitting=True)
    frame = primary_frame()
    assert set(frame["family"]) == {"gzip-pcfg-0.12", "gzip-pcfg-0.23"}
    metrics = dict(Family.objects.values_list("name", "primary_metric"))
    rows, _ = corpus_slice()
    expected = rows[(rows["family"] == "gzip-pcfg-0.12") & (rows["metric"] == metrics["gzip-pcfg-0.12"])]
    assert (frame["family"] == "gzip-pcfg-0.12").sum() == len(expected)
    assert list(frame.columns) == ["family", "model", "params", "tokens", "value", "seed", "epochs"]


def test_the_runner_sends_one_task_per_family_and_hands_the_job_off(small_corpus_db, no_broker):
    job = sweep_job()
    with pytest.raises(JobHandedOff):
        sweep_run(job=job, progress=progress_sink)
    job.refresh_from_db()
    assert job.status == "running"
    assert job.result["stage"] == "sweeping" and sorted(job.result["families"]) == sorted(SMALL_FAMILIES)
    assert sorted(f for _, f in no_broker.family_tasks) == sorted(SMALL_FAMILIES)
    assert no_broker.finalisers == []


def test_the_runner_rejects_families_it_cannot_sweep(small_corpus_db, no_broker):
    from planner.jobs.services import JobFailure

    job = sweep_job(families=["t5-pile", "nope"])
    with pytest.raises(JobFailure, match="nope") as err:
        sweep_run(job=job, progress=progress_sink)
    assert err.value.details == {"families": ["nope"]}
    assert no_broker.family_tasks == []


def test_a_family_task_run_twice_writes_its_rows_once(small_corpus_db, no_broker):
    job = sweep_job()
    with pytest.raises(JobHandedOff):
        sweep_run(job=job, progress=progress_sink)
    assert sweep_family_run(job_id=job.pk, family="gzip-pcfg-0.23") is True
    n = SweepRow.objects.filter(job=job).count()
    assert n > 10
    assert sweep_family_run(job_id=job.pk, family="gzip-pcfg-0.23") is False
    assert SweepRow.objects.filter(job=job).count() == n
    job.refresh_from_db()
    assert job.progress == pytest.approx(0.9 / 3)
    assert job.progress_message.startswith("1 of 3 families swept")
    assert no_broker.finalisers == []


def test_a_family_task_stores_the_evidence_and_the_source_the_error_model_learns_from(small_corpus_db, no_broker):
    job = sweep_job()
    with pytest.raises(JobHandedOff):
        sweep_run(job=job, progress=progress_sink)
    sweep_family_run(job_id=job.pk, family="gzip-pcfg-0.23")
    rows = SweepRow.objects.filter(job=job)
    assert {r.source for r in rows} == {Family.objects.get(name="gzip-pcfg-0.23").source} != {""}
    assert {r.method for r in rows if r.are is not None} <= {"curves", "final", "all-points", "curves+cap",
                                                              "final+cap", "all-points+cap"}
    # Designs of three or more sizes rolled out their largest size: their rollout error is stored.
    assert all(r.rollout_are is not None for r in rows if r.n_models >= 3 and r.are is not None)
    assert all(r.rollout_are is None for r in rows if r.n_models < 3)
    table = sweep_table(job_id=job.pk)
    assert {"method", "rollout_are", "source"} <= set(table.columns)


def test_the_load_command_stores_a_saved_error_model_and_refuses_other_files(db, tmp_path, capsys):
    from tests.planner.plans.test_plans import small_error_model

    good = tmp_path / "model.json"
    good.write_text(json.dumps(small_error_model()))
    call_command("load_error_model", str(good))
    assert "error model v1 stored and active" in capsys.readouterr().out
    assert error_model_active().version == 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 1, "features": []}))
    with pytest.raises(CommandError, match="not an error model this library reads"):
        call_command("load_error_model", str(bad))
    with pytest.raises(CommandError, match="cannot read"):
        call_command("load_error_model", str(tmp_path / "missing.json"))
    assert ErrorModelArtifact.objects.count() == 1


def test_the_database_refuses_a_family_design_written_twice(small_corpus_db, no_broker):
    job = sweep_job()
    with pytest.raises(JobHandedOff):
        sweep_run(job=job, progress=progress_sink)
    sweep_family_run(job_id=job.pk, family="gzip-pcfg-0.12")
    row = SweepRow.objects.filter(job=job).first()
    row.pk = None
    with pytest.raises(IntegrityError), transaction.atomic():
        row.save()


def test_failed_fits_are_stored_with_a_null_are(small_corpus_db, no_broker, monkeypatch):
    job = sweep_job()
    with pytest.raises(JobHandedOff):
        sweep_run(job=job, progress=progress_sink)
    sweep_family_run(job_id=job.pk, family="t5-pile")
    failed = SweepRow.objects.filter(job=job, are__isnull=True)
    assert all(r.error and not r.success for r in failed)
    ok = SweepRow.objects.filter(job=job, are__isnull=False).first()
    assert ok.design_key == f"k={ok.n_models},l={ok.largest_index},f={ok.fraction:g},p={ok.policy}"


def test_a_cancelled_sweep_writes_nothing_more(small_corpus_db, no_broker):
    job = sweep_job()
    with pytest.raises(JobHandedOff):
        sweep_run(job=job, progress=progress_sink)
    job_cancel(job=job)
    assert sweep_family_run(job_id=job.pk, family="gzip-pcfg-0.12") is False
    assert not SweepRow.objects.filter(job=job).exists()


def run_all_families(job, no_broker):
    with pytest.raises(JobHandedOff):
        sweep_run(job=job, progress=progress_sink)
    for _, family in list(no_broker.family_tasks):
        sweep_family_run(job_id=job.pk, family=family)


@pytest.mark.slow
def test_the_last_family_sends_the_finaliser_which_runs_once(small_corpus_db, no_broker):
    job = sweep_job()
    run_all_families(job, no_broker)
    assert no_broker.finalisers == [(job.pk,)]
    assert sweep_finalise(job_id=job.pk) is True
    assert sweep_finalise(job_id=job.pk) is False
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert ErrorModelArtifact.objects.count() == 1
    artifact = error_model_active()
    assert job.result["artifact_version"] == artifact.version == 1
    assert job.result["laws"] == SweepRow.objects.filter(job=job).count()
    assert set(job.result["validation"]) >= {"coverage", "median_abs_log_ratio", "cases", "families"}
    assert job.result["validation"]["families"] == 3
    assert artifact.sweep_job_id == job.pk and artifact.model["trained_on"]["families"] == 3
    assert job.progress == 1.0


def test_the_finaliser_waits_for_every_family(small_corpus_db, no_broker):
    job = sweep_job()
    with pytest.raises(JobHandedOff):
        sweep_run(job=job, progress=progress_sink)
    sweep_family_run(job_id=job.pk, family="gzip-pcfg-0.12")
    assert sweep_finalise(job_id=job.pk) is False
    job.refresh_from_db()
    assert job.status == "running" and job.result["stage"] == "sweeping"


@pytest.mark.slow
def test_a_finaliser_that_died_is_taken_over_once_stale(small_corpus_db, no_broker, monkeypatch):
    job = sweep_job()
    run_all_families(job, no_broker)
    claimed = services_sweeps._claim_finalise(job.pk)
    assert claimed is not None and claimed.result["stage"] == "finalising"
    assert sweep_finalise(job_id=job.pk) is False  # the first finaliser may still be alive
    monkeypatch.setattr(settings, "CELERY_TASK_TIME_LIMIT", -3600)  # now it cannot be
    assert sweep_finalise(job_id=job.pk) is True
    assert Job.objects.get(pk=job.pk).status == "succeeded"


def model_dict(version_tag):
    return {"version": 1, "validation": {"coverage": 0.8, "tag": version_tag}}


def test_activation_leaves_exactly_one_active_artifact(db):
    first = error_model_store(model=model_dict("a"))
    second = error_model_store(model=model_dict("b"))
    assert (first.version, second.version) == (1, 2)
    assert list(ErrorModelArtifact.objects.filter(is_active=True)) == [second]
    error_model_activate(artifact=first)
    assert list(ErrorModelArtifact.objects.filter(is_active=True).values_list("version", flat=True)) == [1]
    third = error_model_store(model=model_dict("c"), activate=False)
    assert not third.is_active and error_model_active().version == 1


def test_the_database_refuses_two_active_artifacts(db):
    error_model_store(model=model_dict("a"))
    with pytest.raises(IntegrityError), transaction.atomic():
        ErrorModelArtifact.objects.create(version=9, model={}, is_active=True)


@pytest.mark.slow
def test_the_command_rebuilds_the_error_model_synchronously(small_corpus_db, capsys):
    call_command("rebuild_error_model", "--sync", "--family", "gzip-pcfg-0.12", "--family", "gzip-pcfg-0.23",
                 "--family", "t5-pile")
    out = capsys.readouterr().out
    job = Job.objects.get(kind=Job.Kind.SWEEP)
    assert job.status == "succeeded", job.error
    assert "error model v1" in out and "coverage" in out
    assert error_model_active().version == 1


# --- real workers --------------------------------------------------------------------


@pytest.mark.worker
@pytest.mark.slow
def test_a_sweep_job_on_two_workers_succeeds_with_an_active_artifact(celery_workers):
    from planner.errormodels.services import sweep_enqueue

    import_small_families()
    celery_workers("worker1")
    celery_workers("worker2")
    job = sweep_enqueue(families=list(SMALL_FAMILIES))
    job = wait_for_job(job.pk, timeout=90)
    assert job.status == "succeeded", job.error
    assert job.result["artifact_version"] == error_model_active().version
    assert SweepRow.objects.filter(job=job).values("family").distinct().count() == 3
    assert job.progress == 1.0


@pytest.mark.worker
@pytest.mark.slow
def test_a_sweep_resumes_after_its_worker_process_dies_without_duplicating_rows(celery_workers):
    import os
    import signal
    import subprocess
    import time

    from planner.errormodels.services import sweep_enqueue

    import_small_families()
    worker = celery_workers("worker1")
    job = sweep_enqueue(families=list(SMALL_FAMILIES))
    # Kill the pool process while it sweeps the first family (the runner has dispatched the family tasks).
    wait_for_job(job.pk, statuses=("running",))
    deadline = time.monotonic() + 20
    while (Job.objects.get(pk=job.pk).result or {}).get("stage") != "sweeping":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    children = subprocess.run(["pgrep", "-P", str(worker.proc.pid)], capture_output=True, text=True).stdout.split()
    assert children, worker.log()
    for pid in children:
        os.kill(int(pid), signal.SIGKILL)
    job = wait_for_job(job.pk, timeout=90)
    assert job.status == "succeeded", job.error + worker.log()
    assert "WorkerLostError" in worker.log()  # the family task in flight died with its process
    rows = SweepRow.objects.filter(job=job)
    assert rows.values("family").distinct().count() == 3
    assert rows.count() == len(set(rows.values_list("family", "design_key")))
    assert job.result["laws"] == rows.count()


def killpg(worker):
    """SIGKILL the whole worker: its main process and its pool, with no chance to requeue anything."""
    import os
    import signal

    os.killpg(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait(timeout=10)


# Short limits for these workers, so that "long enough ago to be dead" is seconds, not the
# production hour: Redis hands a dead worker's message on after limit + 2 * margin = 24 s.
SHORT_LIMITS = {"CELERY_TASK_SOFT_TIME_LIMIT": "15", "CELERY_TASK_TIME_LIMIT": "20", "SCALEPLAN_STALE_MARGIN": "2"}


@pytest.mark.worker
@pytest.mark.slow
def test_a_sweep_whose_whole_worker_is_killed_completes_on_a_new_worker_with_every_row_once(celery_workers):
    import time

    from fits.sweep import sweep_family
    from planner.errormodels.services import design_key, sweep_enqueue

    import_small_families()
    # What an undisturbed sweep writes: every design of every family, with its ARE.
    expected = {}
    for family in SMALL_FAMILIES:
        for row in sweep_family(primary_frame(families=[family])):
            expected[(family, design_key(row["design"]))] = row["are"]

    first = celery_workers("worker1", **SHORT_LIMITS)
    job = sweep_enqueue(families=list(SMALL_FAMILIES))
    # Kill it while a family task is in flight: the runner has dispatched, no family is written yet.
    deadline = time.monotonic() + 30
    while "planner.sweep_family[" not in first.log():
        assert time.monotonic() < deadline, first.log()
        time.sleep(0.05)
    time.sleep(0.3)
    killpg(first)
    job.refresh_from_db()
    assert job.status == "running" and job.result["stage"] == "sweeping"
    assert services_sweeps.families_done(job_id=job.pk) < len(SMALL_FAMILIES)
    killed_at = time.monotonic()

    second = celery_workers("worker2", **SHORT_LIMITS)
    job = wait_for_job(job.pk, timeout=90)
    recovery = time.monotonic() - killed_at

    assert job.status == "succeeded", job.error + second.log()
    rows = list(SweepRow.objects.filter(job=job).values_list("family", "design_key", "are"))
    assert len(rows) == len({(f, k) for f, k, _ in rows})  # no duplicates
    assert {(f, k) for f, k, _ in rows} == set(expected)  # none missing, none extra
    for family, key, value in rows:
        want = expected[(family, key)]
        assert (value is None and not np.isfinite(want)) or value == pytest.approx(want, rel=1e-9), (family, key)
    assert job.result["laws"] == len(expected)
    assert error_model_active().sweep_job_id == job.pk
    # The dead worker's family came back after Redis's visibility timeout, not the production hour.
    assert recovery < 60, recovery

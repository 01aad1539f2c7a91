"""A running task's sign of life on its job row, and the fence that keeps a job from running twice at once.

While ``run_job`` works on a job, a thread of the same process writes ``heartbeat_at`` (the database's clock,
so hosts' clocks do not matter) every SCALEPLAN_HEARTBEAT_SECONDS. A running job whose heartbeat is older
than SCALEPLAN_STALLED_AFTER has lost its worker (SIGKILL, out of memory, a lost host): its page and the API
say it is stalled and when it will be retried, and the recovery (planner.jobs.recovery) sends its task
again, which takes the job over (planner.jobs.services.job_claim) - within a minute or two, not after the
task's whole time limit.

Taking over is safe because a live task cannot go that long without a heartbeat: if it cannot record one
for SCALEPLAN_STALLED_AFTER - SCALEPLAN_HEARTBEAT_SECONDS seconds (the database unreachable from it), or
finds its job taken over by another attempt, it kills its own process (the pool process; Celery's master
starts another) before anyone may take the job over. Its writes are fenced as well: progress, success and
failure apply only to the attempt that claimed the job (job_set_progress, job_succeed, job_fail with
``attempt``), so even a process frozen past the stall (SIGSTOP) and thawed later changes nothing.

On SQLite a heartbeat can wait for the single writer's lock (an import's transaction): there, lock waits
are not taken as a lost database (web and workers share one file on one host).
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models.functions import Now
from django.utils import timezone

from .models import Job

log = logging.getLogger(__name__)


def _kill_after() -> float:
    return settings.SCALEPLAN_STALLED_AFTER - settings.SCALEPLAN_HEARTBEAT_SECONDS


class Heartbeat:
    """Context manager: beat for (job_id, attempt) while the block runs. ``fence``: stop the process when lost."""

    def __init__(self, job_id: int, attempt: int, *, fence: bool = True):
        self.job_id, self.attempt, self.fence = job_id, attempt, fence
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"job{job_id}-heartbeat", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=settings.SCALEPLAN_HEARTBEAT_SECONDS + 35)

    def _beat(self) -> bool:
        """True if recorded; False if the job is no longer this attempt's to run (finished, cancelled)."""
        updated = Job.objects.filter(pk=self.job_id, status=Job.Status.RUNNING, attempts=self.attempt).update(
            heartbeat_at=Now())
        if updated:
            return True
        row = Job.objects.filter(pk=self.job_id).values_list("status", "attempts").first()
        if row is not None and row[0] == Job.Status.RUNNING and row[1] != self.attempt:
            self._lost(f"job {self.job_id} was taken over by attempt {row[1]}")
        return False

    def _lost(self, why: str):
        if not self.fence:
            log.error("heartbeat: %s (not in a worker: carrying on)", why)
            return
        log.critical("heartbeat: %s; stopping this process so that the job never runs twice at once", why)
        os.kill(os.getpid(), signal.SIGKILL)

    def _run(self):
        interval = settings.SCALEPLAN_HEARTBEAT_SECONDS
        last_ok = time.monotonic()
        next_beat = last_ok + interval  # the claim itself recorded the first one
        try:
            while not self._stop.wait(max(0.0, min(1.0, next_beat - time.monotonic()))):
                if time.monotonic() >= next_beat:
                    try:
                        if not self._beat():
                            return
                        last_ok = time.monotonic()
                    except DatabaseError as exc:
                        if connection.vendor == "sqlite" and "locked" in str(exc):
                            last_ok = time.monotonic()  # the one writer is busy (maybe this very job): alive
                        log.warning("heartbeat of job %s not recorded: %s", self.job_id, exc)
                        connection.close()  # a broken connection is opened afresh for the next beat
                    next_beat = time.monotonic() + interval
                if time.monotonic() - last_ok > _kill_after():
                    self._lost(f"no heartbeat recorded for job {self.job_id} for {time.monotonic() - last_ok:.0f} s")
                    return
        finally:
            connection.close()  # this thread's own connection


def job_stall(job: Job, now=None) -> dict | None:
    """For a running job whose worker is gone: since when, and when the recovery will retry it. None otherwise."""
    if job.status != Job.Status.RUNNING or job.heartbeat_at is None:
        return None
    now = now or timezone.now()
    stalled_after = timedelta(seconds=settings.SCALEPLAN_STALLED_AFTER)
    if job.heartbeat_at >= now - stalled_after:
        return None
    # The recovery resends once both the heartbeat and the last send are that old; beat runs it every period.
    due = max(job.heartbeat_at, job.updated_at or job.heartbeat_at) + stalled_after
    retry_at = max(due, now) + timedelta(seconds=settings.SCALEPLAN_RESEND_AFTER / 5)
    since = job.heartbeat_at
    return {
        "since": since, "retry_at": retry_at,
        "message": (f"Stalled: no sign of its worker since {since:%Y-%m-%d %H:%M:%S} UTC; it will be retried "
                    f"at {retry_at:%H:%M:%S} UTC (the recovery takes it over on another worker)."),
    }


def job_queue(job: Job) -> dict | None:
    """For a queued job: how many queued jobs were created before it and how many are running, and a message
    saying so. Two indexed counts; approximate (workers take tasks in the order sent, but a sweep's family
    tasks are not jobs). None unless the job is queued."""
    if job.status != Job.Status.QUEUED:
        return None
    ahead = Job.objects.filter(status=Job.Status.QUEUED, created_at__lt=job.created_at).count()
    running = Job.objects.filter(status=Job.Status.RUNNING).count()
    waits = f"{ahead} job{'s' if ahead != 1 else ''} ahead of it" if ahead else "next in line"
    busy = f"{running} running" if running else "none running"
    return {"ahead": ahead, "running": running,
            "message": f"Queued: {waits} ({busy}); it starts when a worker is free."}

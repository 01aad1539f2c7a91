"""Job services: every change of a Job row's state goes through here.

Transitions are guarded by conditional UPDATEs, so two processes racing on the
same job cannot both win:

    queued  --claim-->   running  --succeed--> succeeded
       |                    |     --fail-->    failed
       +--cancel--+---------+--cancel-->       cancelled

The broker unreachable when a job is created: the row is deleted again and
JobEnqueueError says so (the API and pages answer 503). Nothing is created, so
the user's list holds no failed job for a request that failed, and retrying is
safe. A job whose message is lost *after* it was sent (Redis restarted without
its data, a web process killed between commit and send) is re-sent by the
periodic recovery (planner.jobs.recovery, run by Celery beat).

Recovery of a job whose worker died: the running task records a heartbeat on the
row (planner.jobs.heartbeat); once there has been none for SCALEPLAN_STALLED_AFTER
seconds the job is *stale* and planner.jobs.recovery sends its task again, which
re-claims it. A live task cannot go that long without a heartbeat (it stops its own
process first), and its writes are fenced by its attempt number, so re-claiming never
runs a job twice at once. Jobs without a heartbeat (a sweep handed off to its family
tasks) are stale once started longer ago than the hard time limit plus a margin: by
then the hard limit has killed the first execution. Celery also redelivers the
unacknowledged task (acks_late + reject_on_worker_lost when a pool process dies;
Redis's visibility timeout when the whole worker does); a redelivered task that finds
the job running and not stale retries itself later (see planner.jobs.tasks). A job
that has lost its worker MAX_ATTEMPTS times is marked failed instead of being claimed
again, so a job that kills its worker (e.g. out of memory) cannot loop forever.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerOperationalError

from . import dispatch
from .models import Job

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


class JobError(Exception):
    """A job operation that cannot be done (for the API: 409)."""


class JobFailure(Exception):
    """Work that failed for a reason the user can act on; details go on the job's result."""

    def __init__(self, message, *, details=None):
        super().__init__(message)
        self.details = details


# What a user asked for, by job kind, for messages.
KIND_NOUNS = {
    Job.Kind.CORPUS_STATS: "statistics refresh",
    Job.Kind.CORPUS_IMPORT: "import",
    Job.Kind.PREDICTION: "prediction",
    Job.Kind.SWEEP: "error-model rebuild",
    Job.Kind.PLAN: "plan",
    Job.Kind.ADVICE: "advice",
}


class JobEnqueueError(JobError):
    """The task broker could not be reached, so the job was not created (its row is gone)."""

    def __init__(self, kind, cause):
        self.kind = kind
        self.cause = cause  # for logs: it names internal hosts, so it is not shown to users
        noun = KIND_NOUNS.get(kind, "job")
        super().__init__(f"The task queue is unreachable, so the {noun} was not started and nothing was saved; "
                         "try again in a minute.")


class JobCancelled(Exception):
    """Raised into running work when its job has been cancelled."""


class JobHandedOff(Exception):
    """The runner passed the job on to other tasks: run_job must leave it running."""


def stale_before():
    """Running jobs started before this instant have certainly lost their worker."""
    return timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + settings.SCALEPLAN_STALE_MARGIN)


def stalled_for() -> timedelta:
    return timedelta(seconds=settings.SCALEPLAN_STALLED_AFTER)


def stale_running() -> Q:
    """Running jobs that have certainly lost their worker: no heartbeat for SCALEPLAN_STALLED_AFTER (by the
    database's clock, which wrote it), or, without heartbeats, started before the hard limit plus the margin."""
    return Q(status=Job.Status.RUNNING) & (
        Q(heartbeat_at__lt=Now() - stalled_for())
        | Q(heartbeat_at__isnull=True, started_at__lt=stale_before())
    )


def seconds_until_stale(job: Job) -> float:
    if job.heartbeat_at is not None:
        return max(0.0, (job.heartbeat_at + stalled_for() - timezone.now()).total_seconds())
    if job.started_at is None:
        return 0.0
    return max(0.0, (job.started_at - stale_before()).total_seconds())


def _enqueue(job_id: int) -> None:
    try:
        dispatch.job_send(job_id)
    except (BrokerOperationalError, OSError) as exc:
        # Still queued: no task was sent, so no worker can have it. (If a copy did
        # reach Redis after all, its worker finds no row and does nothing.)
        kind = Job.objects.filter(pk=job_id).values_list("kind", flat=True).first()
        Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).delete()
        log.error("job %s (%s) not created: the task broker is unreachable: %s", job_id, kind, exc)
        raise JobEnqueueError(kind, exc) from exc


@transaction.atomic
def job_create(*, kind: str, input: dict, created_by=None, scope: str = "") -> Job:
    """Save a queued job and enqueue its task once the row is committed.

    The task is sent only after commit so a worker never looks for a row that
    is not visible yet. If the broker is unreachable the row is deleted again and
    JobEnqueueError propagates out of the outermost atomic block: nothing was
    created (see the module docstring).

    ``scope`` coalesces: while a job of this kind and scope is queued or running,
    no second one is made and that job is returned instead, with ``coalesced = True``
    (a unique constraint decides, so concurrent requests on any database agree).
    """
    if kind not in Job.Kind.values:
        raise JobError(f"unknown job kind {kind!r}; expected one of {', '.join(Job.Kind.values)}")
    user = created_by if created_by and created_by.is_authenticated else None
    if scope:
        in_flight = Job.objects.filter(kind=kind, scope=scope, status__in=[Job.Status.QUEUED, Job.Status.RUNNING])
        try:
            with transaction.atomic():
                job = Job.objects.create(kind=kind, input=input, created_by=user, scope=scope)
        except IntegrityError:
            job = in_flight.first()
            if job is None:  # finished in between: try once more
                return job_create(kind=kind, input=input, created_by=created_by, scope=scope)
            job.coalesced = True
            return job
    else:
        job = Job.objects.create(kind=kind, input=input, created_by=user)
    job.coalesced = False
    transaction.on_commit(lambda: _enqueue(job.pk))
    return job


@transaction.atomic
def job_claim(*, job_id: int, worker: str) -> Job | None:
    """Take a job for `worker`. None means someone else has it, or it is finished.

    Queued jobs are claimed; running jobs only when stale (see module docstring).
    """
    now = timezone.now()
    claimable = Q(status=Job.Status.QUEUED) | (stale_running() & Q(attempts__lt=MAX_ATTEMPTS))
    claimed = Job.objects.filter(claimable, pk=job_id).update(
        status=Job.Status.RUNNING,
        worker=worker[:200],
        started_at=now,
        heartbeat_at=Now(),
        attempts=F("attempts") + 1,
        updated_at=now,
    )
    if claimed:
        return Job.objects.get(pk=job_id)
    # A stale job that already used all its attempts keeps killing its worker.
    lost = Job.objects.filter(stale_running(), pk=job_id, attempts__gte=MAX_ATTEMPTS)
    lost.update(
        status=Job.Status.FAILED,
        finished_at=now,
        updated_at=now,
        error=f"The worker running this job was lost {MAX_ATTEMPTS} times; giving up.",
    )
    return None


def _attempt(attempt) -> Q:
    # The fence: writes of an attempt that lost its job to another one change nothing.
    return Q() if attempt is None else Q(attempts=attempt)


def job_set_progress(*, job_id: int, fraction: float, message: str = "", attempt: int | None = None) -> None:
    """Record progress of a running job; raise JobCancelled if it was cancelled (or, with ``attempt``, taken
    over by another attempt).

    Progress never goes backwards (a late, smaller report is ignored) and is
    clamped to 0..1. Only the progress columns are written.
    """
    fraction = min(1.0, max(0.0, float(fraction)))
    updated = Job.objects.filter(_attempt(attempt), pk=job_id, status=Job.Status.RUNNING,
                                 progress__lte=fraction).update(
        progress=fraction, progress_message=message[:500], updated_at=timezone.now()
    )
    if not updated:
        status, attempts = Job.objects.filter(pk=job_id).values_list("status", "attempts").first() or (None, None)
        if status != Job.Status.RUNNING:
            raise JobCancelled(f"job {job_id} is {status or 'gone'}; stopping")
        if attempt is not None and attempts != attempt:
            raise JobCancelled(f"job {job_id} was taken over by attempt {attempts}; stopping")


@transaction.atomic
def job_succeed(*, job_id: int, result, attempt: int | None = None) -> bool:
    """running -> succeeded with the result. False if the job was no longer running (e.g. cancelled), or with
    ``attempt``, no longer this attempt's."""
    now = timezone.now()
    return bool(
        Job.objects.filter(_attempt(attempt), pk=job_id, status=Job.Status.RUNNING).update(
            status=Job.Status.SUCCEEDED, result=result, progress=1.0, finished_at=now, updated_at=now
        )
    )


@transaction.atomic
def job_fail(*, job_id: int, error: str, result=None, attempt: int | None = None) -> Job | None:
    """queued/running -> failed with the error text (and optional details in result).

    None if the job had already finished (or, with ``attempt``, is no longer this attempt's).
    """
    now = timezone.now()
    failed = Job.objects.filter(_attempt(attempt), pk=job_id,
                                status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).update(
        status=Job.Status.FAILED, error=error, result=result, finished_at=now, updated_at=now
    )
    return Job.objects.get(pk=job_id) if failed else None


@transaction.atomic
def job_cancel(*, job: Job) -> Job:
    """queued/running -> cancelled. A running task notices at its next progress report."""
    now = timezone.now()
    cancelled = Job.objects.filter(pk=job.pk, status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).update(
        status=Job.Status.CANCELLED, finished_at=now, updated_at=now
    )
    job.refresh_from_db()
    if not cancelled:
        raise JobError(f"job {job.pk} is already {job.status}; only queued or running jobs can be cancelled")
    return job


def _close_thread_connection():
    connection.close()  # resolved in the calling thread: closes that thread's own connection


class ProgressReporter:
    """progress(fraction, message) callable for work that runs inside a transaction.

    An import runs in one long transaction. Progress written on the same
    connection would stay invisible until commit, and would hold the job row's
    lock so that a cancel request blocked until the import ended. So on
    PostgreSQL the reports are written from a helper thread, which has its own
    connection in autocommit. SQLite allows one writer at a time, so there
    inside a transaction the reporter only checks for cancellation.
    """

    def __init__(self, job_id: int, attempt: int | None = None):
        self.job_id, self.attempt = job_id, attempt
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"job{job_id}-progress")

    def _write(self, fraction, message, write):
        if write:
            job_set_progress(job_id=self.job_id, fraction=fraction, message=message, attempt=self.attempt)
        else:
            status = Job.objects.filter(pk=self.job_id).values_list("status", flat=True).first()
            if status != Job.Status.RUNNING:
                raise JobCancelled(f"job {self.job_id} is {status or 'gone'}; stopping")

    def __call__(self, fraction: float, message: str = "") -> None:
        if not connection.in_atomic_block:
            job_set_progress(job_id=self.job_id, fraction=fraction, message=message, attempt=self.attempt)
            return
        write = connection.vendor != "sqlite"
        self._pool.submit(self._write, fraction, message, write).result()

    def close(self):
        # The helper thread's connection is not closed by Django's request/task hooks.
        self._pool.submit(_close_thread_connection).result()
        self._pool.shutdown(wait=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

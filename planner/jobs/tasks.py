"""Celery tasks: thin. Take a job id, claim the row, call one function, store the outcome.

Safe to run twice (acks_late redelivery, duplicate messages): only the process
whose conditional claim succeeds does the work; see planner.jobs.services.
Registered by name (planner.jobs.dispatch sends them); a kind's runner is the one
function its domain's services give for it.
"""
import contextlib
import logging
import os

from celery import shared_task
from celery.exceptions import MaxRetriesExceededError, SoftTimeLimitExceeded
from django.conf import settings

from ..corpus.services import corpus_import_run
from ..errormodels.services import sweep_run
from ..laws.services import stats_and_laws_run
from ..plans.services import plan_run
from ..runs.advice import advice_run
from ..runs.following import prediction_followed_run
from . import dispatch
from .models import Job
from .heartbeat import Heartbeat
from .recovery import jobs_recover
from .services import (
    MAX_ATTEMPTS,
    JobCancelled,
    JobFailure,
    JobHandedOff,
    ProgressReporter,
    job_claim,
    job_fail,
    job_succeed,
    seconds_until_stale,
)

log = logging.getLogger(__name__)

RUNNERS = {
    Job.Kind.CORPUS_STATS: stats_and_laws_run,  # the statistics, then the laws the corpus pages show
    Job.Kind.CORPUS_IMPORT: corpus_import_run,
    # planner.predictions' prediction_run, plus its history for predictions that follow training
    Job.Kind.PREDICTION: prediction_followed_run,
    Job.Kind.SWEEP: sweep_run,
    Job.Kind.PLAN: plan_run,
    Job.Kind.ADVICE: advice_run,
}


@shared_task(bind=True, acks_late=True, name=dispatch.RUN_JOB, max_retries=MAX_ATTEMPTS + 1)
def run_job(self, job_id: int):
    worker = f"{self.request.hostname or 'local'}:{os.getpid()}"
    job = job_claim(job_id=job_id, worker=worker)
    if job is None:
        current = Job.objects.filter(pk=job_id).only("status", "started_at", "heartbeat_at").first()
        if current is not None and current.status == Job.Status.RUNNING:
            # Another worker has it, or had it and died: look again once it would be stale.
            log.info("job %s is running elsewhere; checking again later", job_id)
            try:
                raise self.retry(countdown=seconds_until_stale(current) + 1)
            except MaxRetriesExceededError:
                # Alive all along (its heartbeat kept it fresh): the recovery looks after it if it dies later.
                log.info("job %s still running elsewhere; leaving it to its worker and the recovery", job_id)
                return
        log.info("job %s not claimed: %s", job_id, current.status if current else "no such job")
        return
    log.info("job %s (%s) claimed by %s", job.pk, job.kind, worker)
    attempt = job.attempts
    # In a worker a heartbeat shows the job alive and fences it (planner.jobs.heartbeat); run eagerly (debugging,
    # tests) the task is the caller's own process, which must not be stopped.
    heartbeat = Heartbeat(job.pk, attempt) if not self.request.is_eager else contextlib.nullcontext()
    with heartbeat, ProgressReporter(job.pk, attempt) as progress:
        try:
            result = RUNNERS[job.kind](job=job, progress=progress)
        except JobCancelled as exc:
            log.info("job %s stopped: %s", job.pk, exc)
            return
        except JobHandedOff as exc:
            # The job goes on in other tasks (a sweep's family tasks), which finish it; they record no heartbeat,
            # so the job falls back to the time-limit rule of planner.jobs.services.stale_running.
            log.info("job %s handed off: %s", job.pk, exc)
            handed_off = True
        except SoftTimeLimitExceeded:
            limit = self.request.timelimit[1] if self.request.timelimit else None
            job_fail(job_id=job.pk, attempt=attempt,
                     error=f"Stopped: took longer than {limit or settings.CELERY_TASK_SOFT_TIME_LIMIT} s.")
            return
        except JobFailure as exc:
            job_fail(job_id=job.pk, error=str(exc), result=exc.details, attempt=attempt)
            return
        except Exception as exc:
            log.exception("job %s failed", job.pk)
            job_fail(job_id=job.pk, error=f"{type(exc).__name__}: {exc}", attempt=attempt)
            return
        else:
            handed_off = False
    if handed_off:
        Job.objects.filter(pk=job.pk, attempts=attempt).update(heartbeat_at=None)
        return
    if job_succeed(job_id=job.pk, result=result, attempt=attempt):
        log.info("job %s succeeded", job.pk)
    else:
        log.info("job %s finished but was cancelled or taken over meanwhile; result dropped", job.pk)


@shared_task(name=dispatch.RECOVER_JOBS, acks_late=False)
def recover_jobs():
    """Beat's periodic task: send again what lost jobs wait for (planner.jobs.recovery)."""
    jobs_recover()

"""Celery tasks of the sweep job's stages (see planner.errormodels.services): thin, idempotent.

Both take ids only. A redelivered family task finds its rows written and does
nothing; the finaliser claims its stage with a conditional update, so it runs
once however many times it is sent.
"""
import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from ..jobs import dispatch
from ..jobs.services import job_fail
from .services import sweep_family_run, sweep_finalise

log = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, name=dispatch.SWEEP_FAMILY)
def sweep_family_task(self, job_id: int, family: str):
    try:
        wrote = sweep_family_run(job_id=job_id, family=family)
    except SoftTimeLimitExceeded:
        job_fail(job_id=job_id, error=f"Sweeping family {family!r} took longer than the task time limit.")
        return
    except Exception as exc:
        log.exception("sweep job %s: family %s failed", job_id, family)
        job_fail(job_id=job_id, error=f"Sweeping family {family!r} failed: {type(exc).__name__}: {exc}")
        return
    log.info("sweep job %s: family %s %s", job_id, family, "written" if wrote else "already done or job not running")


@shared_task(bind=True, acks_late=True, name=dispatch.SWEEP_FINALISE)
def sweep_finalise_task(self, job_id: int):
    try:
        ran = sweep_finalise(job_id=job_id)
    except SoftTimeLimitExceeded:
        job_fail(job_id=job_id, error="Fitting the error model took longer than the task time limit.")
        return
    except Exception as exc:
        log.exception("sweep job %s: finaliser failed", job_id)
        job_fail(job_id=job_id, error=f"Fitting the error model failed: {type(exc).__name__}: {exc}")
        return
    log.info("sweep job %s: finaliser %s", job_id, "done" if ran else "not needed (already claimed or not ready)")

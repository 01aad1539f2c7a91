"""Periodic recovery: send again the tasks of jobs whose message may be lost.

The job row is the truth; a Celery message only tells a worker to look at it.
Celery redelivers a message whose worker died (acks_late; Redis after its
visibility timeout), but some messages are lost where it cannot help:

- a job committed but never sent: its web process died between commit and send;
- sent, then lost by the broker: Redis restarted without its data, a purged queue;
- taken by a worker of the filesystem broker (scripts/serve) that was then killed:
  that transport deletes a message when it hands it out;
- any of these for a sweep's family tasks or its finaliser.

Every task is idempotent (run_job claims its row, a family's rows are written
once, the finalising stage is claimed), so sending one again that was not lost
costs one delivery that does nothing. `jobs_recover` sends again:

- queued jobs untouched for SCALEPLAN_RESEND_AFTER seconds: their run_job;
- running jobs whose worker is gone: no heartbeat (planner.jobs.heartbeat) for
  SCALEPLAN_STALLED_AFTER seconds and none sent for as long - or, for jobs without
  heartbeats, started longer ago than the hard time limit plus the margin and untouched
  for SCALEPLAN_RESEND_AFTER: run_job, which takes the job over, or fails it once its
  worker was lost MAX_ATTEMPTS times;
- handed-off sweeps whose stage stalled (planner.errormodels.services): the missing
  families' tasks, or the finaliser.

Each send first moves the row's updated_at forward with a conditional update:
two recoveries running at once send once, and one job is sent at most once per
period. Celery beat runs this every SCALEPLAN_RESEND_AFTER / 5 seconds
(settings.CELERY_BEAT_SCHEDULE; deploy/bin/beat; scripts/serve embeds beat in its
worker); `manage.py recover_jobs` does the same once, e.g. from cron.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerOperationalError

from ..errormodels.services import sweep_resend, sweep_stalled_stage
from .dispatch import job_send, same_queue
from .models import Job
from .services import stale_before, stalled_for

log = logging.getLogger(__name__)


def _take_turn(job: Job, now) -> bool:
    """Move updated_at forward if nobody has since; True if this caller is the one to send."""
    return bool(Job.objects.filter(pk=job.pk, status=job.status, updated_at=job.updated_at).update(updated_at=now))


def _give_back_turn(job: Job, now) -> None:
    # The send failed: the next recovery should not wait a whole period.
    Job.objects.filter(pk=job.pk, updated_at=now).update(updated_at=job.updated_at)


def jobs_recover() -> dict:
    """Send again what lost jobs wait for. Returns the job ids per reason (and what each sweep got)."""
    now = timezone.now()
    untouched_since = now - timedelta(seconds=settings.SCALEPLAN_RESEND_AFTER)
    stale = stale_before()
    report = {"queued": [], "running": [], "sweeps": {}, "send_failed": []}
    queued = Job.objects.filter(status=Job.Status.QUEUED, updated_at__lt=untouched_since)
    running = Job.objects.filter(
        Q(heartbeat_at__lt=now - stalled_for(), updated_at__lt=now - stalled_for())
        | Q(heartbeat_at__isnull=True, started_at__lt=stale, updated_at__lt=untouched_since),
        status=Job.Status.RUNNING,
    )
    for job in [*queued.order_by("pk"), *running.order_by("pk")]:
        stage = sweep_stalled_stage(job=job) if job.status == Job.Status.RUNNING else None
        handed_off = job.kind == Job.Kind.SWEEP and (job.result or {}).get("stage") is not None
        if handed_off and stage is None:
            continue  # a sweep whose tasks may still be moving; its runner is done
        if not _take_turn(job, now):
            continue
        try:
            if stage is not None:
                report["sweeps"][job.pk] = sweep_resend(job=job, stage=stage)
            else:
                job_send(job.pk, **same_queue())
                report[job.status].append(job.pk)
        except (BrokerOperationalError, OSError) as exc:
            _give_back_turn(job, now)
            report["send_failed"].append(job.pk)
            log.error("recovery: job %s not sent again, the task broker is unreachable: %s", job.pk, exc)
    if any(report.values()):
        log.info("recovery: %s", report)
    return report

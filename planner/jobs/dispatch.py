"""Sending tasks: the one place that names them, by their registered names.

Services send tasks through here instead of importing the task functions, so the
queue does not tie every service to every other: a task module imports the
services it calls, and nothing imports a task module but Celery
(planner.celery autodiscovers planner.jobs.tasks and planner.errormodels.tasks).

Every send raises the broker's error when it cannot be reached (kombu's
OperationalError, or OSError); callers decide what that means.
"""
from celery import current_task

from planner.celery import app

RUN_JOB = "planner.run_job"
RECOVER_JOBS = "planner.recover_jobs"
SWEEP_FAMILY = "planner.sweep_family"
SWEEP_FINALISE = "planner.sweep_finalise"

# Enqueueing must fail fast when the broker is down: the caller is a web request.
ENQUEUE_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


def _send(name: str, args: list, **options) -> None:
    if app.conf.task_always_eager:
        # send_task ignores eager mode (CELERY_TASK_ALWAYS_EAGER, for debugging): run the registered task here,
        # loading the task modules the way a worker does.
        app.loader.import_default_modules()
        app.tasks[name].apply_async(args=args, **options)
        return
    app.send_task(name, args=args, **options)


def same_queue() -> dict:
    """Send options that keep follow-up tasks on the queue the current task came from.

    A worker may serve a dedicated queue (deploys, tests); tasks it sends
    would otherwise go to the default queue, which nobody there consumes.
    """
    request = getattr(current_task, "request", None)
    info = getattr(request, "delivery_info", None) or {}
    queue = info.get("routing_key")
    return {"queue": queue} if queue else {}


def job_send(job_id: int, **options) -> None:
    """Send the job's task (run_job), retrying the broker briefly."""
    _send(RUN_JOB, [job_id], retry=True, retry_policy=ENQUEUE_RETRY_POLICY, **options)


def sweep_family_send(job_id: int, family: str, **options) -> None:
    """Send one family's task of a sweep job."""
    _send(SWEEP_FAMILY, [job_id, family], **options)


def sweep_finalise_send(job_id: int, **options) -> None:
    """Send a sweep job's finaliser."""
    _send(SWEEP_FINALISE, [job_id], **options)

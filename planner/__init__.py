"""scaleplan's Django app: corpus store, curation, jobs, API and pages.

The Celery app is imported here so that ``shared_task`` binds to it whenever
Django starts (web process, worker or management command).
"""
from .celery import app as celery_app

__all__ = ["celery_app"]

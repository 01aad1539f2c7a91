"""Celery application.

Configuration comes from Django settings (``CELERY_*``), which read the
environment. The job row in the database is the truth about a job; Celery's
result backend is not used for anything the product shows.
"""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planner.settings")

app = Celery("scaleplan")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Task modules of the domain packages; services send tasks by name (planner.jobs.dispatch).
app.autodiscover_tasks(["planner.jobs", "planner.errormodels"])

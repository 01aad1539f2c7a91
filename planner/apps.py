from django.apps import AppConfig


class PlannerConfig(AppConfig):
    name = "planner"
    verbose_name = "scaleplan"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Job admin + corpus import page (kept apart from the curation admin in admin.py).
        from . import admin_jobs  # noqa: F401

"""Admin pieces for jobs: a read-only Job admin and the staff corpus-import page.

The import page lives under the Job admin's URLs (/admin/planner/job/import/)
and is linked from the Family changelist. It stores the upload, creates a
corpus_import job and shows its progress (the page refreshes itself while the
job runs) and then its report.
"""
from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from fits import CorpusValidationError

from ..corpus.services import corpus_import_enqueue, upload_check_header
from .models import Job
from .services import JobEnqueueError, JobError, job_cancel


# The import report's numbers in the order and words a curator reads them (planner.corpus.importing.ImportReport).
REPORT_LABELS = {
    "families": "families in the file",
    "families_created": "families created",
    "runs_created": "runs created",
    "rows_read": "rows read",
    "rows_inserted": "rows imported",
    "rows_unchanged": "rows already there, unchanged",
    "rows_replaced": "rows replaced (different value)",
    "rows_skipped": "rows skipped (invalid)",
    "n_problems": "problems",
}
_NOT_SHOWN = {"problems", "problems_truncated"}


def report_rows(report: dict | None) -> list[tuple[str, str]]:
    """(label, value) lines of an import report; keys without a label keep their name."""
    if not report:
        return []
    keys = [k for k in REPORT_LABELS if k in report] + [k for k in report if k not in REPORT_LABELS]
    return [(REPORT_LABELS.get(k, k.replace("_", " ")),
             ", ".join(map(str, report[k])) if isinstance(report[k], list) else str(report[k]))
            for k in keys if k not in _NOT_SHOWN]


class CorpusImportForm(forms.Form):
    file = forms.FileField(help_text="Canonical corpus CSV, optionally gzip-compressed (.csv or .csv.gz).")
    skip_invalid = forms.BooleanField(
        required=False, help_text="Import the valid rows and report the invalid ones (default: reject the file)."
    )
    replace = forms.BooleanField(
        required=False,
        help_text="Overwrite existing observations whose value differs (default: such rows are errors).",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith((".csv", ".gz")):
            raise forms.ValidationError("Expected a .csv or .csv.gz file.")
        limit = settings.SCALEPLAN_MAX_UPLOAD_BYTES
        if upload.size > limit:
            raise forms.ValidationError(f"The file is {upload.size} bytes; the limit is {limit} bytes.")
        try:
            upload_check_header(upload=upload)
        except CorpusValidationError as exc:
            raise forms.ValidationError([str(p) for p in exc.problems]) from exc
        return upload


@admin.action(description="Cancel selected jobs (queued or running)")
def cancel_jobs(modeladmin, request, queryset):
    cancelled = 0
    for job in queryset.filter(status__in=[Job.Status.QUEUED, Job.Status.RUNNING]):
        try:
            job_cancel(job=job)
            cancelled += 1
        except JobError:
            pass  # finished meanwhile
    modeladmin.message_user(request, f"{cancelled} job(s) cancelled.")


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "progress_percent", "progress_message", "created_by", "created_at",
                    "finished_at", "import_link"]
    list_filter = ["kind", "status"]
    list_select_related = ["created_by"]
    search_fields = ["=id", "error", "progress_message"]
    date_hierarchy = "created_at"
    actions = [cancel_jobs]
    readonly_fields = [f.name for f in Job._meta.fields]

    # Jobs change only through planner.jobs.services, never by hand.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="progress", ordering="progress")
    def progress_percent(self, job):
        return f"{job.progress:.0%}"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("import/", view(self.import_view), name="planner_job_import"),
            path("<int:job_id>/import-status/", view(self.import_status_view), name="planner_job_import_status"),
            *super().get_urls(),
        ]

    def _check_staff(self, request):
        # admin_view already requires staff; imports change the shared corpus.
        if not request.user.is_staff:
            raise PermissionDenied

    def import_view(self, request):
        self._check_staff(request)
        form = CorpusImportForm(request.POST or None, request.FILES or None)
        status = 200
        if request.method == "POST" and form.is_valid():
            try:
                job = corpus_import_enqueue(
                    upload=form.cleaned_data["file"],
                    skip_invalid=form.cleaned_data["skip_invalid"],
                    replace=form.cleaned_data["replace"],
                    created_by=request.user,
                )
                return redirect("admin:planner_job_import_status", job_id=job.pk)
            except JobEnqueueError as exc:
                # Nothing was created (no job, the upload removed): the form again, with why.
                form.add_error(None, str(exc))
                status = 503
        context = {
            **self.admin_site.each_context(request),
            "title": "Import a corpus file",
            "form": form,
            "opts": self.model._meta,
            "max_upload_bytes": settings.SCALEPLAN_MAX_UPLOAD_BYTES,
        }
        return TemplateResponse(request, "admin/planner/import_form.html", context, status=status)

    def import_status_view(self, request, job_id):
        self._check_staff(request)
        job = get_object_or_404(Job, pk=job_id, kind=Job.Kind.CORPUS_IMPORT)
        result = job.result or {}
        # Problems sit on the import report (skipped rows) or on a failed job's result (rejected file).
        details = result.get("import") or result
        context = {
            **self.admin_site.each_context(request),
            "title": f"Corpus import job {job.pk}",
            "job": job,
            "opts": self.model._meta,
            "report": report_rows(result.get("import")),
            "stats": result.get("stats"),
            "problems": (details.get("problems") or [])[:500],
            "n_problems": details.get("n_problems", len(details.get("problems") or [])),
            "refresh_seconds": None if job.is_finished else 2,
            "job_api_url": reverse("api:job-detail", args=[job.pk]),
        }
        return TemplateResponse(request, "admin/planner/import_status.html", context)

    @admin.display(description="import report")
    def import_link(self, job):
        if job.kind != Job.Kind.CORPUS_IMPORT:
            return ""
        url = reverse("admin:planner_job_import_status", args=[job.pk])
        return format_html('<a href="{}">report</a>', url)

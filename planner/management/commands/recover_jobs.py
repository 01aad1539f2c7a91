"""manage.py recover_jobs: send again the tasks of jobs whose message may be lost (planner.jobs.recovery).

Celery beat runs the same every few minutes (deploy/bin/beat); this command is
for hosts that run it from cron instead, or for an operator after a broker outage.
"""
from django.core.management.base import BaseCommand, CommandError

from planner.jobs.recovery import jobs_recover


class Command(BaseCommand):
    help = (
        "Send again the task of every queued job untouched for SCALEPLAN_RESEND_AFTER seconds, of every running "
        "job whose worker must be gone, and the missing tasks of stalled sweeps. Safe to run at any time."
    )

    def handle(self, *args, **options):
        report = jobs_recover()
        sweeps = ", ".join(f"{pk} ({', '.join(sent)})" for pk, sent in report["sweeps"].items())
        self.stdout.write(
            f"sent again: {len(report['queued'])} queued job(s) {report['queued']}, "
            f"{len(report['running'])} abandoned running job(s) {report['running']}, "
            f"{len(report['sweeps'])} stalled sweep(s){': ' + sweeps if sweeps else ''}"
        )
        if report["send_failed"]:
            raise CommandError(f"the task broker is unreachable; not sent: {report['send_failed']}")

"""manage.py refresh_stats [--family NAME ...] [--async]: recompute family summary statistics."""
from django.core.management.base import BaseCommand, CommandError

from planner.corpus.models import Family
from planner.corpus.services import corpus_stats_enqueue
from planner.corpus.stats import families_refresh_stats
from planner.jobs.services import JobEnqueueError


class Command(BaseCommand):
    help = "Recompute the per-family summary statistics shown by the admin and the API (all families by default)."

    def add_arguments(self, parser):
        parser.add_argument("--family", action="append", dest="families", metavar="NAME",
                            help="Only this family (repeatable).")
        parser.add_argument("--async", action="store_true", dest="enqueue",
                            help="Queue a corpus_stats job for a worker instead of computing here.")

    def handle(self, *args, families=None, enqueue=False, **options):
        if families:
            unknown = sorted(set(families) - set(Family.objects.filter(name__in=families).values_list("name", flat=True)))
            if unknown:
                raise CommandError(f"unknown families: {', '.join(unknown)}")
        if enqueue:
            try:
                job = corpus_stats_enqueue(family_names=families)
            except JobEnqueueError as exc:
                raise CommandError(f"{exc} (or run without --async)") from exc
            self.stdout.write(f"queued job {job.pk} ({job.status})")
            return
        ids = None if not families else Family.objects.filter(name__in=families).values_list("pk", flat=True)
        result = families_refresh_stats(family_ids=ids)
        self.stdout.write(f"refreshed statistics of {result['families_refreshed']} families")

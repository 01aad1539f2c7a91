"""manage.py refresh_stats [--family NAME ...] [--async | --laws]: recompute family summary statistics (and laws)."""
from django.core.management.base import BaseCommand, CommandError

from planner.corpus.models import Family
from planner.corpus.services import corpus_stats_enqueue
from planner.corpus.stats import families_refresh_stats
from planner.jobs.services import JobEnqueueError
from planner.laws.services import laws_warm


class Command(BaseCommand):
    help = "Recompute the per-family summary statistics shown by the admin and the API (all families by default)."

    def add_arguments(self, parser):
        parser.add_argument("--family", action="append", dest="families", metavar="NAME",
                            help="Only this family (repeatable).")
        parser.add_argument("--async", action="store_true", dest="enqueue",
                            help="Queue a corpus_stats job for a worker instead of computing here (it also computes "
                                 "the families' laws for the corpus pages).")
        parser.add_argument("--laws", action="store_true",
                            help="Also compute (and cache) each family's law, backtest and plot, as the job does.")

    def handle(self, *args, families=None, enqueue=False, laws=False, **options):
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
        if laws:
            warmed = laws_warm(family_ids=None if ids is None else list(ids))
            self.stdout.write(f"computed {warmed['laws_computed']} laws ({warmed['laws_cached_already']} were cached)")

"""manage.py rebuild_error_model [--family NAME ...] [--sync]: sweep the corpus and fit a new error model."""
from django.core.management.base import BaseCommand, CommandError

from planner.corpus.models import Family
from planner.errormodels.services import (
    error_model_active,
    sweep_enqueue,
    sweep_family_run,
    sweep_finalise,
    sweep_run,
)
from planner.jobs.models import Job
from planner.jobs.services import JobEnqueueError, JobFailure, JobHandedOff, job_claim, job_fail


class Command(BaseCommand):
    help = (
        "Rebuild the error model that plans use: a `sweep` job backtests every design on every eligible family, "
        "then fits and activates a new error model. By default the job is queued for the workers (one task per "
        "family, so more workers finish sooner); --sync runs every stage in this process."
    )

    def add_arguments(self, parser):
        parser.add_argument("--family", action="append", dest="families", metavar="NAME",
                            help="Only this family (repeatable; at least 3 are needed).")
        parser.add_argument("--sync", action="store_true", help="Run the sweep here instead of on the workers.")

    def handle(self, *args, families=None, sync=False, **options):
        if families:
            known = set(Family.objects.filter(name__in=families).values_list("name", flat=True))
            unknown = sorted(set(families) - known)
            if unknown:
                raise CommandError(f"unknown families: {', '.join(unknown)}")
        if not sync:
            try:
                job = sweep_enqueue(families=families)
            except JobEnqueueError as exc:
                raise CommandError(f"{exc} (or use --sync)") from exc
            self.stdout.write(f"queued sweep job {job.pk}; follow it at /api/v1/sweeps/{job.pk}/")
            return
        # The job row is created without sending a task, and this process does every stage.
        job = Job.objects.create(kind=Job.Kind.SWEEP, input={"families": sorted(families) if families else None})
        job_claim(job_id=job.pk, worker="manage.py rebuild_error_model")
        try:
            sweep_run(job=job, progress=lambda fraction, message="": None, send=False)
        except JobHandedOff:
            pass
        except JobFailure as exc:
            job_fail(job_id=job.pk, error=str(exc))
            raise CommandError(f"sweep job {job.pk} failed: {exc}") from exc
        job.refresh_from_db()
        names = job.result["families"]
        for i, family in enumerate(names, 1):
            sweep_family_run(job_id=job.pk, family=family, send=False)
            self.stdout.write(f"  swept {family} ({i} of {len(names)})")
        sweep_finalise(job_id=job.pk)
        job.refresh_from_db()
        if job.status != Job.Status.SUCCEEDED:
            raise CommandError(f"sweep job {job.pk} {job.status}: {job.error}")
        v = job.result["validation"]
        self.stdout.write(
            f"error model v{error_model_active().version} from {job.result['laws']} laws on "
            f"{len(job.result['families'])} families: held-out coverage {v['coverage']:.1%}, "
            f"median |log ratio| {v['median_abs_log_ratio']:.3f}"
        )

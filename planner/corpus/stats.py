"""Per-family corpus statistics, stored on Family.stats for the admin and the API.

Computing them needs a pass over a family's observations, so they are computed
after imports (by the corpus_stats job or `manage.py refresh_stats`), not on
every page view.
"""
from __future__ import annotations

from statistics import median

from django.db.models import Count, Max, Min
from django.utils import timezone

from .models import Family, Observation, Run

# Bump when the shape of the stats dict changes, so readers can tell old rows.
FAMILY_STATS_VERSION = 1


def family_stats_compute(family: Family) -> dict:
    """Summary of one family, JSON-safe.

    Token range and observation count cover every metric; checkpoint counts and
    the value range cover the primary metric only (what fitting uses). Runs
    without a primary-metric observation count as 0 checkpoints.
    """
    sizes = sorted(set(Run.objects.filter(family=family).values_list("params", flat=True)))
    run_ids = list(Run.objects.filter(family=family).values_list("pk", flat=True))
    observations = Observation.objects.filter(run__family=family)
    overall = observations.aggregate(n=Count("pk"), tokens_min=Min("tokens"), tokens_max=Max("tokens"))
    metrics = sorted(observations.values_list("metric", flat=True).distinct().order_by())

    primary = observations.filter(metric=family.primary_metric) if family.primary_metric else observations.none()
    primary_agg = primary.aggregate(n=Count("pk"), lo=Min("value"), hi=Max("value"))
    per_run = dict(primary.order_by().values_list("run_id").annotate(n=Count("pk")))
    checkpoints = [per_run.get(run_id, 0) for run_id in run_ids]

    return {
        "version": FAMILY_STATS_VERSION,
        "n_runs": len(run_ids),
        "n_sizes": len(sizes),
        "sizes": sizes,
        "min_params": sizes[0] if sizes else None,
        "max_params": sizes[-1] if sizes else None,
        "n_observations": overall["n"],
        "n_primary_observations": primary_agg["n"],
        "tokens_min": overall["tokens_min"],
        "tokens_max": overall["tokens_max"],
        "checkpoints_per_run": {
            "min": min(checkpoints) if checkpoints else None,
            "median": float(median(checkpoints)) if checkpoints else None,
            "max": max(checkpoints) if checkpoints else None,
        },
        "primary_metric": family.primary_metric,
        "primary_min": primary_agg["lo"],
        "primary_max": primary_agg["hi"],
        "metrics": metrics,
    }


def families_refresh_stats(*, family_ids=None, progress=None) -> dict:
    """Recompute and store Family.stats for the given families (all when None).

    Each family is saved on its own, so a long refresh shows progress and a
    cancellation keeps what was already computed. `progress(fraction, message)`
    may raise to stop the refresh. Returns a JSON-safe summary.
    """
    families = Family.objects.all().order_by("name")
    if family_ids is not None:
        families = families.filter(pk__in=list(family_ids))
    families = list(families)
    total = len(families)
    for done, family in enumerate(families):
        if progress:
            progress(done / total, f"family {done + 1}/{total}: {family.name}")
        family.stats = family_stats_compute(family)
        family.stats_updated_at = timezone.now()
        family.save(update_fields=["stats", "stats_updated_at"])
    if progress:
        progress(1.0, f"{total} families refreshed")
    return {"families_refreshed": total, "families": [f.name for f in families]}


def families_refresh_after_import(*, report, progress=None) -> dict | None:
    """Refresh the stats of the families an import touched; None when it changed nothing."""
    if not (report.rows_inserted or report.rows_replaced or report.families_created):
        return None
    touched = Family.objects.filter(name__in=report.families).values_list("pk", flat=True)
    return families_refresh_stats(family_ids=list(touched), progress=progress)

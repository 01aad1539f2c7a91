"""The corpus browser: the families table, one family's law, backtest and interval, and its plot (public)."""
import django_filters as filters
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import etag, require_safe

from ..api.filters import FamilyFilter
from ..corpus.models import Family
from .services import COVERAGE, MISFIT_THRESHOLD, cached_laws, family_law, family_law_cache_key, family_plot_png


class FamilyPageFilter(FamilyFilter):
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")

    class Meta(FamilyFilter.Meta):
        fields = ["q", "arch", "excluded"]


def _g(x) -> str:
    return "—" if x is None else f"{x:.3g}"


def _pct(x, digits=1) -> str:
    return "—" if x is None else f"{x:.{digits}%}"


def _row(family: Family, law: dict | None = None) -> dict:
    stats = family.stats or {}
    backtest = (law or {}).get("backtest") or {}
    misfit = ((law or {}).get("law") or {}).get("misfit") or {}
    return {
        "family": family,
        "n_sizes": stats.get("n_sizes"),
        "n_runs": stats.get("n_runs"),
        "params": f"{_g(stats.get('min_params'))} – {_g(stats.get('max_params'))}" if stats else "—",
        "tokens": f"{_g(stats.get('tokens_min'))} – {_g(stats.get('tokens_max'))}" if stats else "—",
        "law_cached": law is not None,
        "are": backtest.get("are") if backtest.get("available") else None,
        "are_text": _pct(backtest.get("are")) if backtest.get("available") else ("not computed yet" if law is None
                                                                                 else "—"),
        "misfit": len(misfit.get("sizes") or []),
    }


# ?sort= values: the column, and how to order by it (absent values last whichever the direction).
SORTS = {"name": lambda r: r["family"].name.lower(), "sizes": lambda r: r["n_sizes"], "runs": lambda r: r["n_runs"],
         "are": lambda r: r["are"]}


def _sorted(rows: list[dict], sort: str) -> tuple[list[dict], str]:
    """Rows in the order ``sort`` asks ("are", "-are", ...); an unknown one is the default, by name."""
    key = sort.lstrip("-")
    if key not in SORTS:
        key, sort = "name", "name"
    present = [r for r in rows if SORTS[key](r) is not None]
    absent = [r for r in rows if SORTS[key](r) is None]
    present.sort(key=lambda r: (SORTS[key](r), r["family"].name), reverse=sort.startswith("-"))
    return present + sorted(absent, key=lambda r: r["family"].name), sort


@require_safe
def family_list(request):
    filterset = FamilyPageFilter(request.GET, queryset=Family.objects.all())
    valid = filterset.is_valid()
    families = list(filterset.qs if valid else Family.objects.none())
    laws = cached_laws(families)  # never computed here: the stats refresh (or a family's page) computes them
    rows, sort = _sorted([_row(f, laws.get(f.pk)) for f in families], request.GET.get("sort", "name"))
    query = request.GET.copy()
    query.pop("sort", None)
    links = {}
    for key in SORTS:
        query["sort"] = f"-{key}" if sort == key else key  # a second click reverses
        links[key] = "?" + query.urlencode()
    context = {"filter": filterset, "rows": rows, "total": Family.objects.count(), "sort": sort, "sort_links": links,
               "uncached": sum(1 for r in rows if not r["law_cached"]), "misfit_threshold": _pct(MISFIT_THRESHOLD, 0)}
    return render(request, "planner/families.html", context, status=200 if valid else 400)


@require_safe
def family_page(request, name):
    family = get_object_or_404(Family, name=name)
    law = family_law(family)
    params = law["law"].get("params") or {}
    stderr = law["law"].get("stderr") or {}
    misfit = (law["law"].get("misfit") or {}).get("sizes") or []
    context = {
        "family": family,
        "row": _row(family, law),
        "law": law,
        "misfit": [{"params": _g(m["params"]), "residual": _pct(m["mean_abs_log_residual"]),
                    "n_points": m["n_points"]} for m in misfit],
        "misfit_threshold": _pct(MISFIT_THRESHOLD, 0),
        "law_params": [{"name": k, "value": _g(v), "stderr": _g(stderr.get(k))} for k, v in params.items()],
        "pct": {k: _pct(law["backtest"].get(k)) for k in ("are", "are_best_loss", "are_most_compute")},
        "coverage": _pct(COVERAGE, digits=0),
        "has_plot": law["data"]["n_rows"] > 0,
    }
    return render(request, "planner/family.html", context)


def _plot_etag(request, name):
    family = Family.objects.filter(name=name).first()
    # The URL stays while the data changes: the law's cache key says which data the plot shows.
    return family_law_cache_key(family).rsplit(":", 1)[-1] if family else None


@require_safe
@etag(_plot_etag)
def family_plot(request, name):
    family = get_object_or_404(Family, name=name)
    try:
        png = family_plot_png(family)
    except ValueError as exc:
        raise Http404(f"No plot for {family.name}: {exc}") from exc
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "public, no-cache"  # revalidate with the ETag: 304 until the data changes
    return response

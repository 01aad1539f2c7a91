"""The corpus browser: the families table, one family's law, backtest and interval, and its plot (public)."""
import django_filters as filters
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import etag, require_safe

from ..api.filters import FamilyFilter
from ..corpus.models import Family
from .services import COVERAGE, family_law, family_law_cache_key, family_plot_png


class FamilyPageFilter(FamilyFilter):
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")

    class Meta(FamilyFilter.Meta):
        fields = ["q", "arch", "excluded"]


def _g(x) -> str:
    return "—" if x is None else f"{x:.3g}"


def _pct(x, digits=1) -> str:
    return "—" if x is None else f"{x:.{digits}%}"


def _row(family: Family) -> dict:
    stats = family.stats or {}
    return {
        "family": family,
        "n_sizes": stats.get("n_sizes"),
        "n_runs": stats.get("n_runs"),
        "params": f"{_g(stats.get('min_params'))} – {_g(stats.get('max_params'))}" if stats else "—",
        "tokens": f"{_g(stats.get('tokens_min'))} – {_g(stats.get('tokens_max'))}" if stats else "—",
    }


@require_safe
def family_list(request):
    filterset = FamilyPageFilter(request.GET, queryset=Family.objects.all())
    valid = filterset.is_valid()
    families = filterset.qs if valid else Family.objects.none()
    context = {"filter": filterset, "rows": [_row(f) for f in families], "total": Family.objects.count()}
    return render(request, "planner/families.html", context, status=200 if valid else 400)


@require_safe
def family_page(request, name):
    family = get_object_or_404(Family, name=name)
    law = family_law(family)
    params = law["law"].get("params") or {}
    stderr = law["law"].get("stderr") or {}
    context = {
        "family": family,
        "row": _row(family),
        "law": law,
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

"""Django admin for corpus curation (staff only, as the admin site itself is).

Families carry the curation: exclude/include from fitting, set the primary
metric, export as canonical CSV. Summaries come from Family.stats, computed by
the corpus-statistics job, so changelists stay fast on the full corpus.
"""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join
from django.utils.text import slugify

from .exporting import export_canonical
from .models import Family, Observation, Run

NOT_COMPUTED = "not computed yet"


def _stat(family, key):
    stats = family.stats or {}
    return stats.get(key)


def _params(n):
    """125000000 -> '125M' (admin display only)."""
    if n is None:
        return "-"
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(n)


class RunInline(admin.TabularInline):
    model = Run
    fields = ("name", "seed", "arch", "params", "params_display", "n_observations")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("params", "name")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_obs=Count("observations"))

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="size")
    def params_display(self, run):
        return _params(run.params)

    @admin.display(description="observations")
    def n_observations(self, run):
        return run.n_obs


class PrimaryMetricForm(forms.Form):
    metric = forms.ChoiceField(label="Primary metric", help_text="The loss fitted for this family.")

    def __init__(self, *args, metrics=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["metric"].choices = [(m, m) for m in metrics]


@admin.register(Family)
class FamilyAdmin(admin.ModelAdmin):
    list_display = ("name", "arch", "primary_metric", "excluded_from_fitting", "runs_count", "sizes_display",
                    "stats_updated_at")
    list_filter = ("arch", "excluded_from_fitting")
    search_fields = ("name", "dataset", "source", "notes")
    inlines = [RunInline]
    actions = ["exclude_from_fitting", "include_in_fitting", "set_primary_metric", "export_csv"]
    readonly_fields = ("summary_runs", "summary_sizes", "summary_tokens", "summary_checkpoints",
                       "summary_primary_range", "summary_observations", "stats_updated_at", "created_at",
                       "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "arch", "dataset", "source", "primary_metric", "excluded_from_fitting",
                           "notes")}),
        ("Summary (from the corpus-statistics job)", {"fields": (
            "summary_runs", "summary_sizes", "summary_tokens", "summary_checkpoints", "summary_primary_range",
            "summary_observations", "stats_updated_at")}),
        ("History", {"classes": ("collapse",), "fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_runs=Count("runs"))

    @admin.display(description="runs", ordering="n_runs")
    def runs_count(self, family):
        return family.n_runs

    @admin.display(description="sizes")
    def sizes_display(self, family):
        sizes = _stat(family, "sizes")
        if sizes is None:
            return NOT_COMPUTED
        return ", ".join(_params(s) for s in sizes) or "-"

    @admin.display(description="runs")
    def summary_runs(self, family):
        n = _stat(family, "n_runs")
        return NOT_COMPUTED if n is None else n

    @admin.display(description="sizes")
    def summary_sizes(self, family):
        sizes = _stat(family, "sizes")
        if sizes is None:
            return NOT_COMPUTED
        n = _stat(family, "n_sizes")
        return format_html("{} distinct: {}", n if n is not None else len(sizes),
                           format_html_join(", ", "{}", ((_params(s),) for s in sizes)))

    @admin.display(description="tokens seen")
    def summary_tokens(self, family):
        lo, hi = _stat(family, "tokens_min"), _stat(family, "tokens_max")
        if lo is None or hi is None:
            return NOT_COMPUTED
        return f"{lo:.3g} – {hi:.3g}"

    @admin.display(description="checkpoints per run (primary metric)")
    def summary_checkpoints(self, family):
        cp = _stat(family, "checkpoints_per_run")
        if not cp or cp.get("min") is None:
            return NOT_COMPUTED
        return f"min {cp['min']}, median {cp['median']:g}, max {cp['max']}"

    @admin.display(description="primary metric range")
    def summary_primary_range(self, family):
        lo, hi = _stat(family, "primary_min"), _stat(family, "primary_max")
        if lo is None or hi is None:
            return NOT_COMPUTED
        return f"{lo:.4g} – {hi:.4g}"

    @admin.display(description="observations")
    def summary_observations(self, family):
        n = _stat(family, "n_observations")
        return NOT_COMPUTED if n is None else n

    @admin.action(description="Exclude selected families from fitting")
    def exclude_from_fitting(self, request, queryset):
        n = queryset.update(excluded_from_fitting=True)
        self.message_user(request, f"{n} families excluded from fitting.", messages.SUCCESS)

    @admin.action(description="Include selected families in fitting")
    def include_in_fitting(self, request, queryset):
        n = queryset.update(excluded_from_fitting=False)
        self.message_user(request, f"{n} families included in fitting.", messages.SUCCESS)

    @admin.action(description="Set the primary metric of the selected family")
    def set_primary_metric(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one family to set its primary metric.", messages.ERROR)
            return None
        family = queryset.get()
        metrics = list(Observation.objects.filter(run__family=family).order_by("metric")
                       .values_list("metric", flat=True).distinct())
        if not metrics:
            self.message_user(request, f"{family} has no observations to choose a metric from.", messages.ERROR)
            return None
        if "apply" in request.POST:
            form = PrimaryMetricForm(request.POST, metrics=metrics)
            if form.is_valid():
                family.primary_metric = form.cleaned_data["metric"]
                family.save(update_fields=["primary_metric", "updated_at"])
                self.log_change(request, family, f"Set primary metric to {family.primary_metric}.")
                self.message_user(request, f"{family}: primary metric is now {family.primary_metric!r}. "
                                           "Its summary updates with the next statistics refresh.", messages.SUCCESS)
                return None
        else:
            form = PrimaryMetricForm(initial={"metric": family.primary_metric}, metrics=metrics)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Set the primary metric of {family}",
            "opts": self.model._meta,
            "family": family,
            "form": form,
            "action": "set_primary_metric",
            "selected": [family.pk],
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/planner/family/set_primary_metric.html", context)

    @admin.action(description="Export selected families as canonical CSV")
    def export_csv(self, request, queryset):
        names = sorted(queryset.values_list("name", flat=True))
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        stem = slugify(names[0]) if len(names) == 1 else f"{len(names)}-families"
        response["Content-Disposition"] = f'attachment; filename="scaleplan-{stem}.csv"'
        export_canonical(response, families=names)
        return response


class SizeRangeFilter(admin.SimpleListFilter):
    title = "size"
    parameter_name = "size"
    # (slug, label, lower bound inclusive, upper bound exclusive) in parameters.
    BUCKETS = (
        ("lt100m", "< 100M", None, 10**8),
        ("100m-1b", "100M – 1B", 10**8, 10**9),
        ("1b-10b", "1B – 10B", 10**9, 10**10),
        ("10b-100b", "10B – 100B", 10**10, 10**11),
        ("ge100b", "≥ 100B", 10**11, None),
    )

    def lookups(self, request, model_admin):
        return [(slug, label) for slug, label, _, _ in self.BUCKETS]

    def queryset(self, request, queryset):
        for slug, _, lo, hi in self.BUCKETS:
            if self.value() == slug:
                if lo is not None:
                    queryset = queryset.filter(params__gte=lo)
                if hi is not None:
                    queryset = queryset.filter(params__lt=hi)
                return queryset
        return queryset


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("name", "seed", "family", "arch", "params", "params_display")
    list_filter = (("family", admin.RelatedOnlyFieldListFilter), "arch", SizeRangeFilter)
    search_fields = ("name",)
    list_select_related = ("family",)
    raw_id_fields = ("family",)

    @admin.display(description="size", ordering="params")
    def params_display(self, run):
        return _params(run.params)


@admin.register(Observation)
class ObservationAdmin(admin.ModelAdmin):
    list_display = ("run", "metric", "tokens", "value", "split", "step")
    list_filter = ("metric", "split")
    search_fields = ("run__name", "metric")
    raw_id_fields = ("run",)
    list_select_related = ("run",)
    # COUNT(*) over ~200k rows on every page is the slow part of a large changelist.
    show_full_result_count = False

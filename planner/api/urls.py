from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from ..corpus import api as corpus
from ..errormodels import api as errormodels
from ..jobs import api as jobs
from ..laws import api as laws
from ..plans import api as plans
from ..predictions import api as predictions
from ..runs import api as runs
from .exceptions import api_not_found

app_name = "api"

urlpatterns = [
    path("families/", corpus.FamilyList.as_view(), name="family-list"),
    path("families/<int:pk>/", corpus.FamilyDetail.as_view(), name="family-detail"),
    path("runs/", corpus.RunList.as_view(), name="run-list"),
    path("observations/", corpus.ObservationList.as_view(), name="observation-list"),
    path("imports/", corpus.ImportCreate.as_view(), name="import-create"),
    path("stats/refresh/", corpus.StatsRefresh.as_view(), name="stats-refresh"),
    path("jobs/", jobs.JobList.as_view(), name="job-list"),
    path("jobs/<int:pk>/", jobs.JobDetail.as_view(), name="job-detail"),
    path("jobs/<int:pk>/cancel/", jobs.JobCancel.as_view(), name="job-cancel"),
    path("predictions/", predictions.PredictionListCreate.as_view(), name="prediction-list"),
    path("predictions/<int:pk>/", predictions.PredictionDetail.as_view(), name="prediction-detail"),
    path("predictions/imports/", runs.TrackerImportCreate.as_view(), name="prediction-import"),
    path("predictions/<int:pk>/updates/", runs.PredictionUpdateCreate.as_view(), name="prediction-update"),
    path("advice/", runs.AdviceListCreate.as_view(), name="advice-list"),
    path("advice/<int:pk>/", runs.AdviceDetail.as_view(), name="advice-detail"),
    path("plans/", plans.PlanListCreate.as_view(), name="plan-list"),
    path("plans/<int:pk>/", plans.PlanDetail.as_view(), name="plan-detail"),
    # plan.json, plan.csv, prediction-template.csv (planner.plans.services.PLAN_FILES). No trailing slash, so
    # any id and name reach the view (a 404 in the API's shape), not APPEND_SLASH's redirect to the catch-all.
    re_path(r"^plans/(?P<pk>[^/]+)/(?P<name>[^/]+)$", plans.PlanFile.as_view(), name="plan-file"),
    path("sweeps/", errormodels.SweepListCreate.as_view(), name="sweep-list"),
    path("sweeps/<int:pk>/", errormodels.SweepDetail.as_view(), name="sweep-detail"),
    path("error-model/", errormodels.ErrorModelDetail.as_view(), name="error-model"),
    path("laws/", laws.LawList.as_view(), name="law-list"),
    path("laws/<str:name>/", laws.LawDetail.as_view(), name="law-detail"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's init script from a URL (?script), not inline: CSP-clean.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema", template_name="planner/swagger_ui.html"),
         name="docs"),
    # Unknown API URLs answer in the API's error shape, also when DEBUG is on.
    # (Paths without a trailing slash fall to APPEND_SLASH, then handler404.)
    re_path(r"^.*/$", api_not_found),
]

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import views, views_laws, views_plans, views_predictions
from .exceptions import api_not_found

app_name = "api"

urlpatterns = [
    path("families/", views.FamilyList.as_view(), name="family-list"),
    path("families/<int:pk>/", views.FamilyDetail.as_view(), name="family-detail"),
    path("runs/", views.RunList.as_view(), name="run-list"),
    path("observations/", views.ObservationList.as_view(), name="observation-list"),
    path("imports/", views.ImportCreate.as_view(), name="import-create"),
    path("stats/refresh/", views.StatsRefresh.as_view(), name="stats-refresh"),
    path("jobs/", views.JobList.as_view(), name="job-list"),
    path("jobs/<int:pk>/", views.JobDetail.as_view(), name="job-detail"),
    path("jobs/<int:pk>/cancel/", views.JobCancel.as_view(), name="job-cancel"),
    path("predictions/", views_predictions.PredictionCreate.as_view(), name="prediction-create"),
    path("predictions/<int:pk>/", views_predictions.PredictionDetail.as_view(), name="prediction-detail"),
    path("plans/", views_plans.PlanListCreate.as_view(), name="plan-list"),
    path("plans/<int:pk>/", views_plans.PlanDetail.as_view(), name="plan-detail"),
    path("sweeps/", views_plans.SweepListCreate.as_view(), name="sweep-list"),
    path("sweeps/<int:pk>/", views_plans.SweepDetail.as_view(), name="sweep-detail"),
    path("error-model/", views_plans.ErrorModelDetail.as_view(), name="error-model"),
    path("laws/", views_laws.LawList.as_view(), name="law-list"),
    path("laws/<str:name>/", views_laws.LawDetail.as_view(), name="law-detail"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's init script from a URL (?script), not inline: CSP-clean.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema", template_name="planner/swagger_ui.html"),
         name="docs"),
    # Unknown API URLs answer in the API's error shape, also when DEBUG is on.
    # (Paths without a trailing slash fall to APPEND_SLASH, then handler404.)
    re_path(r"^.*/$", api_not_found),
]

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from planner.corpus import views as corpus_views
from planner.laws import views as laws_views
from planner.plans import views as plans_views
from planner.predictions import views as predictions_views

urlpatterns = [
    path("", corpus_views.home, name="home"),
    # Browsers ask for it on pages without an icon link (admin, browsable API): no 404 in their consoles.
    path("favicon.ico", RedirectView.as_view(url=static("planner/favicon.svg"), permanent=True,
                                                      http_method_names=["get", "head"])),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(http_method_names=["get", "post", "head", "options"]),
         name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("families/", laws_views.family_list, name="family-list"),
    path("families/<str:name>/", laws_views.family_page, name="family-page"),
    path("families/<str:name>/plot.png", laws_views.family_plot, name="family-plot"),
    path("predictions/new", predictions_views.prediction_new, name="prediction-new"),
    path("predictions/<int:pk>/plot.png", predictions_views.prediction_plot, name="prediction-plot"),
    path("jobs/<int:pk>/", predictions_views.job_page, name="job-page"),
    path("plans/", plans_views.plan_list, name="plan-list"),
    path("plans/new", plans_views.plan_new, name="plan-new"),
    path("plans/<int:pk>/", plans_views.plan_page, name="plan-page"),
    path("plans/<int:pk>/<str:name>.png", plans_views.plan_plot, name="plan-plot"),
    # plan.json, plan.csv, prediction-template.csv (planner.plans.services.PLAN_FILES)
    path("plans/<int:pk>/<str:name>", plans_views.plan_download, name="plan-file"),
    path("", include("planner.runs.urls")),  # tracker imports, predictions as runs advance, next-run advice
    path("api/v1/", include("planner.api.urls", namespace="api")),
]

# JSON errors for /api/ paths outside DRF; HTML elsewhere.
handler404 = "planner.api.exceptions.handler404"
handler500 = "planner.api.exceptions.handler500"

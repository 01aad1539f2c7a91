"""Pages of planner.runs (included by planner/urls.py); its API routes are in planner/api/urls.py."""
from django.urls import path

from . import views

urlpatterns = [
    path("predictions/import", views.tracker_import, name="prediction-import"),
    path("predictions/<int:pk>/progress/", views.prediction_progress, name="prediction-progress"),
    path("predictions/<int:pk>/update", views.prediction_update, name="prediction-update"),
    path("predictions/<int:pk>/history.png", views.history_plot, {"name": "history"}, name="prediction-history-plot"),
    path("predictions/<int:pk>/uploads.png", views.history_plot, {"name": "uploads"}, name="prediction-uploads-plot"),
    path("predictions/<int:pk>/runs.csv", views.prediction_runs_csv, name="prediction-runs-csv"),
    path("advice/new", views.advice_new, name="advice-new"),
    path("advice/<int:pk>/", views.advice_page, name="advice-page"),
]

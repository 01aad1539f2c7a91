from django.contrib import admin
from django.urls import include, path

from planner import views

urlpatterns = [
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("planner.api.urls", namespace="api")),
]

# JSON errors for /api/ paths outside DRF; HTML elsewhere.
handler404 = "planner.api.exceptions.handler404"
handler500 = "planner.api.exceptions.handler500"

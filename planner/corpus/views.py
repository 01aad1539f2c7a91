"""Server-rendered pages."""
from django.shortcuts import render
from django.views.decorators.http import require_safe

from .models import Family, Observation, Run


@require_safe
def home(request):
    """What scaleplan is, where to go next, and how big the loaded corpus is."""
    counts = {
        "families": Family.objects.count(),
        "runs": Run.objects.count(),
        "observations": Observation.objects.count(),
    }
    return render(request, "home.html", {"counts": counts})

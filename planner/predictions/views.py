"""Pages for predictions: the form, the job page (any job kind), and the prediction's plot.

Creating a prediction and reading a job need a login (Django's auth views at
/accounts/login/, any user; the admin login is for staff only). A job is shown
to its creator and to staff, as in the API; to anyone else it is a 404, like a missing one.
"""
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from ..api.throttling import form_throttle, throttled_response
from ..jobs.heartbeat import job_queue, job_stall
from ..jobs.models import Job
from ..jobs.services import JobEnqueueError
from .forms import PredictionForm
from .services import PredictionInputError, prediction_enqueue, prediction_plot_png

# Fields of PredictionInputError that the form shows under another name.
_FORM_FIELD = {"runs": None, "file": None}


@login_required
@require_http_methods(["GET", "POST"])
def prediction_new(request):
    if request.method == "POST" and (refused := form_throttle(request, "predictions")):
        form = PredictionForm(request.POST)  # refused before any work: the upload is not processed
        form.add_error(None, refused)
        return throttled_response(request, render(request, "planner/prediction_new.html", {"form": form}))
    form = PredictionForm(request.POST or None, request.FILES or None, initial=_initial(request))
    status = 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = prediction_enqueue(
                runs=data["runs"], target_params=data["target_params"], target_tokens=data["target_tokens"],
                coverage=data["coverage"], source=data["source"], created_by=request.user,
            )
            return redirect("job-page", pk=job.pk)
        except PredictionInputError as exc:
            form.add_error(_FORM_FIELD.get(exc.field, exc.field), exc.messages)
        except JobEnqueueError as exc:
            form.add_error(None, str(exc))  # nothing was created: the same form, ready to send again
            status = 503
    return render(request, "planner/prediction_new.html", {"form": form, "plan": _plan_of(request)}, status=status)


def _initial(request) -> dict:
    """The target given in the URL (a plan's "predict from these runs" link), to fill in the form."""
    return {name: request.GET[name][:100] for name in ("target_params", "target_tokens") if request.GET.get(name)}


def _plan_of(request) -> dict | None:
    """The plan the form was opened from (?plan=<id>), if the user may see it: its page and template."""
    pk = request.GET.get("plan", "")
    if not pk.isascii() or not pk.isdigit() or len(pk) > 18:
        return None
    plan = Job.objects.visible_to(request.user).filter(pk=int(pk), kind=Job.Kind.PLAN,
                                                       status=Job.Status.SUCCEEDED).first()
    if plan is None:
        return None
    return {"pk": plan.pk, "url": reverse("plan-page", args=[plan.pk]),
            "template_url": reverse("plan-file", args=[plan.pk, "prediction-template.csv"])}


def _own_job(request, pk) -> Job:
    # Another user's job is a 404, exactly like a missing one: ids cannot be probed.
    return get_object_or_404(Job.objects.visible_to(request.user).select_related("created_by"), pk=pk)


def _fmt(x) -> str:
    return f"{x:.4g}"


def _prediction_summary(job: Job) -> dict | None:
    result = job.result or {}
    if job.kind != Job.Kind.PREDICTION or job.status != Job.Status.SUCCEEDED or "points" not in result:
        return None
    return {
        "target_params": _fmt(result["target_params"]),
        "coverage": f"{result['coverage']:.0%}",
        "points": [
            {"tokens": _fmt(p["tokens"]), "prediction": _fmt(p["prediction"]), "lower": _fmt(p["lower"]),
             "upper": _fmt(p["upper"])}
            for p in result["points"]
        ],
        "law": {k: _fmt(v) for k, v in result["law"]["params"].items()},
        "law_name": result["law"]["law"],
        "formula": result["law"].get("formula", "E + A/N^alpha + B/D^beta"),
        "method": (result.get("choice") or {}).get("method") or (result.get("method") or {}).get("name", ""),
        "reason": (result.get("choice") or {}).get("reason", ""),
        "rollout": {k: ("—" if v is None else f"{v:.2%}")
                    for k, v in ((result.get("choice") or {}).get("rollout_mean") or {}).items()},
        "interval_from": (result.get("interval") or {}).get("from", ""),
        "expected": {k: f"{result['expected_are'][k]:.2%}" for k in ("p10", "p50", "p90")}
        if result.get("expected_are") else None,
        "diagnostics": result["diagnostics"],
        "data": result["data"],
    }


@require_safe
@login_required
def job_page(request, pk):
    job = _own_job(request, pk)
    context = {
        "job": job,
        "percent": round(job.progress * 100),
        "refresh": not job.is_finished,
        "stall": job_stall(job),
        "queue": job_queue(job),
        "prediction": _prediction_summary(job),
    }
    return render(request, "planner/job.html", context)


@require_safe
@login_required
def prediction_plot(request, pk):
    job = _own_job(request, pk)
    if job.kind != Job.Kind.PREDICTION or job.status != Job.Status.SUCCEEDED:
        raise Http404("No plot: this is not a succeeded prediction.")
    response = HttpResponse(prediction_plot_png(job=job), content_type="image/png")
    # A succeeded job never changes, but it is private.
    response["Cache-Control"] = "private, max-age=86400"
    return response

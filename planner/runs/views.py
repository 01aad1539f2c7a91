"""Pages: a prediction from a tracker's logs, a prediction as its runs advance (and its update), next-run advice.

Every page needs a login; a prediction, plan or advice of another user is a 404, like a missing one (staff see
all). Creating work counts against the predictions' throttle, shared with the prediction form and the API.
Field errors answer 200 with the form (as every form here does); an unreachable task queue 503, with nothing
created.
"""
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from ..api.throttling import form_throttle, throttled_response
from ..jobs.heartbeat import job_stall
from ..jobs.models import Job
from ..jobs.services import JobEnqueueError
from ..predictions.services import PredictionInputError, prediction_enqueue
from .advice import AdviceRequestError, advice_enqueue, plan_figures
from .following import prediction_update_enqueue, tracker_defaults
from .forms import AdviceForm, PredictionUpdateForm, TrackerImportForm
from .pages import advice_summary, prediction_summary, runs_csv
from .plots import history_png, stored_history
from .trackers import params_csv

# Where a prediction's input error shows on these forms (the runs came from the logs).
_RUNS_FIELDS = {"runs", "file", "prediction"}
# Choices of the advice form: the user's most recent predictions and plans.
RECENT = 50


def _own(request, pk, kind) -> Job:
    # Another user's job is a 404, exactly like a missing one: ids cannot be probed.
    return get_object_or_404(Job.objects.visible_to(request.user).select_related("created_by"), pk=pk, kind=kind)


def _job_context(job: Job) -> dict:
    return {"job": job, "percent": round(job.progress * 100), "refresh": not job.is_finished, "stall": job_stall(job)}


def _refused(request):
    """The throttle's message for a POST over the predictions' rate, else None (a POST is counted once)."""
    return form_throttle(request, "predictions") if request.method == "POST" else None


def _source_of_logs(tracker: dict) -> dict:
    return {"filename": tracker["filename"], "metric": tracker["options"]["metric"], "tracker": tracker}


@login_required
@require_http_methods(["GET", "POST"])
def tracker_import(request):
    template = "planner/runs/import.html"
    if refused := _refused(request):
        form = TrackerImportForm(request.POST)  # refused before any work: the upload is not read
        form.add_error(None, refused)
        return throttled_response(request, render(request, template, {"form": form}))
    form = TrackerImportForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = prediction_enqueue(runs=data["runs"], target_params=data["target_params"],
                                     target_tokens=data["target_tokens"], coverage=data["coverage"],
                                     source=_source_of_logs(data["tracker"]), created_by=request.user)
            return redirect("prediction-progress", pk=job.pk)
        except PredictionInputError as exc:
            form.add_error("logs" if exc.field in _RUNS_FIELDS else exc.field, exc.messages)
        except JobEnqueueError as exc:
            form.add_error(None, str(exc))  # nothing was created: the same form, ready to send again
            status = 503
    return render(request, template, {"form": form}, status=status)


@require_safe
@login_required
def prediction_progress(request, pk):
    job = _own(request, pk, Job.Kind.PREDICTION)
    return render(request, "planner/runs/progress.html", {**_job_context(job), **prediction_summary(job)})


@login_required
@require_http_methods(["GET", "POST"])
def prediction_update(request, pk):
    previous = _own(request, pk, Job.Kind.PREDICTION)
    defaults = tracker_defaults(previous)
    initial = {}
    if defaults:
        initial = {k: v for k, v in defaults["options"].items() if v is not None}
        initial["only_runs"] = ", ".join(initial.get("only_runs") or [])
        initial["params"] = params_csv(defaults["params"])
    context = {"previous": previous, "defaults": defaults}
    template = "planner/runs/update.html"
    if refused := _refused(request):
        form = PredictionUpdateForm(request.POST, initial=initial)
        form.add_error(None, refused)
        return throttled_response(request, render(request, template, {"form": form, **context}))
    form = PredictionUpdateForm(request.POST or None, request.FILES or None, initial=initial,
                                params_mapping=defaults["params"] if defaults else None)
    status = 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        source = _source_of_logs(data["tracker"]) if data["field"] == "logs" else data["source"]
        try:
            job = prediction_update_enqueue(previous=previous, runs=data["runs"], source=source, field=data["field"],
                                            created_by=request.user)
            return redirect("prediction-progress", pk=job.pk)
        except PredictionInputError as exc:
            form.add_error(data["field"] if exc.field in _RUNS_FIELDS else exc.field, exc.messages)
        except JobEnqueueError as exc:
            form.add_error(None, str(exc))
            status = 503
    return render(request, template, {"form": form, **context}, status=status)


@require_safe
@login_required
def history_plot(request, pk, name):
    job = _own(request, pk, Job.Kind.PREDICTION)
    data = stored_history(job.result, name) if job.status == Job.Status.SUCCEEDED else None
    if data is None:
        raise Http404("No such figure: the prediction has not succeeded or has no such history.")
    title = {"history": f"prediction {job.pk} as the runs advanced",
             "uploads": f"prediction {job.pk} over its chain of updates"}[name]
    response = HttpResponse(history_png(data, title=title), content_type="image/png")
    response["Cache-Control"] = "private, max-age=86400"  # a succeeded job never changes, but it is private
    return response


@require_safe
@login_required
def prediction_runs_csv(request, pk):
    job = _own(request, pk, Job.Kind.PREDICTION)
    response = HttpResponse(runs_csv(job.input.get("runs") or []), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="prediction-{job.pk}-runs.csv"'
    response["Cache-Control"] = "private, max-age=86400"  # a job's input never changes
    return response


def _choices(request, kind, wanted) -> list[tuple[int, str]]:
    """The user's most recent jobs of ``kind`` as form choices (with ``wanted`` too, if theirs)."""
    jobs = Job.objects.visible_to(request.user).filter(kind=kind)
    rows = list(jobs.values_list("pk", "created_at", "status", "input__target_params")[:RECENT])
    if wanted is not None and wanted not in {r[0] for r in rows}:
        rows += list(jobs.filter(pk=wanted).values_list("pk", "created_at", "status", "input__target_params"))
    return [(pk, f"#{pk}, {created:%Y-%m-%d %H:%M}, target {target:.3g} ({status})"
             if isinstance(target, (int, float)) else f"#{pk}, {created:%Y-%m-%d %H:%M} ({status})")
            for pk, created, status, target in rows]


def _visible(request, pk, kind) -> Job | None:
    return None if pk is None else Job.objects.visible_to(request.user).filter(pk=pk, kind=kind).first()


def _plan_figures(plan: Job | None) -> dict | None:
    if plan is None:
        return None
    try:
        return plan_figures(plan)
    except AdviceRequestError:
        return None  # a plan without a budget: the form says so when it is chosen


def _prediction_target(request, pk) -> dict:
    found = Job.objects.visible_to(request.user).filter(pk=pk, kind=Job.Kind.PREDICTION).values_list(
        "input__target_params", "input__target_tokens").first()
    if not found or found[0] is None:
        return {}
    tokens = max(found[1]) if isinstance(found[1], list) else found[1]
    return {"target_params": found[0], "target_tokens": tokens}


def _int_param(request, name):
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() else None


@login_required
@require_http_methods(["GET", "POST"])
def advice_new(request):
    wanted = {"prediction": _int_param(request, "prediction"), "plan": _int_param(request, "plan")}
    choices = {"predictions": _choices(request, Job.Kind.PREDICTION, wanted["prediction"]),
               "plans": _choices(request, Job.Kind.PLAN, wanted["plan"])}
    initial = {k: v for k, v in wanted.items() if v is not None}
    plan = _visible(request, wanted["plan"], Job.Kind.PLAN)
    figures = _plan_figures(plan)
    if figures:  # the plan's target, as the form will use it, in its fields (the budget follows from the runs)
        initial.update(target_params=figures["target_params"], target_tokens=figures["target_tokens"])
    elif wanted["prediction"] is not None:
        initial.update(_prediction_target(request, wanted["prediction"]))
    template = "planner/runs/advice_new.html"
    context = {"plan": plan, "figures": {k: f"{v:.4g}" for k, v in figures.items()} if figures else None}
    if refused := _refused(request):
        form = AdviceForm(request.POST, initial=initial, **choices)
        form.add_error(None, refused)
        return throttled_response(request, render(request, template, {"form": form, **context}))
    form = AdviceForm(request.POST or None, request.FILES or None, initial=initial, **choices)
    status = 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        prediction = _own(request, data["prediction"], Job.Kind.PREDICTION) if data["prediction"] else None
        plan = _own(request, data["plan"], Job.Kind.PLAN) if data["plan"] else None
        runs = prediction.input.get("runs", []) if prediction else data["runs"]
        source = {"filename": data["file"].name} if data.get("file") else {}
        try:
            job = advice_enqueue(runs=runs, target_params=data["target_params"], target_tokens=data["target_tokens"],
                                 budget_flops=data["budget_flops"], plan=plan, prediction=prediction,
                                 max_runs=data["max_runs"], source=source, created_by=request.user)
            return redirect("advice-page", pk=job.pk)
        except AdviceRequestError as exc:
            field = exc.field if exc.field in form.fields else ("file" if data.get("file") else "prediction")
            form.add_error(field, exc.messages)
        except JobEnqueueError as exc:
            form.add_error(None, str(exc))
            status = 503
    return render(request, template, {"form": form, **context}, status=status)


@require_safe
@login_required
def advice_page(request, pk):
    job = _own(request, pk, Job.Kind.ADVICE)
    return render(request, "planner/runs/advice.html", {**_job_context(job), **advice_summary(job)})

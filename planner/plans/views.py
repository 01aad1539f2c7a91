"""Pages for plans: the form, the plan page (progress, then the plan explained), its figures and files, and
/plans/, the list of a user's plans and predictions.

Planning needs a login, like predictions and the API's writes: a plan is a job,
and jobs are private to their creator (and staff). Anonymous plans would need
unguessable URLs and a way to keep anonymous users from filling the queue; an
account costs a team nothing (admin or `createsuperuser`), so the form asks for one.
"""
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from ..api.throttling import form_throttle, throttled_response
from ..errormodels.services import error_model_active, error_model_rebuild
from ..jobs.heartbeat import job_queue, job_stall
from ..jobs.models import Job
from ..jobs.services import JobEnqueueError
from .forms import PlanForm
from .plots import PLOTS
from .services import (NO_MODEL_MESSAGE, PLAN_FILES, REQUEST_FIELDS, NoErrorModel, NoPlanFile, plan_enqueue,
                       plan_file, plan_prediction_form_url)
from .summary import g, pct, plan_summary, request_value

_pct = pct  # the name tests and older callers use


def _form_context(form) -> dict:
    return {"form": form, "error_model": error_model_active(), "rebuild": error_model_rebuild()}


@login_required
@require_http_methods(["GET", "POST"])
def plan_new(request):
    form = PlanForm(request.POST or None)
    status = 200
    if request.method == "POST" and (refused := form_throttle(request, "plans")):
        form.add_error(None, refused)  # before validation, as the API counts every POST
        return throttled_response(request, render(request, "planner/plan_new.html", _form_context(form)))
    if request.method == "POST" and form.is_valid():
        try:
            job = plan_enqueue(data=form.cleaned_data, created_by=request.user)
            return redirect("plan-page", pk=job.pk)
        except NoErrorModel:
            form.add_error(None, f"Plans cannot be made yet: {NO_MODEL_MESSAGE} (staff: or run "
                                 "`manage.py rebuild_error_model`).")
            status = 409
        except JobEnqueueError as exc:
            form.add_error(None, str(exc))  # nothing was created: the same form, ready to send again
            status = 503
    # Field errors answer 200, as every form here does (Django's convention): a 4xx document is logged as a
    # console error by browsers. Scripts use the API, which answers 400 naming the field.
    return render(request, "planner/plan_new.html", _form_context(form), status=status)


def _own_plan(request, pk) -> Job:
    # Another user's plan is a 404, exactly like a missing one: ids cannot be probed.
    return get_object_or_404(Job.objects.visible_to(request.user).select_related("created_by"), pk=pk,
                             kind=Job.Kind.PLAN)


def _downloads(job: Job, plan: dict) -> list[dict]:
    names = PLAN_FILES if "recommended" in plan else ["plan.json"]
    what = {"plan.json": "the plan (JSON, as the API stores it)", "plan.csv": "the runs to train (CSV)",
            "prediction-template.csv": "a template for the prediction: each run's evaluation points, value empty"}
    return [{"url": reverse("plan-file", args=[job.pk, name]), "name": name, "what": what[name]} for name in names]


@require_safe
@login_required
def plan_page(request, pk):
    job = _own_plan(request, pk)
    succeeded = job.status == Job.Status.SUCCEEDED and job.result
    plan = plan_summary(job.result) if succeeded else None
    context = {
        "job": job,
        "percent": round(job.progress * 100),
        "refresh": not job.is_finished,
        "stall": job_stall(job),
        "queue": job_queue(job),
        "request_fields": [(k, request_value(job.input[k])) for k in REQUEST_FIELDS if k in job.input],
        "plan": plan,
        "plots": [name for name in PLOTS if name != "isoflop" or (plan and plan["version"] >= 2)],
        "downloads": _downloads(job, job.result) if succeeded else [],
        "predict_url": plan_prediction_form_url(job) if succeeded else None,
    }
    return render(request, "planner/plan.html", context)


@require_safe
@login_required
def plan_plot(request, pk, name):
    job = _own_plan(request, pk)
    if name not in PLOTS or job.status != Job.Status.SUCCEEDED or not job.result:
        raise Http404("No such plot: the plan has not succeeded, or the plot is unknown.")
    try:
        png = PLOTS[name](job.result)
    except KeyError as exc:  # a plan stored before this figure existed
        raise Http404(f"This plan has no {name} figure: {exc}") from exc
    response = HttpResponse(png, content_type="image/png")
    # A succeeded job never changes, but it is private.
    response["Cache-Control"] = "private, max-age=86400"
    return response


@require_safe
@login_required
def plan_download(request, pk, name):
    job = _own_plan(request, pk)
    try:
        content_type, filename, content = plan_file(job=job, name=name)
    except NoPlanFile as exc:
        raise Http404(str(exc)) from exc
    response = HttpResponse(content, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, max-age=86400"
    return response


# --- /plans/: the user's plans and predictions ------------------------------------------

LIST_PAGE_SIZE = 50


def _row(job: Job) -> dict:
    data = job.input or {}
    tokens = data.get("target_tokens")
    tokens = ", ".join(g(t) for t in tokens) if isinstance(tokens, list) else g(tokens)
    if job.kind == Job.Kind.PLAN:
        url = reverse("plan-page", args=[job.pk])
        budget = (f"budget {g(data['budget_flops'])} FLOPs" if data.get("budget_flops") is not None
                  else f"budget {pct(data.get('budget_fraction'))} of its compute")
        what = f"{g(data.get('target_params'))} parameters, " + (
            f"{tokens} tokens" if data.get("target_tokens") is not None
            else f"{g(data.get('target_compute'))} FLOPs") + f"; {budget}"
        answer = (job.result or {}).get("recommended", {}).get("description", "") if job.result else ""
    else:
        url = reverse("job-page", args=[job.pk])
        source = data.get("filename") or data.get("family") or "runs"
        what = f"{g(data.get('target_params'))} parameters on {tokens} tokens, from {source} ({data.get('n_rows', '?')} rows)"
        prediction = (job.result or {}).get("prediction")
        answer = (f"loss {', '.join(f'{p:.4g}' for p in prediction)}" if isinstance(prediction, list)
                  else f"loss {prediction:.4g}" if prediction is not None else "")
    return {"job": job, "url": url, "what": what, "answer": answer, "queue": job_queue(job), "stall": job_stall(job)}


@require_safe
@login_required
def plan_list(request):
    jobs = (Job.objects.visible_to(request.user).filter(kind__in=[Job.Kind.PLAN, Job.Kind.PREDICTION])
            .select_related("created_by").order_by("-created_at", "-pk"))
    page = Paginator(jobs, LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "rows": [_row(job) for job in page], "all_users": request.user.is_staff,
               "refresh": any(not job.is_finished for job in page)}
    return render(request, "planner/plan_list.html", context)

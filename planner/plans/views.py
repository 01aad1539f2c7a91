"""Pages for plans: the form, the plan page (progress, then the plan) and its two plots.

Planning needs a login, like predictions and the API's writes: a plan is a job,
and jobs are private to their creator (and staff). Anonymous plans would need
unguessable URLs and a way to keep anonymous users from filling the queue; an
account costs a team nothing (admin or `createsuperuser`), so the form asks for one.
"""
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from fits import ARE_CAP

from ..api.throttling import form_throttle, throttled_response
from ..errormodels.services import error_model_active
from ..jobs.heartbeat import job_stall
from ..jobs.models import Job
from ..jobs.services import JobEnqueueError
from .forms import PlanForm
from .plots import PLOTS
from .services import NO_MODEL_MESSAGE, REQUEST_FIELDS, NoErrorModel, plan_enqueue


@login_required
@require_http_methods(["GET", "POST"])
def plan_new(request):
    form = PlanForm(request.POST or None)
    status = 200
    if request.method == "POST" and (refused := form_throttle(request, "plans")):
        form.add_error(None, refused)  # before validation, as the API counts every POST
        return throttled_response(request, render(request, "planner/plan_new.html",
                                                  {"form": form, "error_model": error_model_active()}))
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
    context = {"form": form, "error_model": error_model_active()}
    return render(request, "planner/plan_new.html", context, status=status)


def _own_plan(request, pk) -> Job:
    # Another user's plan is a 404, exactly like a missing one: ids cannot be probed.
    return get_object_or_404(Job.objects.visible_to(request.user).select_related("created_by"), pk=pk,
                             kind=Job.Kind.PLAN)


def _g(x) -> str:
    return "-" if x is None else f"{x:.3g}"


def _pct(x) -> str:
    # None: the bound overflowed (stored as null), i.e. unbounded; the error model caps what it expects.
    if x is None:
        return "unbounded"
    if x >= ARE_CAP:
        return f"\u2265{ARE_CAP * 100:.0f}%"
    return f"{x * 100:.3g}%"


def _request_value(x) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _summary(plan: dict) -> dict:
    """The stored plan, formatted for the page (numbers as people read them)."""
    models = [{"params": _g(m["params"]), "tokens": _g(m["tokens"]), "flops": _g(m["flops"]),
               "tokens_per_param": f"{m['tokens'] / m['params']:.1f}"} for m in plan["models"]]
    schedule = plan["schedule"]
    opt = plan["compute_optimal"]
    request = plan["request"]
    return {
        "models": models,
        "total_flops": _g(sum(m["flops"] for m in plan["models"])),
        "budget_flops": _g(request["budget_flops"]),
        "target": {"params": _g(request["target_params"]), "tokens": _g(request["target_tokens"]),
                   "compute": _g(request["target_compute"])},
        "share": _pct(plan["design"]["train_compute_share"]),
        "scale_up": f"{plan['design']['scale_up']:.1f}",
        "expected": {k: _pct(v) for k, v in plan["expected_are"].items()},
        "schedule": {
            "every": _g(schedule["evaluate_every_tokens"]),
            "per_run": schedule["checkpoints_per_run"],
            "used": schedule["checkpoints_used_per_run"],
            "drop": ", ".join(_g(t) for t in schedule["drop_before_tokens"]),
        },
        "naive": [{"name": n["name"], "sizes": ", ".join(_g(s) for s in n["sizes"]), "p10": _pct(n["p10"]),
                   "p50": _pct(n["p50"]), "p90": _pct(n["p90"])} for n in plan["naive"]],
        "frontier": [{"budget": _g(f["budget_flops"]), "fraction": _pct(f["budget_fraction"]),
                      "n_models": f["n_models"], "largest": _g(f["largest_params"]), "p10": _pct(f["p10"]),
                      "p50": _pct(f["p50"]), "p90": _pct(f["p90"]), "chosen": f["chosen"]} for f in plan["frontier"]],
        "optimal": {"params": _g(opt["params"]), "tokens": _g(opt["tokens"]),
                    "tokens_per_param": f"{opt['tokens_per_param']:.1f}",
                    "interval": " - ".join(_g(p) for p in opt["params_interval"]), "source": opt["source"]},
        "warnings": plan.get("warnings", []),
        "reasons": plan.get("reasons", {}),
        "version": plan.get("error_model_version"),
    }


@require_safe
@login_required
def plan_page(request, pk):
    job = _own_plan(request, pk)
    succeeded = job.status == Job.Status.SUCCEEDED and job.result
    context = {
        "job": job,
        "percent": round(job.progress * 100),
        "refresh": not job.is_finished,
        "stall": job_stall(job),
        "request_fields": [(k, _request_value(job.input[k])) for k in REQUEST_FIELDS if k in job.input],
        "plan": _summary(job.result) if succeeded else None,
    }
    return render(request, "planner/plan.html", context)


@require_safe
@login_required
def plan_plot(request, pk, name):
    job = _own_plan(request, pk)
    if name not in PLOTS or job.status != Job.Status.SUCCEEDED or not job.result:
        raise Http404("No such plot: the plan has not succeeded, or the plot is unknown.")
    response = HttpResponse(PLOTS[name](job.result), content_type="image/png")
    # A succeeded job never changes, but it is private.
    response["Cache-Control"] = "private, max-age=86400"
    return response

"""Which run to train next, as a job: ``fits.advise`` over the runs so far, the target and the FLOPs left.

The runs come from one of the user's predictions (its runs and, unless given, its target) or are given
(JSON, or a runs CSV). The budget is given in FLOPs, or derived from one of the user's plans: the plan's
budget for the small models minus what the runs spent, each run counted at 6 N D of its planned tokens
(``run_tokens``, else its last checkpoint: a run still training is expected to finish on what was set aside
for it, as fits.advise assumes). The plan also gives the target unless the request or the prediction does.

The request is checked before any job exists (the runs by the importer's rules, the rest by
``fits.validate_advice_request``); the worker (:func:`advice_run`) ranks the candidates by the active error
model when one exists, else by the own fit, and stores ``Advice.to_dict()`` with where the budget came from.
"""
from __future__ import annotations

from fits import (
    AdviceInputError,
    FitInputError,
    PlanInputError,
    PlanRequest,
    advise,
    prepare_train,
    validate_advice_request,
)

from ..errormodels.services import error_model_loaded
from ..jobs.models import Job
from ..jobs.services import JobFailure, job_create
from ..predictions.services import DEFAULT_COVERAGE, PredictionInputError, prediction_check, runs_frame

MAX_RUNS = 3


class AdviceRequestError(ValueError):
    """A request that cannot be advised on; ``field`` names the input at fault."""

    def __init__(self, message: str, *, field: str, messages: list[str] | None = None):
        super().__init__(message)
        self.field = field
        self.messages = messages or [message]


def plan_figures(plan: Job) -> dict:
    """The plan's target and budget in numbers: its stored result's request, else its input resolved."""
    stored = (plan.result or {}).get("request") if plan.status == Job.Status.SUCCEEDED else None
    if stored:
        return {"target_params": float(stored["target_params"]), "target_tokens": float(stored["target_tokens"]),
                "budget_flops": float(stored["budget_flops"])}
    try:
        r = PlanRequest(**plan.input).resolved()
    except (PlanInputError, TypeError) as exc:
        raise AdviceRequestError(f"plan {plan.pk} has no budget to start from ({exc}).", field="plan") from None
    return {"target_params": float(r["n_t"]), "target_tokens": float(r["d_t"]), "budget_flops": float(r["budget"])}


def prediction_target(prediction: Job) -> dict:
    tokens = prediction.input["target_tokens"]
    return {"target_params": float(prediction.input["target_params"]),
            "target_tokens": float(max(tokens) if isinstance(tokens, list) else tokens)}


def spent_flops(runs: list[dict]) -> float:
    """Compute the runs take, 6 N D each at its planned tokens (run_tokens, else its last checkpoint)."""
    planned: dict[tuple, tuple[float, float]] = {}
    for r in runs:
        key = (r["model"], str(r.get("seed") or ""))
        tokens = max(float(r["tokens"]), float(r.get("run_tokens") or 0.0))
        params, seen = planned.get(key, (float(r["params"]), 0.0))
        planned[key] = (params, max(seen, tokens))
    return sum(6.0 * n * d for n, d in planned.values())


def advice_request(*, runs: list[dict], target_params=None, target_tokens=None, budget_flops=None,
                   plan: Job | None = None, prediction: Job | None = None, max_runs: int = 1) -> dict:
    """The request in numbers, checked (raises AdviceRequestError naming the field): target, budget, max_runs
    and where each came from."""
    target = {"target_params": target_params, "target_tokens": target_tokens}
    origin = {}
    sources = [("request", target)]
    figures = plan_figures(plan) if plan is not None else None
    if figures:
        sources.append((f"plan {plan.pk}", figures))
    if prediction is not None:
        sources.append((f"prediction {prediction.pk}", prediction_target(prediction)))
    for name in ("target_params", "target_tokens"):
        for where, values in sources:
            if values.get(name) is not None:
                target[name], origin[name] = float(values[name]), where
                break
        else:
            raise AdviceRequestError("Give the target's " + name.removeprefix("target_") + " (or a plan or a "
                                     "prediction to take it from).", field=name)
    if budget_flops is not None and plan is not None:
        raise AdviceRequestError("Give the budget in FLOPs or a plan to derive it from, not both.",
                                 field="budget_flops")
    budget = {"from": "request", "flops": budget_flops}
    if plan is not None:
        spent = spent_flops(runs)
        left = figures["budget_flops"] - spent
        budget = {"from": f"plan {plan.pk}", "plan": plan.pk, "plan_budget_flops": figures["budget_flops"],
                  "spent_flops": spent, "flops": left}
        if left <= 0:
            raise AdviceRequestError(
                f"The runs so far take {spent:.3g} FLOPs (6 N D at their planned tokens), all of plan {plan.pk}'s "
                f"budget of {figures['budget_flops']:.3g}: nothing is left for another run. Give a budget in FLOPs.",
                field="plan")
    elif budget_flops is None:
        raise AdviceRequestError("Give the FLOPs left for new runs, or a plan to derive them from.",
                                 field="budget_flops")
    try:
        prediction_check(runs=runs, target_params=target["target_params"], target_tokens=target["target_tokens"],
                         coverage=DEFAULT_COVERAGE)
    except PredictionInputError as exc:
        raise AdviceRequestError(str(exc), field=exc.field, messages=exc.messages) from None
    try:
        checked = validate_advice_request(prepare_train(runs_frame(runs)), target["target_params"],
                                          target["target_tokens"], budget["flops"], max_runs)
    except AdviceInputError as exc:
        field = "plan" if exc.field == "budget_flops" and plan is not None else exc.field
        raise AdviceRequestError(exc.reason[0].upper() + exc.reason[1:] + ".", field=field) from None
    except FitInputError as exc:
        raise AdviceRequestError(str(exc), field="runs") from None
    return {**checked, "budget": budget, "target_from": origin}


def advice_enqueue(*, runs: list[dict], source: dict | None = None, created_by=None, **request) -> Job:
    """Check the request (:func:`advice_request`) and queue the advice job; nothing is created on bad input.

    Runs of a prediction stay on it (the job keeps its id: a job row is read on every poll, and a prediction's
    runs never change); runs given are kept on the job.
    """
    checked = advice_request(runs=runs, **request)
    plan, prediction = request.get("plan"), request.get("prediction")
    job_input = {
        **({"runs": list(runs)} if prediction is None else {}), "n_rows": len(runs), **checked,
        **({"plan": plan.pk} if plan is not None else {}),
        **({"prediction": prediction.pk} if prediction is not None else {}),
        **(source or {}),
    }
    return job_create(kind=Job.Kind.ADVICE, input=job_input, created_by=created_by)


def advice_run(*, job: Job, progress) -> dict:
    """The ``advice`` job: rank candidate runs by the active error model (else the own fit) and advise."""
    data = job.input
    runs = data.get("runs")
    if runs is None:
        runs = Job.objects.filter(pk=data["prediction"], kind=Job.Kind.PREDICTION).values_list("input__runs",
                                                                                             flat=True).first()
        if runs is None:
            raise JobFailure(f"Prediction {data['prediction']}, whose runs this advice is for, was deleted.")
    progress(0.05, "fitting the runs so far")
    loaded = error_model_loaded()
    try:
        advice = advise(prepare_train(runs_frame(runs)), data["target_params"], data["target_tokens"],
                        data["budget_flops"], error_model=loaded[1] if loaded else None,
                        max_runs=int(data.get("max_runs", 1)))
    except AdviceInputError as exc:
        raise JobFailure(f"No advice: {exc.reason}.", details={"field": exc.field, "reason": exc.reason}) from exc
    except FitInputError as exc:
        raise JobFailure(f"The runs cannot be fitted: {exc}", details={"field": "runs"}) from exc
    progress(1.0, "done")
    return {**advice.to_dict(), "error_model_version": loaded[0].version if loaded else None,
            "budget": data["budget"], "target_from": data.get("target_from", {})}

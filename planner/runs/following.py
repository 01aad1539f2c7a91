"""Predictions that follow training: updates with newer checkpoints, and how the prediction moved as runs advanced.

An update is a new prediction linked to the previous one, not a change to it: a finished job never changes
(its page, result and plot are what the user saw), and the chain of predictions is the record of how the
prediction moved. The update's runs are the previous prediction's runs with the posted rows added: a
checkpoint posted again (same run, seed and tokens) replaces the earlier value, and a run's planned length
(``run_tokens``) is the newest one given. So a user may post only the new checkpoints, or the tracker's whole
export again. The target (parameters, tokens, coverage) is the previous one's. The new job's input keeps
``follows`` (the previous prediction's id) and ``snapshots`` (the earlier predictions of the chain, oldest
first, at most MAX_SNAPSHOTS - 1 of them).

The prediction job's runner (:func:`prediction_followed_run`, the runner of the ``prediction`` kind) is
planner.predictions' ``prediction_run`` followed, for predictions that follow training - runs imported
from a tracker, runs still in progress (``run_tokens`` past their last checkpoint), or an update - by
``fits.prediction_history``:

- ``history``: the runs as they are now, replayed at 8 shares of each run's planned tokens;
- ``uploads_history`` (updates only): the chain's snapshots, each prediction's runs as it was posted.

Both take their intervals from the active error model when one exists (as the prediction does), else from a
run-level bootstrap. Pages draw their figures from these stored histories (planner.runs.plots), never
refitting.
"""
from __future__ import annotations

from fits import FitInputError, json_safe, prediction_history, prepare_train

from ..errormodels.services import error_model_loaded
from ..jobs.models import Job
from ..predictions.services import (
    DEFAULT_COVERAGE,
    MAX_PREDICTION_ROWS,
    PredictionInputError,
    prediction_enqueue,
    prediction_run,
    runs_frame,
)

# At most this many predictions in a chain's history (fits.prediction_history's most as-of points).
MAX_SNAPSHOTS = 12
HISTORY_POINTS = 8
# Input keys of the previous prediction an update keeps (where its runs came from), unless it says otherwise.
KEPT_INPUT = ("family", "metric")


def _run_key(row: dict) -> tuple:
    return row["model"], str(row.get("seed") or "")


def merged_runs(previous: list[dict], posted: list[dict]) -> tuple[list[dict], dict]:
    """The previous runs with the posted rows: added, or replacing the same (model, seed, tokens).

    Returns the runs and what changed (rows added, replaced, unchanged; runs new to the chain).
    """
    out = [dict(r) for r in previous]
    at = {(*_run_key(r), float(r["tokens"])): i for i, r in enumerate(out)}
    added = replaced = unchanged = 0
    planned = {}
    for row in posted:
        row = dict(row)
        key = (*_run_key(row), float(row["tokens"]))
        if row.get("run_tokens") is not None:
            planned[_run_key(row)] = row["run_tokens"]
        if key not in at:
            at[key] = len(out)
            out.append(row)
            added += 1
        elif out[at[key]]["value"] != row["value"] or out[at[key]]["params"] != row["params"]:
            out[at[key]] = row
            replaced += 1
        else:
            unchanged += 1
    lengthened = set()
    for row in out:
        run = _run_key(row)
        if run in planned and row.get("run_tokens") != planned[run]:
            row["run_tokens"] = planned[run]
            lengthened.add(run)
    before = {_run_key(r) for r in previous}
    new_runs = sorted({_run_key(r) for r in posted} - before)
    return out, {"rows_posted": len(posted), "rows_added": added, "rows_replaced": replaced,
                 "rows_unchanged": unchanged, "runs_new": [m if not s else f"{m} seed {s}" for m, s in new_runs],
                 "runs_replanned": len(lengthened)}


def prediction_update_enqueue(*, previous: Job, runs: list[dict], source: dict | None = None, field: str = "runs",
                              created_by=None) -> Job:
    """Queue a prediction of ``previous``'s target from its runs plus ``runs`` (module docstring).

    Raises PredictionInputError (``field`` names the input that brought the runs) when nothing is new, or when
    the merged runs break the runs' rules; nothing is created then.
    """
    if previous.kind != Job.Kind.PREDICTION or "runs" not in (previous.input or {}):
        raise PredictionInputError("Only a prediction can be updated.", field="prediction")
    merged, change = merged_runs(previous.input["runs"], runs)
    if not change["rows_added"] and not change["rows_replaced"] and not change["runs_replanned"]:
        raise PredictionInputError(
            f"Nothing new: all {change['rows_posted']} posted checkpoints are already in prediction {previous.pk} "
            "with the same values.", field=field)
    if len(merged) > MAX_PREDICTION_ROWS:
        raise PredictionInputError(
            f"With these rows the prediction would hold {len(merged)} checkpoints; at most {MAX_PREDICTION_ROWS} are "
            "accepted. Start a new prediction from the latest runs instead.", field=field)
    chain = [*(previous.input.get("snapshots") or []), previous.pk][-(MAX_SNAPSHOTS - 1):]
    kept = {k: previous.input[k] for k in KEPT_INPUT if k in previous.input}
    return prediction_enqueue(
        runs=merged, target_params=previous.input["target_params"], target_tokens=previous.input["target_tokens"],
        coverage=previous.input.get("coverage", DEFAULT_COVERAGE),
        source={**kept, **(source or {}), "follows": previous.pk, "snapshots": chain, "update": change},
        created_by=created_by,
    )


def tracker_defaults(job: Job) -> dict | None:
    """The tracker import options of the newest prediction in ``job``'s chain whose runs came from logs (the
    defaults of an update from logs): {"options", "params", "job"}; None if none of them did."""
    if "tracker" in job.input:
        return {"options": job.input["tracker"]["options"], "params": job.input["tracker"]["params"], "job": job.pk}
    earlier = job.input.get("snapshots") or []
    for pk in reversed(earlier):
        found = Job.objects.filter(pk=pk, kind=Job.Kind.PREDICTION).values_list("input__tracker", flat=True).first()
        if found:
            return {"options": found["options"], "params": found["params"], "job": pk}
    return None


# --- the runner ----------------------------------------------------------------------


def follows_training(data: dict) -> bool:
    """Whether a prediction's input asks for its history: runs from a tracker, an update, or runs in progress."""
    if "tracker" in data or data.get("snapshots"):
        return True
    return any(r.get("run_tokens") is not None and r["run_tokens"] > r["tokens"] for r in data.get("runs", ()))


def _within(progress, start: float, end: float):
    """progress(fraction, message) of a part of the job, reported as its share of the whole."""
    def report(fraction: float, message: str = "") -> None:
        progress(start + (end - start) * fraction, message)
    return report


def _history(runs, target_params: float, target_tokens: float, coverage: float, loaded, **kwargs) -> dict:
    model = loaded[1] if loaded else None
    try:
        history = prediction_history(runs, target_params, target_tokens, coverage=coverage, error_model=model, **kwargs)
    except (FitInputError, ValueError) as exc:
        # The prediction stands; only its history could not be made (say why on the page).
        return {"error": str(exc)}
    return {**history.to_dict(), "error_model_version": loaded[0].version if loaded else None}


def snapshot_runs(job: Job) -> tuple[list[tuple[str, list[dict]]], list[int]]:
    """The chain's snapshots, oldest first, as (label, runs), ending with ``job``'s own; and the ids missing."""
    ids = list(job.input.get("snapshots") or [])
    found = dict(Job.objects.filter(pk__in=ids, kind=Job.Kind.PREDICTION).values_list("pk", "input__runs"))
    snaps = [(f"#{pk}", found[pk]) for pk in ids if found.get(pk)]
    return snaps + [(f"#{job.pk}", job.input["runs"])], [pk for pk in ids if not found.get(pk)]


def prediction_followed_run(*, job: Job, progress) -> dict:
    """The ``prediction`` job: planner.predictions' prediction, plus its history when it follows training."""
    if not follows_training(job.input):
        return prediction_run(job=job, progress=progress)
    result = prediction_run(job=job, progress=_within(progress, 0.0, 0.6))
    loaded = error_model_loaded()
    target_params = float(result["target_params"])
    target_tokens = max(float(p["tokens"]) for p in result["points"])  # the target's final tokens
    coverage = float(result["coverage"])
    progress(0.65, "replaying the prediction as the runs advanced")
    result["history"] = _history(prepare_train(runs_frame(job.input["runs"])), target_params, target_tokens, coverage,
                                 loaded, points=HISTORY_POINTS)
    if job.input.get("snapshots"):
        progress(0.8, "the prediction over the chain of updates")
        snaps, missing = snapshot_runs(job)
        frames = [prepare_train(runs_frame(runs)) for _, runs in snaps]
        result["uploads_history"] = {
            **_history(frames, target_params, target_tokens, coverage, loaded, labels=[label for label, _ in snaps]),
            "jobs": [int(label[1:]) for label, _ in snaps], "missing": missing,
        }
    progress(1.0, "done")
    return json_safe(result)

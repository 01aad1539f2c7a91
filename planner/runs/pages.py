"""What the pages show, from the stored jobs (numbers formatted as people read them; nothing is refitted)."""
from __future__ import annotations

import math

import pandas as pd

from ..jobs.models import Job
from ..predictions.services import runs_frame


def _g(x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def _pct(x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.3g}%"


def _as_of(value, axis: str) -> str:
    if axis == "share":
        return f"{100 * value:.0f}%"
    if axis == "tokens":
        return f"{value:.3g}"
    return str(value)


def history_summary(data: dict | None) -> dict | None:
    """A stored fits.PredictionHistory (to_dict) for a table: one row per as-of point."""
    if not data:
        return None
    if "history" not in data:
        return {"error": data.get("error", "the history could not be made")}
    rows = []
    for row in data["history"]:
        label = _as_of(row["as_of"], data["axis"])
        rows.append({
            "as_of": label, "job": int(label[1:]) if data["axis"] == "snapshot" and label[1:].isdigit() else None,
            "share_seen": _pct(row["share_seen"]), "n_sizes": row["n_sizes"], "n_runs": row["n_runs"],
            "n_checkpoints": row["n_checkpoints"], "compute": _g(row["compute_seen"]),
            "prediction": _g(row["prediction"]), "lower": _g(row["lower"]), "upper": _g(row["upper"]),
            "width": _pct(math.expm1(row["width_log"])) if row["width_log"] is not None else "-",
            "method": row["method"], "error": row["error"],
        })
    axis = {"share": "share of each run's planned tokens", "tokens": "tokens seen by every run",
            "snapshot": "prediction of the chain"}[data["axis"]]
    interval = (f"error model v{data['error_model_version']}" if data["interval"] == "error model"
                else f"run-level bootstrap ({data['n_boot']} replicates) and the corpus's table of errors")
    return {"rows": rows, "axis": axis, "message": data["message"], "stopped": data["stopped_narrowing"],
            "coverage": f"{data['coverage']:.0%}", "interval": interval, "missing": data.get("missing", [])}


def runs_table(runs: list[dict]) -> list[dict]:
    """One row per run: size, checkpoints, tokens seen and planned, the share seen."""
    if not runs:
        return []
    frame = runs_frame(runs)
    frame["planned"] = frame["run_tokens"].fillna(0.0)
    grouped = frame.groupby(["model", "seed"], sort=False).agg(
        params=("params", "first"), checkpoints=("tokens", "size"), first=("tokens", "min"), last=("tokens", "max"),
        planned=("planned", "max"))
    out = []
    for (model, seed), row in grouped.sort_values("params").iterrows():
        planned = max(row["planned"], row["last"])
        out.append({"model": model, "seed": seed, "params": _g(row["params"]), "checkpoints": int(row["checkpoints"]),
                    "first": _g(row["first"]), "last": _g(row["last"]),
                    "planned": _g(planned) if row["planned"] else "-", "share": _pct(row["last"] / planned),
                    "in_progress": bool(row["planned"] and row["last"] < row["planned"])})
    return out


def tracker_summary(tracker: dict | None) -> dict | None:
    if not tracker:
        return None
    report = tracker["report"]
    options = {k: v for k, v in tracker["options"].items() if v not in (None, "", [])}
    return {
        "filename": tracker["filename"], "options": options, "lines": report["lines"],
        "counts": {k: report[k] for k in ("values_read", "rows_kept", "values_skipped", "tokens_values_used")},
        "runs": [{**r, "params": _g(r["params"]), "tokens_per_step": _g(r["tokens_per_step"]),
                  "run_tokens": _g(r["run_tokens"])} for r in report["runs"]],
        "n_runs": report["n_runs"], "skipped": report["skipped"], "n_skipped_groups": report["n_skipped_groups"],
        "ignored_files": report["ignored_files"], "n_ignored_files": report["n_ignored_files"],
        "unknown_params": report["unknown_params"], "notes": report["notes"], "thinned": tracker.get("thinned"),
    }


def prediction_summary(job: Job) -> dict:
    """A prediction as its progress page shows it: the last point's prediction, the runs, the histories."""
    data, result = job.input, job.result or {}
    succeeded = job.status == Job.Status.SUCCEEDED and "points" in result
    last = max(result["points"], key=lambda p: p["tokens"]) if succeeded else None
    return {
        "target": {"params": _g(data.get("target_params")), "tokens": _g(last["tokens"]) if last else "-"},
        "prediction": {"value": _g(last["prediction"]), "lower": _g(last["lower"]), "upper": _g(last["upper"]),
                       "coverage": f"{result['coverage']:.0%}", "from": (result.get("interval") or {}).get("from", "")}
        if last else None,
        "follows": data.get("follows"), "snapshots": data.get("snapshots") or [], "update": data.get("update"),
        "tracker": tracker_summary(data.get("tracker")),
        "runs": runs_table(data.get("runs") or []),
        "history": history_summary(result.get("history")) if succeeded else None,
        "uploads": history_summary(result.get("uploads_history")) if succeeded else None,
        "follows_training": succeeded and "history" in result,
    }


def _quantiles(q: dict | None) -> dict | None:
    return None if not q else {k: _pct(q.get(k)) for k in ("p10", "p50", "p90")}


def advice_summary(job: Job) -> dict:
    """An advice job as its page shows it: the request, then the advised runs, the expected ARE, the rest."""
    data, result = job.input, job.result or {}
    budget = data.get("budget") or {}
    request = {
        "target_params": _g(data.get("target_params")), "target_tokens": _g(data.get("target_tokens")),
        "budget_flops": _g(data.get("budget_flops")), "budget_from": budget.get("from", ""),
        "plan_budget": _g(budget.get("plan_budget_flops")), "spent": _g(budget.get("spent_flops")),
        "plan": data.get("plan"), "prediction": data.get("prediction"), "max_runs": data.get("max_runs", 1),
        "n_rows": data.get("n_rows"), "target_from": data.get("target_from") or {},
    }
    if job.status != Job.Status.SUCCEEDED or "runs" not in result:
        return {"request": request, "advice": None}
    runs = [{"params": _g(r["params"]), "tokens": _g(r["tokens"]), "flops": _g(r["flops"]),
             "tokens_per_param": f"{r['tokens_per_param']:.1f}", "scale_up": f"{r['scale_up']:.3g}",
             "every": _g(r["evaluate_every_tokens"]), "checkpoints": r["checkpoints"],
             "drop": _g(r["drop_before_tokens"]), "after": _quantiles(r["expected_are_after"]),
             "error_model": _quantiles(r.get("error_model")),
             "own_fit": _quantiles((r.get("own_fit") or {}).get("expected"))}
            for r in result["runs"]]
    others = [{"params": _g(c["params"]), "tokens": _g(c["tokens"]), "flops": _g(c["flops"]),
               "scale_up": f"{c['scale_up']:.3g}", "after": _quantiles(c["expected_are_after"])}
              for c in result["runner_ups"]]
    current = result["current"]
    expected = result["expected_are"]
    return {"request": request, "advice": {
        "runs": runs, "runner_ups": others, "ranked_by": result["ranked_by"], "evidence": expected["evidence"],
        "now": _quantiles(expected["now"]), "after": _quantiles(expected["after"]),
        "after_runs": expected["after_runs"],
        "reasons": result["reasons"], "warnings": result["warnings"], "version": result.get("error_model_version"),
        "current": {"sizes": ", ".join(_g(s) for s in current["sizes"]), "n_runs": current["n_runs"],
                    "compute": _g(current["compute"]), "scale_up": f"{current['scale_up']:.3g}",
                    "method": current["method"], "prediction": _g(current["prediction"])},
        "recipe": result["recipe"].get("description", ""),
    }}


def runs_csv(runs: list[dict]) -> str:
    """The runs as the canonical runs table (../shared/CORPUS_FORMAT.md, "Runs for a prediction")."""
    frame = pd.DataFrame(list(runs))
    columns = [c for c in ("model", "params", "tokens", "value", "seed", "step", "run_tokens") if c in frame]
    frame = frame[columns]
    if "params" in frame:
        frame["params"] = frame["params"].astype("int64")
    if "step" in frame:
        frame["step"] = frame["step"].astype("Int64")
    return frame.to_csv(index=False, lineterminator="\n")  # floats as their shortest exact text

"""Each planned run's own schedule, and the plan as files to start training from.

Every run is evaluated about :data:`EVALUATIONS_PER_RUN` times at an interval
of its own (a share of its own tokens, rounded down to two significant digits
so it is a number a training config takes), plus once at its end: a short run
gets as many evaluations through its training as a long one. The fit later
drops each run's checkpoints before min(``min_tokens``, half the run) and uses
at most ``max_per_run`` of the rest (:data:`fits.policy.DEFAULT_POLICY`).

:func:`plan_csv` and :func:`prediction_template_csv` render a plan (its
``to_dict()``, as stored) as CSV: one row per run, and the runs' evaluation
points in the "Runs for a prediction" format (``model, params, tokens, value``)
with ``value`` left empty, to fill in once the runs are trained.
"""
from __future__ import annotations

import csv
import io
import math

import numpy as np

from .policy import DEFAULT_POLICY, CheckpointPolicy

EVALUATIONS_PER_RUN = 50
PLAN_CSV_COLUMNS = ("model", "params", "tokens", "flops", "tokens_per_param", "eval_every_tokens", "evaluations",
                    "drop_before_tokens", "checkpoints_used")
TEMPLATE_COLUMNS = ("model", "params", "tokens", "value")


def size_label(n: float) -> str:
    """1.1e8 -> '110M', 7e9 -> '7B'."""
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.3g}"


def _round_down(x: float, digits: int = 2) -> float:
    """``x`` rounded down to ``digits`` significant digits (4.137e7 -> 4.1e7)."""
    if x <= 0 or not math.isfinite(x):
        return x
    scale = 10 ** (math.floor(math.log10(x)) - digits + 1)
    return float(math.floor(x / scale * (1 + 1e-12)) * scale)


def evaluation_points(tokens: float, every: float) -> np.ndarray:
    """Tokens at which a run of ``tokens`` is evaluated: every ``every`` tokens, and at its end."""
    count = int(math.floor(tokens / every * (1 + 1e-12)))
    points = every * np.arange(1, count + 1)
    if points.size == 0 or tokens - points[-1] > 1e-9 * tokens:
        points = np.append(points, tokens)
    else:
        points[-1] = tokens
    return points


def run_schedule(params, tokens, *, policy: CheckpointPolicy = DEFAULT_POLICY,
                 evaluations: int = EVALUATIONS_PER_RUN) -> list[dict]:
    """One dict per run: its name, params, tokens, FLOPs, its own evaluation interval and what the fit uses.

    ``eval_every_tokens`` is at most half the run's tokens whatever ``evaluations`` (at least 2).
    """
    evaluations = max(int(evaluations), 2)
    out = []
    names = _names(params)
    for name, n, d in zip(names, params, tokens):
        n, d = float(n), float(d)
        every = _round_down(d / evaluations)
        points = evaluation_points(d, every)
        drop = float(min(policy.min_tokens, policy.max_run_fraction * d))
        kept = int(np.sum(points >= drop * (1 - 1e-12)))
        out.append({
            "model": name, "params": n, "tokens": d, "flops": 6 * n * d, "tokens_per_param": d / n,
            "eval_every_tokens": every, "evaluations": int(points.size), "drop_before_tokens": drop,
            "checkpoints_used": min(kept, policy.max_per_run) if policy.max_per_run else kept,
        })
    return out


def _names(params) -> list[str]:
    """Run names a team can keep: run1-110M, run2-350M, ... (by size, as the plan lists them)."""
    return [f"run{i + 1}-{size_label(float(n))}" for i, n in enumerate(params)]


def _number(x: float) -> str:
    """Counts (parameters, tokens) as whole numbers; others with 6 significant digits."""
    return str(int(round(x))) if abs(x) < 1e18 else f"{x:.6g}"


def plan_csv(plan: dict) -> str:
    """The plan's runs as CSV, one row per run (:data:`PLAN_CSV_COLUMNS`)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(PLAN_CSV_COLUMNS)
    for m in plan["recommended"]["models"]:
        writer.writerow([m["model"], _number(m["params"]), _number(m["tokens"]), f"{m['flops']:.6g}",
                         f"{m['tokens_per_param']:.4g}", _number(m["eval_every_tokens"]), m["evaluations"],
                         _number(m["drop_before_tokens"]), m["checkpoints_used"]])
    return buf.getvalue()


def prediction_template_csv(plan: dict) -> str:
    """A "Runs for a prediction" CSV of the plan's runs: a row per evaluation point, ``value`` empty."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(TEMPLATE_COLUMNS)
    for m in plan["recommended"]["models"]:
        for t in evaluation_points(float(m["tokens"]), float(m["eval_every_tokens"])):
            writer.writerow([m["model"], _number(m["params"]), _number(t), ""])
    return buf.getvalue()


__all__ = ["EVALUATIONS_PER_RUN", "PLAN_CSV_COLUMNS", "TEMPLATE_COLUMNS", "evaluation_points", "plan_csv",
           "prediction_template_csv", "run_schedule", "size_label"]

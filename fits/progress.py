"""Predictions that follow training: the target's predicted loss and interval as the runs advanced.

While the small runs train, a team re-fits every so often and asks whether the
prediction has settled. :func:`prediction_history` replays that from the runs
as logged so far: it cuts the runs back to a few *as-of* points (each
checkpoint's tokens say when it was logged), fits each cut with the library's
method and records the prediction, its interval and the method chosen. Runs
still in progress carry ``run_tokens`` (their planned final tokens); a complete
run's planned length is its last checkpoint.

As-of axes (``by``):

* ``"share"`` (default) - every run cut at the same share of its *planned*
  tokens: runs launched together that finish together, whatever their length;
* ``"tokens"`` - every run cut at the same tokens seen: runs launched together
  at one batch size, the short ones finishing first;
* snapshots - a list of frames (successive uploads of the runs), in order.

The interval is the prediction's own (:meth:`fits.method.Fit.interval`): a
run-level bootstrap plus the corpus table's extrapolation error, or, with an
``error_model``, what that model's fit level expects of the design as it stood
at that point (the share of each run seen and the compute spent are design
features, so that band narrows as the runs advance, and it has no draw).

The interval *stops narrowing* when, over the last ``updates`` as-of points,
its relative width log(upper / lower) never fell ``tolerance`` or more below
what it was ``updates`` points earlier (defaults: 2 updates, 10%). Two updates,
not one: a single step can stall while the next one still narrows. 10%: with
the small ``n_boot`` a web job affords, the bootstrap width of the same data
moves by several percent from one draw to another (README), and a flag that
flaps with the draw says nothing. Once it fires, more of the same runs will
not sharpen the prediction: what is left is the extrapolation error, which a
run closer in size to the target reduces (:mod:`fits.advice`), or the
run-to-run noise, which more runs reduce.

Cost: one fit and one ``n_boot``-replicate bootstrap per as-of point (no
bootstrap with an error model), at most :data:`MAX_POINTS` points; an as-of
point that adds no checkpoint reuses the previous one's fit.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .jsonsafe import json_safe
from .method import DEFAULT_METHOD
from .trainset import FitInputError, TrainSet

HISTORY_VERSION = 1
AXES = ("share", "tokens")
DEFAULT_POINTS = 8
MAX_POINTS = 12
DEFAULT_N_BOOT = 20
NARROWING_TOLERANCE = 0.10
NARROWING_UPDATES = 2
TABLE_COLUMNS = ["as_of", "share_seen", "tokens_seen", "compute_seen", "n_sizes", "n_runs", "n_checkpoints",
                 "prediction", "lower", "upper", "width_log", "boot_sd_log", "method_sd_log", "method", "law",
                 "error"]


def runs_as_of(runs, *, share: float | None = None, tokens: float | None = None) -> pd.DataFrame:
    """The runs as logged at an as-of point: checkpoints within ``share`` of each run's planned tokens,
    or at most ``tokens`` tokens. Each row keeps ``run_tokens`` (its run's planned length), so a run cut
    part-way is known to be in progress."""
    if (share is None) == (tokens is None):
        raise ValueError("give one of share or tokens")
    frame = TrainSet.from_frame(runs).frame()
    if share is not None:
        keep = frame["tokens"] <= share * frame["run_tokens"] * (1 + 1e-9)
    else:
        keep = frame["tokens"] <= tokens * (1 + 1e-9)
    return frame[keep].reset_index(drop=True)


@dataclass
class PredictionHistory:
    """The target's prediction at each as-of point (``table``, one row per point) and whether it settled.

    ``stopped_narrowing``: None while there are too few points to say; ``plateau_since``: the as-of point
    after which the interval never narrowed by ``tolerance`` again (None if it still narrows).
    """

    target: dict
    axis: str
    coverage: float
    n_boot: int
    rule: dict
    table: pd.DataFrame
    stopped_narrowing: bool | None
    plateau_since: object
    message: str
    parts: dict = field(default_factory=dict)
    interval: str = "bootstrap"  # or "error model": where each point's interval came from
    version: int = HISTORY_VERSION

    def to_dict(self) -> dict:
        return json_safe({
            "version": self.version, "target": self.target, "axis": self.axis, "coverage": self.coverage,
            "n_boot": self.n_boot, "rule": self.rule, "stopped_narrowing": self.stopped_narrowing,
            "plateau_since": self.plateau_since, "message": self.message, "parts": self.parts,
            "interval": self.interval, "history": self.table.to_dict(orient="records"),
        })

    @classmethod
    def from_dict(cls, data: dict) -> "PredictionHistory":
        """Rebuild a stored history (e.g. to draw its figure from a job's result without refitting)."""
        if data.get("version") != HISTORY_VERSION:
            raise ValueError(f"prediction history version {data.get('version')!r} is not {HISTORY_VERSION}")
        table = pd.DataFrame(data["history"], columns=TABLE_COLUMNS)
        numeric = [c for c in TABLE_COLUMNS if c not in ("as_of", "tokens_seen", "method", "law", "error")]
        table[numeric] = table[numeric].apply(pd.to_numeric, errors="coerce")  # null (a failed point) -> NaN
        return cls(target=dict(data["target"]), axis=data["axis"], coverage=float(data["coverage"]),
                   n_boot=int(data["n_boot"]), rule=dict(data["rule"]), table=table,
                   stopped_narrowing=data["stopped_narrowing"], plateau_since=data["plateau_since"],
                   message=data["message"], parts=dict(data.get("parts") or {}),
                   interval=data.get("interval", "bootstrap"))

    def figure(self, **kwargs) -> Figure:
        return history_figure(self, **kwargs)


def prediction_history(runs, target_params: float, target_tokens: float, *, by: str = "share",
                       points: int = DEFAULT_POINTS, labels=None, coverage: float = 0.8,
                       n_boot: int = DEFAULT_N_BOOT, seed: int = 0, method=DEFAULT_METHOD, error_model=None,
                       tolerance: float = NARROWING_TOLERANCE, updates: int = NARROWING_UPDATES) -> PredictionHistory:
    """The target's predicted final loss and ``coverage`` interval as the runs advanced (module docstring).

    ``runs``: one runs frame (cut at ``points`` as-of points along ``by``), or a list of frames (snapshots,
    oldest first; ``labels`` name them, default 1, 2, ...). Every point uses the same bootstrap ``seed``, so
    the widths differ by the data more than by the draw. ``error_model``: take each point's interval from
    it (:meth:`fits.method.Fit.interval`), as a prediction with that model does.
    """
    n_t, d_t = float(target_params), float(target_tokens)
    if not (np.isfinite(n_t) and n_t > 0 and np.isfinite(d_t) and d_t > 0):
        raise FitInputError("target_params and target_tokens must be positive and finite")
    if not 1 <= int(points) <= MAX_POINTS:
        raise ValueError(f"points must be between 1 and {MAX_POINTS}, not {points}")
    if not 0 < tolerance < 1 or int(updates) < 1:
        raise ValueError("tolerance must be in (0, 1) and updates at least 1")
    if isinstance(runs, (list, tuple)):
        if not runs:
            raise FitInputError("no snapshots given")
        labels = list(labels) if labels is not None else list(range(1, len(runs) + 1))
        if len(labels) != len(runs):
            raise ValueError(f"{len(labels)} labels for {len(runs)} snapshots")
        snaps = [(label, TrainSet.from_frame(s).frame()) for label, s in zip(labels, runs)]
        axis = "snapshot"
    else:
        if by not in AXES:
            raise ValueError(f"by must be one of {AXES}, not {by!r}")
        snaps = _cuts(TrainSet.from_frame(runs).frame(), by, int(points))
        axis = by

    rows, previous = [], None
    for as_of, snap in snaps:
        if snap.empty:
            continue
        key = _rows_key(snap)
        if previous is not None and key == previous[0]:
            continue  # nothing logged since the last point: the same fit
        row = {"as_of": as_of, **_seen(snap), **_predict(snap, n_t, d_t, coverage, n_boot, seed, method, error_model)}
        rows.append(row)
        previous = (key, row)
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    stopped, since, parts = narrowing(table, tolerance, updates)
    kind = "bootstrap" if error_model is None else "error model"
    return PredictionHistory(
        target={"params": n_t, "tokens": d_t}, axis=axis, coverage=coverage,
        n_boot=n_boot if kind == "bootstrap" else 0,
        rule={"tolerance": tolerance, "updates": int(updates),
              "measure": "relative width log(upper / lower) of the interval"},
        table=table, stopped_narrowing=stopped, plateau_since=since, interval=kind,
        message=_message(table, stopped, since, axis, tolerance, updates, parts, kind), parts=parts)


def _cuts(frame: pd.DataFrame, by: str, points: int) -> list:
    """(as-of value, runs as of then) at ``points`` evenly spaced points up to what is logged now."""
    if by == "share":
        latest = float((frame["tokens"] / frame["run_tokens"]).max())
        grid = latest * np.arange(1, points + 1) / points
        return [(float(s), runs_as_of(frame, share=s)) for s in grid]
    latest = float(frame["tokens"].max())
    grid = latest * np.arange(1, points + 1) / points
    return [(float(t), runs_as_of(frame, tokens=t)) for t in grid]


def _rows_key(frame: pd.DataFrame) -> tuple:
    return len(frame), float(frame["tokens"].sum()), float(frame["value"].sum())


def _seen(snap: pd.DataFrame) -> dict:
    """How far the runs were: share of the planned tokens done, tokens per run, compute (6 N D) so far."""
    runs = snap.groupby(["model", "seed"], sort=False).agg(params=("params", "first"), tokens=("tokens", "max"),
                                                           planned=("run_tokens", "max"))
    labels = [m if not s else f"{m} seed {s}" for m, s in runs.index]
    return {
        "share_seen": float(runs["tokens"].sum() / runs["planned"].sum()),
        "tokens_seen": {label: float(t) for label, t in zip(labels, runs["tokens"])},
        "compute_seen": float(6.0 * (runs["params"] * runs["tokens"]).sum()),
        "n_sizes": int(snap["params"].nunique()),
        "n_runs": int(len(runs)),
        "n_checkpoints": int(len(snap)),
    }


def _predict(snap: pd.DataFrame, n_t: float, d_t: float, coverage: float, n_boot: int, seed: int, method,
             error_model) -> dict:
    """The prediction and interval from one as-of point's runs; a fit that cannot be made is a row with the
    reason (a history keeps its early points even when too little was logged to fit)."""
    empty = {"prediction": np.nan, "lower": np.nan, "upper": np.nan, "width_log": np.nan, "boot_sd_log": np.nan,
             "method_sd_log": np.nan, "method": "", "law": ""}
    if snap["params"].nunique() < 2:
        return {**empty, "error": "one size logged so far: a law needs two sizes to extrapolate in size"}
    try:
        fit = method.fit(snap)
        interval = fit.interval([n_t], [d_t], coverage=coverage, n_boot=n_boot, seed=seed, error_model=error_model)
    except FitInputError as exc:
        return {**empty, "error": str(exc)}
    lower, upper = float(interval.lower[0]), float(interval.upper[0])
    return {"prediction": float(interval.prediction[0]), "lower": lower, "upper": upper,
            "width_log": float(np.log(upper / lower)), "boot_sd_log": float(interval.boot_sd_log[0]),
            "method_sd_log": float(interval.method_sd_log),
            "method": str(fit.choice.get("method", fit.method.name)), "law": fit.result.form.name, "error": ""}


def narrowing(table: pd.DataFrame, tolerance: float = NARROWING_TOLERANCE,
              updates: int = NARROWING_UPDATES) -> tuple[bool | None, object, dict]:
    """(stopped, plateau_since, parts) from a history table's widths (the rule of the module docstring).

    ``parts``: at the last point, how much of the interval's log half-width is extrapolation error
    (the method part) and how much statistical (the bootstrap and run-to-run parts), in quadrature shares.
    """
    ok = table[np.isfinite(table["width_log"].to_numpy(dtype=float))]
    widths = ok["width_log"].to_numpy(dtype=float)
    parts = {}
    if len(ok):
        half = widths[-1] / 2
        method = float(ok["method_sd_log"].iloc[-1])
        share = min((method / half) ** 2, 1.0) if half > 0 else 0.0
        parts = {"half_width_log": half, "extrapolation_share": share, "statistical_share": 1.0 - share}
    if widths.size < updates + 1:
        return None, None, parts
    stopped = bool(widths[-updates:].min() > (1 - tolerance) * widths[-updates - 1])
    since = None
    if stopped:
        # The earliest point after which the interval never narrowed by the tolerance again.
        for i in range(widths.size - updates):
            if widths[i + 1:].min() > (1 - tolerance) * widths[i]:
                since = ok["as_of"].iloc[i]
                break
    return stopped, since, parts


def _fmt_as_of(value, axis: str) -> str:
    if axis == "share":
        return f"{100 * value:.0f}% of planned tokens"
    if axis == "tokens":
        return f"{value:.3g} tokens"
    return f"snapshot {value}"


def _message(table, stopped, since, axis, tolerance, updates, parts, kind) -> str:
    ok = table[np.isfinite(table["width_log"].to_numpy(dtype=float))]
    if ok.empty:
        return "no as-of point could be fitted yet (a law needs at least two sizes with checkpoints)"
    if stopped is None:
        return (f"{len(ok)} fitted as-of point(s): too few to say whether the interval still narrows "
                f"(the rule looks at the last {updates} updates)")
    if not stopped:
        return (f"the interval is still narrowing (by {tolerance:.0%} or more over the last {updates} updates): "
                "more of these runs should sharpen the prediction")
    extrapolation = parts.get("extrapolation_share", 0.0)
    if kind == "error model":
        why = ("; what is left is the error the error model expects of this design, which a run closer in size "
               "to the target lowers most")
    elif extrapolation >= 0.5:
        why = (f"; {extrapolation:.0%} of what is left is extrapolation error, which only a run closer in size to "
               "the target reduces")
    else:
        why = "; what is left is mostly statistical: more runs (sizes or seeds) narrow it, longer ones less"
    return (f"the interval stopped narrowing at {_fmt_as_of(since, axis)} (less than {tolerance:.0%} over "
            f"every later update){why}")


def history_figure(history: PredictionHistory, *, actual: float | None = None, title: str | None = None,
                   figsize=(8.0, 5.5)) -> Figure:
    """The predicted target loss and its interval band over the as-of axis, and the band's width below.

    Built without pyplot (safe in a worker); ``actual``: the target's real loss, drawn when known (backtests).
    """
    fig = Figure(figsize=figsize, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    ok = history.table[np.isfinite(history.table["width_log"].to_numpy(dtype=float))]
    numeric = history.axis != "snapshot" or pd.api.types.is_numeric_dtype(history.table["as_of"])
    x = (ok["as_of"].to_numpy(dtype=float) * (100 if history.axis == "share" else 1) if numeric
         else np.arange(len(ok)))
    band = f"{history.coverage:.0%} interval"
    if len(ok):
        top.fill_between(x, ok["lower"], ok["upper"], color="crimson", alpha=0.18, lw=0, label=band)
        top.plot(x, ok["prediction"], color="crimson", marker="o", ms=4, lw=1.6, label="predicted target loss")
        bottom.plot(x, 100 * np.expm1(ok["width_log"].to_numpy(dtype=float)), color="0.3", marker="o", ms=3)
    if actual is not None:
        top.axhline(actual, color="black", lw=1, ls=":", label="actual")
    if history.plateau_since is not None and len(ok):
        at = ok["as_of"].tolist().index(history.plateau_since)
        for ax in (top, bottom):
            ax.axvline(x[at], color="0.5", lw=1, ls="--")
        top.annotate("stopped narrowing", (x[at], top.get_ylim()[1]), fontsize=8, color="0.3",
                     xytext=(3, -12), textcoords="offset points")
    if history.axis == "tokens":
        bottom.set_xlabel("as of: tokens seen by every run")
    elif history.axis == "share":
        bottom.set_xlabel("as of: % of each run's planned tokens")
    else:
        bottom.set_xlabel("snapshot")
        if not numeric:
            bottom.set_xticks(x, [str(v) for v in ok["as_of"]])
    n, d = history.target["params"], history.target["tokens"]
    top.set_ylabel("predicted loss")
    top.set_title(title or f"target N={n:.3g}, D={d:.3g}: prediction as the runs advanced")
    bottom.set_ylabel("width (upper/lower - 1, %)")
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    if len(ok) or actual is not None:
        top.legend(fontsize=8, loc="upper right")
    return fig

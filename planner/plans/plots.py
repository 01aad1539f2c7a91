"""A plan's two figures, drawn on the server (matplotlib, Agg) from the stored plan (Plan.to_dict())."""
from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")  # no display on servers and workers
from matplotlib.figure import Figure  # noqa: E402  (after choosing the backend)


def _f(x) -> float:
    """A stored number as float: None (an overflowed bound) becomes NaN, which matplotlib leaves out.

    float() also because the JSON column returns whole numbers beyond int64 (9.8e18 FLOPs) as Python ints.
    """
    return math.nan if x is None else float(x)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def frontier_png(plan: dict) -> bytes:
    """Budget vs expected ARE: p50 line, p10-p90 band, the chosen plan marked, naive designs as points."""
    frontier = sorted(plan["frontier"], key=lambda f: _f(f["budget_flops"]))
    fig = Figure(figsize=(8, 5))
    ax = fig.add_subplot()
    x = [_f(f["budget_flops"]) for f in frontier]
    ax.fill_between(x, [_f(f["p10"]) * 100 for f in frontier], [_f(f["p90"]) * 100 for f in frontier],
                    alpha=0.2, color="tab:blue", label="p10-p90 of expected ARE")
    ax.plot(x, [_f(f["p50"]) * 100 for f in frontier], "-o", color="tab:blue",
            label="p50 (best design at each budget)")
    budget = _f(plan["request"]["budget_flops"])
    p10, p50, p90 = (_f(plan["expected_are"][q]) * 100 for q in ("p10", "p50", "p90"))
    ax.plot([budget], [p50], "*", color="tab:red", markersize=16, label="this plan (p50, p10-p90)", zorder=5)
    ax.vlines([budget], [p10], [p90], color="tab:red", linewidth=2, zorder=5)  # NaN (unbounded) draws nothing
    markers = {"one-large-model": "s", "k-smallest": "^", "five-log-spaced": "D"}
    for naive in plan["naive"]:
        ax.plot([budget], [_f(naive["p50"]) * 100], markers.get(naive["name"], "o"), color="0.35", markersize=8,
                linestyle="none", label=f"naive: {naive['name']} (p50)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("budget for the small models (FLOPs)")
    ax.set_ylabel("expected ARE on the target (%)")
    ax.set_title("Budget vs expected error")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return _png(fig)


def sizes_png(plan: dict) -> bytes:
    """The chosen sizes against their tokens (log-log), with the target and the compute-optimal split."""
    fig = Figure(figsize=(8, 5))
    ax = fig.add_subplot()
    models = plan["models"]
    ax.plot([_f(m["params"]) for m in models], [_f(m["tokens"]) for m in models], "o", color="tab:blue", markersize=9,
            label="small models to train")
    for m in models:
        ax.annotate(f"{m['flops']:.2g} FLOPs", (_f(m["params"]), _f(m["tokens"])), textcoords="offset points",
                    xytext=(6, -12), fontsize=8)
    request = plan["request"]
    ax.plot([_f(request["target_params"])], [_f(request["target_tokens"])], "*", color="tab:red", markersize=16,
            label="target")
    opt = plan.get("compute_optimal") or {}
    if opt.get("params"):
        ax.plot([_f(opt["params"])], [_f(opt["tokens"])], "x", color="tab:green", markersize=10, mew=2,
                label="compute-optimal split of the target's compute")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("tokens D")
    ax.set_title("Sizes and tokens")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return _png(fig)


PLOTS = {"frontier": frontier_png, "sizes": sizes_png}

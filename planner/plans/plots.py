"""A plan's figures, drawn on the server (matplotlib, Agg) from the stored plan (Plan.to_dict(), version 2;
version-1 plans keep their two figures): the budget frontier, the sizes and tokens, the iso-FLOP curves."""
from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")  # no display on servers and workers
from matplotlib.figure import Figure  # noqa: E402  (after choosing the backend)

from fits import iso_flop_figure  # noqa: E402


def _f(x) -> float:
    """A stored number as float: None (an overflowed bound) becomes NaN, which matplotlib leaves out.

    float() also because the JSON column returns whole numbers beyond int64 (9.8e18 FLOPs) as Python ints.
    """
    return math.nan if x is None else float(x)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _recommended(plan: dict) -> dict:
    return plan.get("recommended") or {**plan["expected_are"], "models": plan["models"]}


NAIVE_MARKERS = {"one-large-model": "s", "k-smallest": "^", "five-log-spaced": "D"}


def frontier_png(plan: dict) -> bytes:
    """Budget vs expected ARE: the best design's p50 and p10-p90 band at each budget, this plan marked, and at
    its budget the naive designs and the runners-up with their own p10-p90."""
    frontier = sorted(plan["frontier"], key=lambda f: _f(f["budget_flops"]))
    fig = Figure(figsize=(8, 5))
    ax = fig.add_subplot()
    x = [_f(f["budget_flops"]) for f in frontier]
    ax.fill_between(x, [_f(f["p10"]) * 100 for f in frontier], [_f(f["p90"]) * 100 for f in frontier],
                    alpha=0.2, color="tab:blue", label="p10-p90 of the best design at each budget")
    ax.plot(x, [_f(f["p50"]) * 100 for f in frontier], "-o", color="tab:blue", label="p50 of the best design")
    budget = _f(plan["request"]["budget_flops"])
    rec = _recommended(plan)
    p10, p50, p90 = (_f(rec[q]) * 100 for q in ("p10", "p50", "p90"))
    ax.plot([budget], [p50], "*", color="tab:red", markersize=16, label="this plan (p50; bar p10-p90)", zorder=5)
    ax.vlines([budget], [p10], [p90], color="tab:red", linewidth=2, zorder=5)  # NaN (unbounded) draws nothing
    # Side by side at the plan's budget (a log axis: small multiplicative offsets), so their bars do not overlap.
    others = [(n["name"], n, NAIVE_MARKERS.get(n["name"], "o"), "0.35") for n in plan["naive"]
              if not n.get("recommended")]
    others += [(f"runner-up {i + 1}", a, "o", "tab:purple") for i, a in enumerate(plan.get("alternatives") or [])
               if a.get("name") == "searched"][:3]
    for i, (label, d, marker, color) in enumerate(others):
        xi = budget * 1.12 ** (i + 1)
        ax.plot([xi], [_f(d["p50"]) * 100], marker, color=color, markersize=7, linestyle="none",
                label=f"{label} (p50; bar p10-p90)")
        ax.vlines([xi], [_f(d["p10"]) * 100], [_f(d["p90"]) * 100], color=color, linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("budget for the small models (FLOPs)")
    ax.set_ylabel("expected ARE on the target (%)")
    ax.set_title("Budget vs expected error (the other designs at this plan's budget: side by side to its right)",
                 fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _png(fig)


def sizes_png(plan: dict) -> bytes:
    """The planned runs' sizes against their tokens (log-log), the target, and the compute-optimal split of the
    target's compute with its 10-90% ranges."""
    fig = Figure(figsize=(8, 5))
    ax = fig.add_subplot()
    models = _recommended(plan)["models"]
    ax.plot([_f(m["params"]) for m in models], [_f(m["tokens"]) for m in models], "o", color="tab:blue", markersize=9,
            label="small models to train")
    for m in models:
        ax.annotate(f"{_f(m['flops']):.2g} FLOPs", (_f(m["params"]), _f(m["tokens"])), textcoords="offset points",
                    xytext=(6, -12), fontsize=8)
    request = plan["request"]
    ax.plot([_f(request["target_params"])], [_f(request["target_tokens"])], "*", color="tab:red", markersize=16,
            label="target")
    opt = plan.get("compute_optimal") or {}
    if opt.get("params"):
        n, d = _f(opt["params"]), _f(opt["tokens"])
        n_lo, n_hi = (_f(v) for v in opt.get("params_interval") or (n, n))
        d_lo, d_hi = (_f(v) for v in opt.get("tokens_interval") or (d, d))
        ax.errorbar([n], [d], xerr=[[n - n_lo], [n_hi - n]], yerr=[[d - d_lo], [d_hi - d]], fmt="x", color="tab:green",
                    markersize=10, mew=2, capsize=4, label="compute-optimal split of the target's compute (10-90%)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("tokens D")
    ax.set_title("Sizes and tokens")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return _png(fig)


def isoflop_png(plan: dict) -> bytes:
    """fits.iso_flop_figure: the iso-FLOP curves of the target's compute, the budget and each run (version 2)."""
    if "law" not in (plan.get("compute_optimal") or {}):
        raise KeyError("the plan predates the iso-FLOP figure")
    return _png(iso_flop_figure(plan))


PLOTS = {"isoflop": isoflop_png, "frontier": frontier_png, "sizes": sizes_png}

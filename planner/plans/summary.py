"""A stored plan (fits.Plan.to_dict(), version 2; version 1 as far as it goes) as the plan page reads it.

Numbers as people read them (3 significant digits, ARE in percent); nothing recomputed: what the page
shows is what the job stored, so the page, the API and the downloads agree.
"""
from __future__ import annotations

from fits import ARE_CAP


def g(x) -> str:
    return "-" if x is None else f"{x:.3g}"


def pct(x) -> str:
    # None: the bound overflowed (stored as null), i.e. unbounded; the error model caps what it expects.
    if x is None:
        return "unbounded"
    if x >= ARE_CAP:
        return f"\u2265{ARE_CAP * 100:.0f}%"
    return f"{x * 100:.3g}%"


def request_value(x) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _quantiles(d: dict) -> dict:
    return {q: pct(d.get(q)) for q in ("p10", "p50", "p90")}


def _runs(plan: dict) -> list[dict]:
    """The per-run schedule: each run with its own evaluation interval (version 1: the one shared interval)."""
    shared = (plan.get("schedule") or {}).get("evaluate_every_tokens")
    drops = (plan.get("schedule") or {}).get("drop_before_tokens") or []
    out = []
    for i, m in enumerate((plan.get("recommended") or {}).get("models") or plan.get("models") or []):
        out.append({
            "model": m.get("model", f"run{i + 1}"),
            "params": g(m["params"]), "tokens": g(m["tokens"]), "flops": g(m["flops"]),
            "tokens_per_param": f"{m['tokens'] / m['params']:.1f}",
            "every": g(m.get("eval_every_tokens", shared)),
            "evaluations": m.get("evaluations", "-"),
            "drop": g(m.get("drop_before_tokens", drops[i] if i < len(drops) else None)),
            "used": m.get("checkpoints_used", "-"),
        })
    return out


def _versus(factor: dict) -> str:
    parts = [f"x{v['p90_ratio']:.2f} against {v['against']}" for v in factor.get("versus", [])
             if abs(v["p90_ratio"] - 1) > 0.005]
    return "; ".join(parts)


def _alternatives(plan: dict) -> list[dict]:
    out = []
    for a in plan.get("alternatives") or []:
        sizes = a.get("sizes") or []
        out.append({
            "design": a["name"] if a.get("name") not in (None, "searched") else f"{len(sizes)} sizes",
            "sizes": ", ".join(g(s) for s in sizes), **_quantiles(a),
            "ratio": "-" if a.get("p90_over_recommended") is None else f"x{a['p90_over_recommended']:.2f}",
            "why": "; ".join(f["text"] for f in a.get("factors") or [])
                   or "it scores the same at p90 and loses on p50 or cost",
        })
    return out


def _optimal(opt: dict) -> dict:
    def interval(key):
        bounds = opt.get(key)
        return " - ".join(g(b) for b in bounds) if bounds else ""

    tpp = opt.get("tokens_per_param_interval")
    return {
        "params": g(opt.get("params")), "params_interval": interval("params_interval"),
        "tokens": g(opt.get("tokens")), "tokens_interval": interval("tokens_interval"),
        "tokens_per_param": f"{opt['tokens_per_param']:.1f}" if opt.get("tokens_per_param") else "-",
        "tokens_per_param_interval": " - ".join(f"{b:.1f}" for b in tpp) if tpp else "",
        "source": opt.get("source", ""), "uncertainty": opt.get("uncertainty", ""),
        "quantiles": " to ".join(f"{q:.0%}" for q in opt.get("interval", [])),
    }


def plan_summary(plan: dict) -> dict:
    """The stored plan, formatted for the page (numbers as people read them)."""
    request = plan["request"]
    recommended = plan.get("recommended") or {**plan["expected_are"], "models": plan["models"]}
    choice = plan.get("choice") or {}
    total = recommended.get("total_flops") or sum(m["flops"] for m in recommended["models"])
    return {
        "version": plan.get("version", 1),
        "description": recommended.get("description", ""),
        "recommended_name": recommended.get("name", "searched"),
        "runs": _runs(plan),
        "total_flops": g(total),
        "budget_flops": g(request["budget_flops"]),
        "target": {"params": g(request["target_params"]), "tokens": g(request["target_tokens"]),
                   "compute": g(request["target_compute"])},
        "share": pct(plan["design"]["train_compute_share"]),
        "scale_up": f"{plan['design']['scale_up']:.1f}",
        "expected": _quantiles(recommended),
        "schedule": plan["schedule"],
        "choice": {
            "summary": choice.get("summary", ""), "rule": choice.get("rule", ""),
            "candidates": choice.get("candidates"),
            "naive_left_out": choice.get("naive_left_out") or [],
            "factors": [{"factor": f["factor"], "value": f.get("value", ""), "text": f.get("text", ""),
                         "versus": _versus(f)} for f in choice.get("factors") or []],
        },
        "alternatives": _alternatives(plan),
        "naive": [{"name": n["name"], "sizes": ", ".join(g(s) for s in n["sizes"]), **_quantiles(n),
                   "recommended": n.get("recommended", False)} for n in plan.get("naive") or []],
        "frontier": [{"budget": g(f["budget_flops"]), "fraction": pct(f["budget_fraction"]),
                      "n_models": f["n_models"], "largest": g(f["largest_params"]), **_quantiles(f),
                      "chosen": f["chosen"]} for f in plan.get("frontier") or []],
        "optimal": _optimal(plan.get("compute_optimal") or {}),
        "warnings": [{"code": w.get("code", ""), "message": w.get("message", str(w))} if isinstance(w, dict)
                     else {"code": "", "message": str(w)} for w in plan.get("warnings") or []],
        "reasons": plan.get("reasons", {}),
        "error_model_version": plan.get("error_model_version"),
    }

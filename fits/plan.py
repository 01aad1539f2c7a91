"""Plans: which small models to train for a target, chosen by the error model.

:func:`recommend` scores every design a team might train at the budget - the
searched ones and the naive ones (:mod:`fits.designs`) - and recommends the one
whose plausible worst-case ARE (the error model's p90) is lowest, then the
lowest p50, then the cheaper: no design the plan shows has a lower p90. The plan
says why (runners-up, the factors that decided), warns with stable codes where
it should not be trusted blindly, gives each run its own evaluation schedule
(:mod:`fits.schedule`) and the compute-optimal split of the target's compute
(:mod:`fits.compute_optimal`).

:func:`evaluate_plans` is the proof: on held-out families it makes the
recommendation among the sizes and token counts the family actually has, and
compares the ARE it realised with the naive designs at the same budget.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .api import prepare_train
from .backtest import split_target
from .compute_optimal import compute_optimal
from .designs import MIN_TOKENS_PER_PARAM, NAIVE_DESIGNS, SEARCHED, all_designs, at_budget, decided_by, describe, \
    p90_factors, rank, runners_up, score
from .designs import best as pick_best
from .errormodel import ErrorModel, design_features
from .policy import DEFAULT_POLICY
from .schedule import EVALUATIONS_PER_RUN, run_schedule
from .sweep import FRACTIONS, evaluate_design, family_traits, run_compute, sweep_family

PLAN_VERSION = 2
SMALLEST_SENSIBLE_PARAMS = 1e6
MAX_PARAMS = 2**62  # the largest parameter count the corpus stores (fits.canonical)
MAX_EPOCHS = 1e4  # passes over the data; the corpus's most repeated runs make 9,000
# Tokens per parameter outside this range are flagged (extreme_tokens_per_param): published models train within it.
TOKENS_PER_PARAM_SANE = (1.0, 10_000.0)
FRONTIER_FACTORS = (1 / 30, 1 / 10, 1 / 3, 1.0, 3.0)  # the frontier's budgets, as multiples of the plan's


class PlanInputError(ValueError):
    """An impossible request; the message names the field and why (``fields``: every field at fault)."""

    def __init__(self, field: str, message: str, fields: tuple[str, ...] = ()):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message
        self.fields = tuple(fields) or (field,)


@dataclass
class PlanRequest:
    target_params: float
    target_tokens: float | None = None
    target_compute: float | None = None
    budget_flops: float | None = None
    budget_fraction: float | None = None
    min_size: float | None = None
    max_size: float | None = None
    max_models: int = 8
    max_epochs: float = 1.0  # > 1 if the target's data will repeat
    law: dict | None = None  # a reference family's fitted law, for the compute-optimal split

    def resolved(self) -> dict:
        """Validated numbers: target tokens and compute, budget, size bounds."""
        _refuse_conflicts(self)
        n_t = _positive("target_params", self.target_params, upper=MAX_PARAMS)
        if self.min_size is None and n_t / 2 < SMALLEST_SENSIBLE_PARAMS:
            raise PlanInputError("target_params", f"{n_t:.3g} is too small to plan for: the small models are at least "
                                                  f"{SMALLEST_SENSIBLE_PARAMS:.3g} parameters and at most half the "
                                                  "target (give min_size to go lower)")
        if self.target_tokens is not None:
            d_t = _positive("target_tokens", self.target_tokens)
        elif self.target_compute is not None:
            d_t = _positive("target_compute", self.target_compute) / (6 * n_t)
        else:
            raise PlanInputError("target_tokens", "give the target's tokens or its compute budget")
        c_t = 6 * n_t * d_t
        if not (math.isfinite(c_t) and d_t > 0):
            field = "target_tokens" if self.target_tokens is not None else "target_compute"
            raise PlanInputError(field, f"gives a target compute of {c_t:.3g} FLOPs for {n_t:.3g} parameters, "
                                        "beyond what a floating-point number can hold (about 1.8e308)")
        if self.budget_flops is not None:
            budget = _positive("budget_flops", self.budget_flops)
        elif self.budget_fraction is not None:
            frac = _positive("budget_fraction", self.budget_fraction)
            if frac > 1:
                raise PlanInputError("budget_fraction", f"must be a share of the target's compute (0-1], not {frac}")
            budget = frac * c_t
        else:
            raise PlanInputError("budget_flops", "give the budget for the small models (FLOPs or a fraction)")
        lo = _positive("min_size", self.min_size) if self.min_size is not None else max(SMALLEST_SENSIBLE_PARAMS,
                                                                                          n_t / 3000)
        hi = _positive("max_size", self.max_size) if self.max_size is not None else n_t / 2
        if hi >= n_t:
            raise PlanInputError("max_size", f"the small models must be smaller than the target ({n_t:.3g})")
        if lo > hi:
            raise PlanInputError("min_size", f"{lo:.3g} is larger than the largest allowed small model {hi:.3g}")
        k = _whole("max_models", self.max_models, 1, 20)
        epochs = _positive("max_epochs", self.max_epochs, upper=MAX_EPOCHS)
        if epochs < 1:
            raise PlanInputError("max_epochs", f"counts passes over the data, at least 1, not {self.max_epochs!r}")
        cheapest = 6 * lo * (MIN_TOKENS_PER_PARAM * lo)
        if budget < cheapest:
            raise PlanInputError(
                "budget_flops",
                f"{budget:.3g} FLOPs cannot train even one model of the smallest size {lo:.3g} on "
                f"{MIN_TOKENS_PER_PARAM:g} token per parameter ({cheapest:.3g} FLOPs)",
            )
        return {"n_t": n_t, "d_t": d_t, "c_t": c_t, "budget": budget, "lo": lo, "hi": hi, "k": k, "epochs": epochs}


# Pairs of fields that say the same thing two ways: given both, one would be silently ignored.
CONFLICTING_FIELDS = (
    ("budget_flops", "budget_fraction", "the small models' budget in FLOPs or as a share of the target's compute"),
    ("target_tokens", "target_compute", "the target's training as its tokens or as its compute"),
)


def _refuse_conflicts(request: "PlanRequest") -> None:
    for first, second, what in CONFLICTING_FIELDS:
        if getattr(request, first) is not None and getattr(request, second) is not None:
            raise PlanInputError(first, f"Both {first} and {second} were given; give {what}, not both.",
                                 fields=(first, second))


def _positive(name, value, upper: float | None = None) -> float:
    if isinstance(value, bool):  # float(True) is 1.0, but True is no size
        raise PlanInputError(name, f"must be a number, not {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise PlanInputError(name, f"must be a number, not {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise PlanInputError(name, f"must be positive and finite, not {value!r}")
    if upper is not None and v > upper:
        raise PlanInputError(name, f"must be at most {upper:.3g}, not {value!r}")
    return v


def _whole(name, value, lo: int, hi: int) -> int:
    v = _positive(name, value)
    if v != int(v) or not lo <= v <= hi:
        raise PlanInputError(name, f"must be a whole number between {lo} and {hi}, not {value!r}")
    return int(v)


@dataclass
class Plan:
    """A recommendation and everything that explains it; :meth:`to_dict` is the JSON the service stores.

    ``recommended`` (its p10/p50/p90 and per-run ``models``), ``naive`` (the naive designs, scored),
    ``alternatives`` (the runners-up), ``warnings`` (``[{"code", "message", ...}]``), ``choice`` (how it was
    chosen and the factors that decided). ``design``, ``models``, ``expected_are``, ``schedule``, ``frontier``,
    ``compute_optimal`` and ``reasons`` as in version 1 (``models`` is ``recommended["models"]``).
    """

    request: dict
    recommended: dict
    naive: list
    alternatives: list
    warnings: list
    choice: dict
    design: dict
    schedule: dict
    frontier: list
    compute_optimal: dict
    reasons: dict = field(default_factory=dict)
    version: int = PLAN_VERSION

    @property
    def models(self) -> list:
        return self.recommended["models"]

    @property
    def expected_are(self) -> dict:
        return {q: self.recommended[q] for q in ("p10", "p50", "p90")}

    def to_dict(self) -> dict:
        return {"version": self.version, "request": self.request, "recommended": self.recommended,
                "naive": self.naive, "alternatives": self.alternatives, "warnings": self.warnings,
                "choice": self.choice, "design": self.design, "models": self.models,
                "expected_are": self.expected_are, "schedule": self.schedule, "frontier": self.frontier,
                "compute_optimal": self.compute_optimal, "reasons": self.reasons}


def _frontier(model: ErrorModel, r: dict, pool: pd.DataFrame, top: pd.Series) -> list[dict]:
    """The best design (naive ones included) at budgets from 1/30 to 3x the one asked for, up to the target's."""
    budgets = [r["budget"] * f for f in FRONTIER_FACTORS if f != 1.0 and r["budget"] * f <= r["c_t"]]
    others = [at_budget(pool, r, r["epochs"], b).assign(_budget=b) for b in budgets]
    others = [o for o in others if not o.empty]
    best_at = {r["budget"]: top}
    if others:  # one scoring of every budget's candidates
        scored = score(model, pd.concat(others, ignore_index=True))
        best_at.update({b: pick_best(part) for b, part in scored.groupby("_budget")})
    return [{"budget_flops": b, "budget_fraction": b / r["c_t"], "name": str(d["name"]),
             "n_models": int(d["n_models"]), "largest_params": float(np.max(d["sizes"])),
             "p10": float(d["p10"]), "p50": float(d["p50"]), "p90": float(d["p90"]), "chosen": b == r["budget"]}
            for b, d in sorted(best_at.items())]


# What each feature of the error model's ranges is, and how to show its value.
RANGE_WORDS = {
    "log_scale_up": ("scale-up from the largest small model", lambda v: f"{math.exp(v):.3g}x"),
    "n_models": ("number of sizes", lambda v: f"{v:g}"),
    "log_compute_share": ("share of the target's compute", lambda v: f"{math.exp(v):.3g}"),
    "log_tokens_per_model": ("tokens per model", lambda v: f"{math.exp(v):.3g}"),
    "log_max_epochs": ("epochs over the data", lambda v: f"{math.exp(v):.3g}"),
}


def plan_warnings(model: ErrorModel, r: dict, chosen: pd.Series) -> list[dict]:
    """Warnings with stable codes: what a team should check before acting on the plan."""
    out = []
    if r["budget"] >= r["c_t"]:
        out.append({"code": "budget_exceeds_target", "fields": ["budget_flops", "budget_fraction"],
                    "message": f"The budget for the small models ({r['budget']:.3g} FLOPs) is at least the target's "
                               f"own compute ({r['c_t']:.3g} FLOPs): training the target itself costs no more. "
                               "Check the budget and the target's tokens."})
    outside = []
    x = design_features(pd.DataFrame([chosen]))
    for feat in chosen["outside"]:
        lo, hi = model.ranges[feat]
        words, show = RANGE_WORDS.get(feat, (feat, lambda v: f"{v:.3g}"))
        outside.append({"feature": feat, "of": "plan", "value": show(float(x[feat].iloc[0])),
                        "covered": [show(lo), show(hi)], "text": f"the plan's {words} {show(float(x[feat].iloc[0]))} "
                        f"(the sweep covered {show(lo)} to {show(hi)})"})
    if "log_tokens_per_model" in model.ranges:
        # The corpus's targets were trained on about as many tokens as their families' runs: a target beyond the
        # longest run the sweep saw is beyond any target it saw.
        lo, hi = model.ranges["log_tokens_per_model"]
        if not lo <= math.log(r["d_t"]) <= hi:
            outside.append({"feature": "target_tokens", "of": "target", "value": f"{r['d_t']:.3g}",
                            "covered": [f"{math.exp(lo):.3g}", f"{math.exp(hi):.3g}"],
                            "text": f"the target's {r['d_t']:.3g} tokens (the sweep's runs saw "
                                    f"{math.exp(lo):.3g} to {math.exp(hi):.3g})"})
    if outside:
        out.append({"code": "outside_corpus", "features": [o["feature"] for o in outside], "outside": outside,
                    "message": "Outside what the error model's sweep covered: " + "; ".join(o["text"] for o in outside)
                               + ". The expected ARE is an extrapolation; its interval is widened there."})
    lo, hi = TOKENS_PER_PARAM_SANE
    extreme = [f"{label} sees {ratio:.3g} tokens per parameter"
               for label, ratio in (("the target", r["d_t"] / r["n_t"]),
                                    ("each planned run", float(chosen["tokens_per_param"])))
               if not lo <= ratio <= hi]
    if extreme:
        text = " and ".join(extreme)
        out.append({"code": "extreme_tokens_per_param",
                    "message": f"{text[0].upper()}{text[1:]}, outside {lo:g} to {hi:,.0f}: published models and "
                               "the corpus's runs train within that range, and laws fitted there rarely hold "
                               "beyond it."})
    if int(chosen["n_models"]) == 1:
        out.append({"code": "single_size",
                    "message": "The plan trains one size: a law fitted to it cannot say how loss falls with size "
                               "(its size term is not identified), so the target is predicted from tokens alone. "
                               "Allow two or more sizes (max_models, min_size) if the budget permits."})
    if r["epochs"] > 1:
        out.append({"code": "repeated_data",
                    "message": "Repeated data makes losses far less predictable in the corpus (datablations "
                               "families); the expected ARE is wider for it."})
    return out


def _request_dict(request: PlanRequest, r: dict) -> dict:
    """The request as given, with the target's tokens and compute, the budget in FLOPs and the counts resolved."""
    return {k: v for k, v in request.__dict__.items()} | {
        "target_params": r["n_t"], "target_tokens": r["d_t"], "target_compute": r["c_t"], "budget_flops": r["budget"],
        "max_models": r["k"], "max_epochs": r["epochs"]}


def recommend(model: ErrorModel, request: PlanRequest) -> Plan:
    """The best design for ``request`` under ``model`` among the searched and the naive designs, explained."""
    r = request.resolved()
    pool, notes = all_designs(r, r["epochs"])
    if pool.empty:
        raise PlanInputError("budget_flops", "no design fits the budget within the size bounds")
    ranked = rank(score(model, pool))
    parts = p90_factors(model, ranked)  # each design's p90 by factor: the explanations read it
    top = ranked.iloc[0]
    runs = run_schedule(top["sizes"], top["tokens"])
    naive_rows = ranked[ranked["name"] != SEARCHED]
    naive = [{"name": row["name"], "n_models": int(row["n_models"]), "sizes": [float(x) for x in row["sizes"]],
              "tokens": [float(x) for x in row["tokens"]], "tokens_per_param": float(row["tokens_per_param"]),
              "p10": float(row["p10"]), "p50": float(row["p50"]), "p90": float(row["p90"]),
              "recommended": row["name"] == top["name"], "outside": list(row["outside"])}
             for _, row in naive_rows.iterrows()]
    naive.sort(key=lambda n: NAIVE_DESIGNS.index(n["name"]))
    alternatives = runners_up(model, ranked, parts=parts)
    total = float(np.sum(top["flops"]))
    recommended = {"name": str(top["name"]), "description": describe(top), "n_models": int(top["n_models"]),
                   "p10": float(top["p10"]), "p50": float(top["p50"]), "p90": float(top["p90"]), "models": runs,
                   "total_flops": total, "train_compute_share": float(top["train_compute_share"]),
                   "scale_up": float(top["scale_up"]), "tokens_per_param": float(top["tokens_per_param"]),
                   "outside": list(top["outside"])}
    beaten = ", ".join(f"{n['name']} {n['p90']:.2%}" for n in naive if not n["recommended"])
    summary = (f"{describe(top)} has the lowest plausible worst-case ARE (p90 {top['p90']:.2%}, p50 {top['p50']:.2%}) "
               f"among {len(ranked)} designs at this budget, the {len(naive)} naive ones included"
               + (f" (p90: {beaten})" if beaten else "") + ".")
    chosen_text = summary  # plain text a page can show as is (no character HTML would escape)
    if alternatives:
        summary += f" Next best: {alternatives[0]['why']}."
    choice = {"rule": "lowest p90, then lowest p50, then the cheaper design (plan level of the error model)",
              "candidates": int(len(ranked)), "naive_in_candidates": [n["name"] for n in naive],
              "naive_left_out": notes, "summary": summary, "factors": decided_by(model, ranked, naive_rows, parts)}
    schedule = {
        "per_run": True,
        "evaluations_per_run": EVALUATIONS_PER_RUN,
        # One setting for every run that still gives each at least EVALUATIONS_PER_RUN evaluations.
        "evaluate_every_tokens": min(m["eval_every_tokens"] for m in runs),
        "checkpoints_per_run": EVALUATIONS_PER_RUN,
        "drop_before_tokens": [m["drop_before_tokens"] for m in runs],
        "checkpoints_used_per_run": DEFAULT_POLICY.max_per_run,
    }
    coverage = model.validation.get("coverage", float("nan"))  # the plan level's, as fit_error_model records it
    reasons = {
        "models": chosen_text,
        "tokens": f"every model sees {top['tokens_per_param']:.1f} tokens per parameter, which spends the budget "
                  f"(6 N D = {total:.3g} FLOPs)",
        "schedule": f"each run is evaluated every 1/{EVALUATIONS_PER_RUN} of its own tokens and at its end; the fit "
                    f"drops checkpoints before min({DEFAULT_POLICY.min_tokens:.0e} tokens, half the run) and uses "
                    f"at most {DEFAULT_POLICY.max_per_run} per run (measured: more cost time, not accuracy)",
        "expected_are": "the error model's p10-p90 for this design, learned from backtested laws on the corpus "
                        f"(held-out coverage {coverage:.0%})",
    }
    return Plan(
        request=_request_dict(request, r),
        recommended=recommended,
        naive=naive,
        alternatives=alternatives,
        warnings=plan_warnings(model, r, top),
        choice=choice,
        design={"name": str(top["name"]), "n_models": int(top["n_models"]), "scale_up": float(top["scale_up"]),
                "train_compute_share": float(top["train_compute_share"]),
                "tokens_per_param": float(top["tokens_per_param"])},
        schedule=schedule,
        frontier=_frontier(model, r, pool, top),
        compute_optimal=compute_optimal(r["c_t"], request.law),
        reasons=reasons,
    )


# ---------------------------------------------------------------------------
# evaluation on held-out families


def _naive_family_designs(train: pd.DataFrame, target: pd.DataFrame, sizes: np.ndarray, budget_share: float):
    """Naive designs restricted to a family's sizes: the largest fraction of training that fits the budget."""
    out = {}
    c_t = 6 * target["params"].iloc[0] * target["tokens"].max()

    def within(used):
        for fraction in sorted(FRACTIONS, reverse=True):
            row = evaluate_design(train, target, used, fraction)
            if row["train_compute_share"] <= budget_share and row["train_compute_share"] > 0:
                return {**row, "fraction": fraction}
        return None

    # One large model: the largest size whose run fits.
    for n in sizes[::-1]:
        row = within(np.array([n]))
        if row is not None:
            out["one-large-model"] = row
            break
    # The k smallest sizes: as many as fit at full training (at least 2).
    best_k = None
    for k in range(2, sizes.size + 1):
        if run_compute(train[train["params"].isin(sizes[:k])]) / c_t <= budget_share:
            best_k = k
    if best_k:
        out["k-smallest"] = {**evaluate_design(train, target, sizes[:best_k], 1.0), "fraction": 1.0}
    # Five evenly log-spaced sizes (nearest available), the largest fraction that fits.
    if sizes.size >= 5:
        picks = np.unique([sizes[np.argmin(np.abs(np.log(sizes) - v))]
                           for v in np.linspace(np.log(sizes[0]), np.log(sizes[-1]), 5)])
        row = within(picks)
        if row is not None:
            out["five-log-spaced"] = row
    return out


def _naive_as_candidates(naive: dict, traits: dict, model: ErrorModel) -> pd.DataFrame:
    if not naive:
        return pd.DataFrame()
    rows = []
    for name, row in naive.items():
        rows.append({**row, "name": name, "n_models": len(row["sizes"]), "fraction": row.get("fraction", 1.0),
                     "policy": "auto", **traits})
    return score(model, pd.DataFrame(rows))


def evaluate_plans(model: ErrorModel, frame: pd.DataFrame, budgets=(0.01, 0.03, 0.1, 0.3), min_sizes: int = 4,
                   families=None, progress=None) -> dict:
    """Recommend within each held-out family's real runs at each budget; score against the naive designs.

    ``model`` may be a callable ``family -> ErrorModel`` (leave-one-family-out).
    """
    names = families if families is not None else sorted(
        f for f, g in frame.groupby("family") if g["params"].nunique() >= min_sizes)
    rows = []
    for i, family in enumerate(names):
        part = frame[frame["family"] == family]
        em = model(family) if callable(model) else model
        sweep = pd.DataFrame(sweep_family(part))
        design = pd.json_normalize(sweep["design"].tolist())
        sweep = pd.concat([sweep.drop(columns=["design"]), design], axis=1)
        sweep = score(em, sweep)
        train, target = split_target(prepare_train(part))
        sizes = np.sort(train["params"].unique())
        traits = family_traits(part)
        for budget in budgets:
            naive = _naive_family_designs(train, target, sizes, budget)
            # The naive designs are designs too: the planner may pick one.
            pool = pd.concat([sweep, _naive_as_candidates(naive, traits, em)], ignore_index=True)
            # A design whose fit fails on its own training data cannot be recommended
            # (known before the target is seen).
            feasible = pool[(pool["train_compute_share"] <= budget) & (pool["train_compute_share"] > 0)
                            & (pool["error"].fillna("") == "")]
            if feasible.empty:
                continue
            best = pick_best(feasible)
            alternatives = [{"name": name, "realized_are": _json_float(row["are"]),
                             "sizes": row["sizes"], "train_compute_share": row["train_compute_share"]}
                            for name, row in naive.items()]
            rows.append({
                "family": family, "budget_fraction": budget,
                "recommended": {
                    "design": {"name": best["name"] if isinstance(best.get("name"), str) else "searched",
                               "n_models": int(best["n_models"]),
                               "fraction": float(best["fraction"]), "policy": str(best["policy"]),
                               "sizes": list(best["sizes"]),
                               "train_compute_share": float(best["train_compute_share"])},
                    "predicted_p10": float(best["p10"]),
                    "predicted_p50": float(best["p50"]),
                    "predicted_p90": float(best["p90"]),
                    "realized_are": _json_float(best["are"]),
                },
                "alternatives": alternatives,
            })
        if progress:
            progress(i + 1, len(names), family)
    wins = [
        (r["recommended"]["realized_are"] if r["recommended"]["realized_are"] is not None else math.inf)
        <= min((a["realized_are"] if a["realized_are"] is not None else math.inf) for a in r["alternatives"])
        for r in rows if r["alternatives"]
    ]
    return {"win_rate": float(np.mean(wins)) if wins else float("nan"), "cases": len(wins), "rows": rows}


def _json_float(x):
    x = float(x)
    return x if math.isfinite(x) else None


__all__ = ["PlanRequest", "PlanInputError", "Plan", "recommend", "plan_warnings", "evaluate_plans", "compute_optimal"]

"""Plans: which small models to train for a target, chosen by the error model.

:func:`recommend` searches designs a team can train - ``n_models`` sizes
log-spaced up to a largest size, each trained at the same tokens-per-parameter
ratio so that together they spend the budget - and picks the one whose
plausible worst-case ARE (the error model's p90) is lowest, then the lowest
p50; ties go to the cheaper design.

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
from .errormodel import ErrorModel
from .policy import DEFAULT_POLICY
from .sweep import FRACTIONS, evaluate_design, family_traits, run_compute, sweep_family

PLAN_VERSION = 1
MIN_TOKENS_PER_PARAM = 1.0  # below this a "trained" model has seen less data than it has weights
SMALLEST_SENSIBLE_PARAMS = 1e6
# Published Chinchilla fit (Hoffmann et al. 2022, approach 3), the default for
# the compute-optimal split when no reference family is given.
CHINCHILLA_LAW = {"E": 1.69, "A": 406.4, "alpha": 0.34, "B": 410.7, "beta": 0.28}
NAIVE_DESIGNS = ("one-large-model", "k-smallest", "five-log-spaced")
MAX_PARAMS = 2**62  # the largest parameter count the corpus stores (fits.canonical)
MAX_EPOCHS = 1e4  # passes over the data; the corpus's most repeated runs make 9,000


class PlanInputError(ValueError):
    """An impossible request; the message names the field and why."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


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
    request: dict
    design: dict
    models: list
    expected_are: dict
    schedule: dict
    frontier: list
    naive: list
    compute_optimal: dict
    warnings: list = field(default_factory=list)
    reasons: dict = field(default_factory=dict)
    version: int = PLAN_VERSION

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def candidate_designs(r: dict, max_models: int, max_epochs: float, budget: float | None = None) -> pd.DataFrame:
    """Designs within a budget: k log-spaced sizes up to N_L, all at the tokens/param that spends it.

    Vectorised per k (all largest sizes and spreads at once): a plan builds
    these tables seven times (the plan, its frontier, the naive designs).
    """
    budget = r["budget"] if budget is None else budget
    largest = np.unique(np.geomspace(r["lo"], r["hi"], 16))
    frames = []
    for k in range(1, max_models + 1):
        spreads = np.array([1.0]) if k == 1 else np.array([3.0, 10.0, 30.0, 100.0])
        n_l = np.repeat(largest, spreads.size)
        n_1 = np.maximum(n_l / np.tile(spreads, largest.size), r["lo"])
        if k > 1:
            n_l, n_1 = n_l[n_1 < n_l], n_1[n_1 < n_l]
        steps = np.linspace(0.0, 1.0, k)
        sizes = np.exp(np.log(n_1)[:, None] + (np.log(n_l) - np.log(n_1))[:, None] * steps[None, :])
        ratio = budget / (6 * np.sum(sizes**2, axis=1))
        keep = ratio >= MIN_TOKENS_PER_PARAM
        if not keep.any():
            continue
        sizes, ratio = sizes[keep], ratio[keep]
        tokens = ratio[:, None] * sizes
        flops = 6 * sizes * tokens
        frames.append(pd.DataFrame({
            "sizes": list(sizes), "tokens": list(tokens), "flops": list(flops),
            "n_models": k, "scale_up": r["n_t"] / sizes[:, -1], "train_compute_share": flops.sum(axis=1) / r["c_t"],
            "tokens_per_model": np.median(tokens, axis=1), "fraction": 1.0, "policy": "auto",
            "max_epochs": max_epochs, "has_curves": 1.0, "tokens_per_param": ratio,
        }))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _score(model: ErrorModel, designs: pd.DataFrame) -> pd.DataFrame:
    """Designs with the plan-level p10/p50/p90: a plan is made before any of its runs exist."""
    pred = model.predict(designs, level="plan")
    return designs.assign(p10=pred["p10"].to_numpy(), p50=pred["p50"].to_numpy(), p90=pred["p90"].to_numpy())


def _best(scored: pd.DataFrame) -> pd.Series:
    """The design with the lowest p90, then p50, then the cheaper one.

    Ranking by the plausible worst case, not the median: measured leave one
    family out on the corpus, p50-ranked plans beat the best naive design in
    59% of (family, budget) cases, p90-ranked ones in 72%. The p90 leans on
    what reliably helps (compute spent, a larger largest model) where the p50
    also chases effects that differ between families.
    """
    return scored.sort_values(["p90", "p50", "train_compute_share"]).iloc[0]


def _naive_candidates(r: dict, max_epochs: float) -> dict:
    """The designs a team picks without a planner, each spending the same budget."""
    out = {}
    big = candidate_designs({**r, "lo": r["hi"]}, 1, max_epochs)
    if len(big):
        out["one-large-model"] = big.iloc[[0]]
    for name, k, lo, hi in (("k-smallest", 5, r["lo"], min(r["lo"] * 100, r["hi"])),
                            ("five-log-spaced", 5, r["lo"], r["hi"])):
        sizes = np.geomspace(lo, hi, k)
        ratio = r["budget"] / (6 * np.sum(sizes**2))
        if ratio < MIN_TOKENS_PER_PARAM:
            continue
        tokens = ratio * sizes
        out[name] = pd.DataFrame([{
            "sizes": sizes, "tokens": tokens, "flops": 6 * sizes * tokens, "n_models": k,
            "scale_up": r["n_t"] / hi, "train_compute_share": r["budget"] / r["c_t"],
            "tokens_per_model": float(np.median(tokens)), "fraction": 1.0, "policy": "auto",
            "max_epochs": max_epochs, "has_curves": 1.0, "tokens_per_param": ratio,
        }])
    return out


def compute_optimal(c_t: float, law: dict | None = None) -> dict:
    """Compute-optimal (N, D) for compute C under L = E + A/N^a + B/D^b (Hoffmann et al.'s closed form).

    The interval spans the exponents' stated uncertainty (+-0.05 on each, the
    spread of published fits) - the split is far more sensitive to them than
    to A or B.
    """
    base = dict(CHINCHILLA_LAW if law is None else law)

    def split(a, b):
        g = (a * base["A"] / (b * base["B"])) ** (1 / (a + b))
        n = g * (c_t / 6) ** (b / (a + b))
        return n, c_t / (6 * n)

    n, d = split(base["alpha"], base["beta"])
    corners = [split(base["alpha"] + da, base["beta"] + db) for da in (-0.05, 0.05) for db in (-0.05, 0.05)]
    ns = [c[0] for c in corners]
    return {
        "params": n, "tokens": d, "tokens_per_param": d / n,
        "params_interval": [min(ns), max(ns)],
        "law": base, "source": "reference family" if law is not None else "Chinchilla (Hoffmann et al. 2022)",
    }


def recommend(model: ErrorModel, request: PlanRequest) -> Plan:
    r = request.resolved()
    scored = _score(model, candidate_designs(r, r["k"], r["epochs"]))
    if scored.empty:
        raise PlanInputError("budget_flops", "no design fits the budget within the size bounds")
    best = _best(scored)
    sizes, tokens, flops = best["sizes"], best["tokens"], best["flops"]
    models = [{"params": float(n), "tokens": float(d), "flops": float(f)} for n, d, f in zip(sizes, tokens, flops)]
    # Frontier: the best design at budgets from 1/30 to 3x the one asked for.
    frontier = []
    for factor in (1 / 30, 1 / 10, 1 / 3, 1.0, 3.0):
        b = r["budget"] * factor
        if b > r["c_t"]:
            continue
        if factor == 1.0:
            top = best  # the plan itself: no second search
        else:
            cand = candidate_designs(r, r["k"], r["epochs"], budget=b)
            if cand.empty:
                continue
            top = _best(_score(model, cand))
        frontier.append({"budget_flops": b, "budget_fraction": b / r["c_t"], "n_models": int(top["n_models"]),
                         "largest_params": float(np.max(top["sizes"])),
                         "p10": float(top["p10"]), "p50": float(top["p50"]), "p90": float(top["p90"]),
                         "chosen": factor == 1.0})
    naive = []
    for name, design in _naive_candidates(r, r["epochs"]).items():
        s = _score(model, design).iloc[0]
        naive.append({"name": name, "sizes": [float(x) for x in s["sizes"]], "p10": float(s["p10"]),
                      "p50": float(s["p50"]), "p90": float(s["p90"])})
    largest_tokens = float(np.max(tokens))
    schedule = {
        "evaluate_every_tokens": largest_tokens / 50,
        "checkpoints_per_run": 50,
        "drop_before_tokens": [float(min(DEFAULT_POLICY.min_tokens, DEFAULT_POLICY.max_run_fraction * d))
                               for d in tokens],
        "checkpoints_used_per_run": DEFAULT_POLICY.max_per_run,
    }
    warnings = []
    lo_share, hi_share = model.trained_on.get("compute_share_range", [None, None])
    if best["scale_up"] > model.trained_on.get("max_scale_up", math.inf):
        warnings.append(f"the scale-up {best['scale_up']:.1f}x from the largest small model exceeds the corpus's "
                        f"largest ({model.trained_on['max_scale_up']:.1f}x): the expected ARE is an extrapolation")
    if lo_share is not None and not lo_share <= best["train_compute_share"] <= hi_share:
        warnings.append(f"spending {best['train_compute_share']:.2%} of the target's compute lies outside the "
                        f"corpus's designs ({lo_share:.2%}-{hi_share:.2%})")
    if r["epochs"] > 1:
        warnings.append("repeated data makes losses far less predictable in the corpus (datablations families)")
    reasons = {
        "models": f"{int(best['n_models'])} sizes from {sizes[0]:.3g} to {sizes[-1]:.3g} parameters had the lowest "
                  f"plausible worst-case (p90) ARE among {len(scored)} designs within the budget",
        "tokens": f"every model sees {best['tokens_per_param']:.1f} tokens per parameter, which spends the budget "
                  f"(6 N D = {flops.sum():.3g} FLOPs)",
        "schedule": "checkpoints before min(1B tokens, half a run) are noisy and dropped; 60 per run suffice "
                    "(measured: more cost time, not accuracy)",
        "expected_are": "the error model's p10-p90 for this design, learned from backtested laws on the corpus "
                        f"(held-out coverage {model.validation.get('coverage', float('nan')):.0%})",
    }
    return Plan(
        request={k: v for k, v in request.__dict__.items()} | {
            "target_params": r["n_t"], "target_tokens": r["d_t"], "target_compute": r["c_t"], "budget_flops": r["budget"],
            "max_models": r["k"], "max_epochs": r["epochs"]},
        design={"n_models": int(best["n_models"]), "scale_up": float(best["scale_up"]),
                "train_compute_share": float(best["train_compute_share"]),
                "tokens_per_param": float(best["tokens_per_param"])},
        models=models,
        expected_are={"p10": float(best["p10"]), "p50": float(best["p50"]), "p90": float(best["p90"])},
        schedule=schedule,
        frontier=frontier,
        naive=naive,
        compute_optimal=compute_optimal(r["c_t"], request.law),
        warnings=warnings,
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
    return _score(model, pd.DataFrame(rows))


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
        sweep = _score(em, sweep)
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
            best = _best(feasible)
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


__all__ = ["PlanRequest", "PlanInputError", "Plan", "recommend", "evaluate_plans", "compute_optimal"]

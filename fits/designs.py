"""The designs a plan chooses among, their scores under the error model, and why the best one won.

A design is a set of small models, each trained on the same number of tokens per
parameter, chosen so that together they spend the budget (6 N D FLOPs each).
The candidates are the *searched* designs - ``k`` sizes log-spaced between a
smallest and a largest size - and the *naive* designs a team picks without a
planner (one large model, the five smallest sizes, five log-spaced sizes, each
trained like the target), all at the same budget. The plan is the candidate with the lowest plan-level p90,
then p50, then the cheaper one: so no design the plan shows beside it has a
lower p90.

The error model is linear in its features for each log quantile, so the
difference between two designs' p90 splits exactly into one factor per feature
group (scale-up, number of sizes, share of the target's compute, tokens per
model, checkpoints) plus the widening outside the corpus: that is how the plan
says what decided.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .errormodel import LEVELS, ErrorModel, features

# A planned run sees at least this many tokens per parameter. The error model has no feature for it (tried:
# it blurred the bands without changing which designs win) and rewards scale-up, so without a floor plans
# trained their models on 1-3 tokens per parameter, far from any recipe a team scales (compute-optimal is
# ~20); at 5 the plans' p90 barely moves (README, plans from the command line).
MIN_TOKENS_PER_PARAM = 5.0
LARGEST_CHOICES = 16
# Ratios largest / smallest size; inf: down to the smallest allowed size (the widest spread, as five-log-spaced).
SPREADS = (3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, math.inf)
SEARCHED = "searched"
NAIVE_DESIGNS = ("one-large-model", "k-smallest", "five-log-spaced")
NAIVE_SIZES = 5
RUNNERS_UP = 4

# Groups of the error model's features, as a team names the choices they stand for.
FACTORS = {
    "scale-up": ("log_scale_up",),
    "number of sizes": ("single_model", "n_models"),
    "share of budget": ("log_compute_share",),
    "tokens per model": ("log_tokens_per_model",),
    "checkpoints": ("fraction", "has_curves"),
    "repeated data": ("log_max_epochs",),
}
OUTSIDE = "outside the corpus"
LOG_RATIO_LIMIT = 700.0  # exp() of more overflows; a model learned from a few families can widen that much


def _ratio(log_ratio) -> float:
    """exp(log_ratio), bounded so that a wild error model gives a huge ratio, not an overflow."""
    return float(np.exp(np.clip(log_ratio, -LOG_RATIO_LIMIT, LOG_RATIO_LIMIT)))


def _designs(sizes: np.ndarray, names, r: dict, budget: float, max_epochs: float) -> pd.DataFrame:
    """Design rows for a (designs x k) array of sizes: the tokens per parameter that spend ``budget``."""
    if sizes.size == 0:
        return pd.DataFrame()
    ratio = budget / (6 * np.sum(sizes**2, axis=1))
    keep = ratio >= MIN_TOKENS_PER_PARAM
    if not keep.any():
        return pd.DataFrame()
    sizes, ratio, names = sizes[keep], ratio[keep], np.asarray(names, dtype=object)[keep]
    tokens = ratio[:, None] * sizes
    flops = 6 * sizes * tokens
    return pd.DataFrame({
        "name": names, "sizes": list(sizes), "tokens": list(tokens), "flops": list(flops),
        "n_models": sizes.shape[1], "scale_up": r["n_t"] / sizes[:, -1], "train_compute_share": flops.sum(axis=1) / r["c_t"],
        "tokens_per_model": np.median(tokens, axis=1), "fraction": 1.0, "policy": "auto",
        "max_epochs": max_epochs, "has_curves": 1.0, "tokens_per_param": ratio,
    })


def candidate_designs(r: dict, max_models: int, max_epochs: float, budget: float | None = None) -> pd.DataFrame:
    """Searched designs within a budget: k log-spaced sizes from N_1 to N_L (N_L among 16 largest sizes,
    N_L / N_1 among :data:`SPREADS`), for k = 1 .. ``max_models``. Vectorised per k."""
    budget = r["budget"] if budget is None else budget
    largest = np.unique(np.geomspace(r["lo"], r["hi"], LARGEST_CHOICES))
    spreads = np.asarray(SPREADS)
    frames = []
    for k in range(1, max_models + 1):
        if k == 1:
            n_l, n_1 = largest, largest
        else:
            n_l = np.repeat(largest, spreads.size)
            n_1 = np.maximum(n_l / np.tile(spreads, largest.size), r["lo"])
            pairs = np.unique(np.column_stack([n_l, n_1])[n_1 < n_l * (1 - 1e-9)], axis=0)
            n_l, n_1 = pairs[:, 0], pairs[:, 1]
        steps = np.linspace(0.0, 1.0, k)
        sizes = np.exp(np.log(n_1)[:, None] + (np.log(n_l) - np.log(n_1))[:, None] * steps[None, :])
        frames.append(_designs(sizes, [SEARCHED] * len(sizes), r, budget, max_epochs))
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _largest_top(lo: float, top: float, count: int, budget: float, ratio: float) -> float:
    """The largest ``t <= top`` such that ``count`` sizes log-spaced from ``lo`` to ``t`` train on ``ratio`` tokens
    per parameter within ``budget`` (6 N D each); ``lo`` itself if even that does not fit (bisection in log t)."""
    def cost(t):
        step = (t / lo) ** (2.0 / (count - 1))  # squares of log-spaced sizes: a geometric series
        return 6 * ratio * lo * lo * sum(step**i for i in range(count))

    if cost(top) <= budget:
        return top
    a, b = math.log(lo), math.log(top)
    for _ in range(50):
        mid = (a + b) / 2
        a, b = (mid, b) if cost(math.exp(mid)) <= budget else (a, mid)
    return math.exp(a)


def naive_designs(r: dict, max_epochs: float, budget: float | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The designs a team picks without a planner, within the request's bounds, spending the same budget.

    A team trains its small models like its target: each naive design takes the largest sizes of its shape
    (one model up to ``max_size``; the five smallest from ``min_size``, at most 100x apart; five log-spaced
    from ``min_size`` up to ``max_size``) that the budget trains on at least the target's tokens per parameter,
    then spends the rest of the budget on more tokens. Returns the designs and a note for each one left out.
    """
    budget = r["budget"] if budget is None else budget
    lo, hi = r["lo"], r["hi"]
    ratio = max(r["d_t"] / r["n_t"], MIN_TOKENS_PER_PARAM)
    picks, notes = [], []
    one = min(hi, math.sqrt(budget / (6 * ratio)))
    if one >= lo * (1 - 1e-9):
        picks.append(("one-large-model", np.array([max(one, lo)])))
    else:
        notes.append(f"one-large-model: the budget cannot train even min_size ({lo:.3g}) on the target's "
                     f"{ratio:.3g} tokens per parameter")
    for name, top in (("k-smallest", min(lo * 100, hi)), ("five-log-spaced", hi)):
        if r["k"] < NAIVE_SIZES:
            notes.append(f"{name} trains {NAIVE_SIZES} sizes; max_models is {r['k']}")
            continue
        top = _largest_top(lo, top, NAIVE_SIZES, budget, ratio) if top > lo * (1 + 1e-9) else lo
        if top <= lo * (1 + 1e-6):
            notes.append(f"{name}: the budget cannot train {NAIVE_SIZES} distinct sizes from min_size ({lo:.3g}) on "
                         f"the target's {ratio:.3g} tokens per parameter")
        else:
            picks.append((name, np.geomspace(lo, top, NAIVE_SIZES)))
    frames = [_designs(sizes[None, :], [name], r, budget, max_epochs) for name, sizes in picks]
    frames = [f for f in frames if not f.empty]
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), notes


def all_designs(r: dict, max_epochs: float, budget: float | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The naive designs and the searched ones (a searched design equal to a naive one is kept once, named)."""
    return _with_naive(r, max_epochs, budget, candidate_designs(r, r["k"], max_epochs, budget))


def _with_naive(r: dict, max_epochs: float, budget: float | None, searched: pd.DataFrame, dedupe: bool = True):
    naive, notes = naive_designs(r, max_epochs, budget)
    if dedupe and not naive.empty and not searched.empty:
        seen = {_key(s) for s in naive["sizes"]}
        same_count = searched["n_models"].isin(naive["n_models"]).to_numpy()
        copy = np.zeros(len(searched), dtype=bool)
        copy[same_count] = [_key(s) in seen for s in searched["sizes"][same_count]]
        searched = searched[~copy]
    frames = [f for f in (naive, searched) if not f.empty]
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), notes


def at_budget(pool: pd.DataFrame, r: dict, max_epochs: float, budget: float) -> pd.DataFrame:
    """The candidates at another budget, from a pool at ``r["budget"]``: the searched designs' sizes are the
    same and their tokens scale with the budget (those then below the minimum tokens per parameter drop out);
    the naive designs are made afresh (their sizes depend on the budget)."""
    factor = budget / r["budget"]
    if factor > 1:
        # More tokens per design: designs the floor on tokens per parameter left out of the pool may now pass.
        return all_designs({**r, "budget": budget}, max_epochs)[0]
    searched = pool[pool["name"] == SEARCHED]
    if not searched.empty:
        searched = searched.assign(
            tokens=[t * factor for t in searched["tokens"]], flops=[f * factor for f in searched["flops"]],
            train_compute_share=searched["train_compute_share"] * factor,
            tokens_per_model=searched["tokens_per_model"] * factor,
            tokens_per_param=searched["tokens_per_param"] * factor)
        searched = searched[searched["tokens_per_param"] >= MIN_TOKENS_PER_PARAM]
    # A searched copy of a naive design may stay: it ties with it, and a tie goes to the named one.
    return _with_naive({**r, "budget": budget}, max_epochs, budget, searched, dedupe=False)[0]


def _key(sizes) -> tuple:
    return tuple(np.round(np.log(np.asarray(sizes, dtype=float)), 6))


def score(model: ErrorModel, designs: pd.DataFrame) -> pd.DataFrame:
    """Designs with the plan-level p10/p50/p90 and the features outside the sweep's ranges.

    Plan level: a plan is made before any of its runs exist.
    """
    pred = model.predict(designs, level="plan")
    return designs.assign(p10=pred["p10"].to_numpy(), p50=pred["p50"].to_numpy(), p90=pred["p90"].to_numpy(),
                          outside=pred["outside"].to_numpy())


def rank(scored: pd.DataFrame) -> pd.DataFrame:
    """Best first: the lowest p90, then p50, then the cheaper design; on a tie a named (naive) design first.

    Ranking by the plausible worst case, not the median: measured leave one
    family out on the corpus, p50-ranked plans beat the best naive design in
    59% of (family, budget) cases, p90-ranked ones in 72%. The p90 leans on
    what reliably helps (compute spent, a larger largest model) where the p50
    also chases effects that differ between families.
    """
    searched = (scored["name"] == SEARCHED) if "name" in scored.columns else pd.Series(True, index=scored.index)
    # Shares equal but for rounding (every design spends the whole budget) tie: the named design goes first.
    share = np.round(np.log(np.maximum(scored["train_compute_share"].to_numpy(dtype=float), 1e-300)), 9)
    keys = scored.assign(_share=share, _searched=searched.astype(int).to_numpy())
    order = keys.sort_values(["p90", "p50", "_share", "_searched"], kind="mergesort").index
    return scored.loc[order]


def best(scored: pd.DataFrame) -> pd.Series:
    """The design :func:`rank` puts first."""
    return rank(scored).iloc[0]


# ---------------------------------------------------------------------------
# why the best design won


def p90_factors(model: ErrorModel, designs: pd.DataFrame) -> pd.DataFrame:
    """Per design, each factor's part of log p90 (the error model's 90% line), and the widening outside the corpus.

    Differences between two designs' rows say which factor moved the p90 and by how much; they add up to
    the difference in log p90 unless the model's quantile lines cross there (then it sorts them).
    """
    x = features(designs, "plan")
    coef = dict(zip(LEVELS["plan"], model.coefficients["plan"]["0.9"]["coef"]))
    out = pd.DataFrame(index=designs.index)
    for factor, names in FACTORS.items():
        out[factor] = sum(coef.get(n, 0.0) * x[n].to_numpy() for n in names if n in x.columns)
    out[OUTSIDE] = model.widen_per_unit * model.outside(designs)[0]
    return out


def describe(row: pd.Series) -> str:
    """A design in a few words: '6 sizes from 2.3e+07 to 3.5e+09 parameters' (and its name if naive)."""
    sizes = np.asarray(row["sizes"], dtype=float)
    what = (f"1 size of {sizes[0]:.3g} parameters" if sizes.size == 1
            else f"{sizes.size} sizes from {sizes.min():.3g} to {sizes.max():.3g} parameters")
    return what if row.get("name", SEARCHED) == SEARCHED else f"{row['name']} ({what})"


def _values(row: pd.Series) -> dict:
    """Each factor's value for a design, as a team reads it."""
    return {
        "scale-up": f"scale-up {row['scale_up']:.3g}x",
        "number of sizes": f"{int(row['n_models'])} size{'s' if row['n_models'] > 1 else ''}",
        "share of budget": f"{row['train_compute_share']:.3g} of the target compute",
        "tokens per model": f"{row['tokens_per_model']:.3g} tokens per model",
        "checkpoints": f"{row['fraction']:.0%} of each run seen",
        "repeated data": f"{row['max_epochs']:.3g} epochs",
        OUTSIDE: ", ".join(row["outside"]) if len(row.get("outside", [])) else "inside",
    }


def compare(model: ErrorModel, winner: pd.Series, other: pd.Series, top: int = 2,
            parts: pd.DataFrame | None = None) -> list[dict]:
    """The factors that made ``other``'s p90 higher than ``winner``'s, largest first (ratio > 1 = worse).

    ``parts``: :func:`p90_factors` of a frame holding both rows (by their index), to skip computing them.
    """
    diff = _diff(model, winner, other, parts)
    values_w, values_o = _values(winner), _values(other)
    out = []
    for factor in diff.sort_values(ascending=False).index:
        ratio = _ratio(diff[factor])
        if ratio <= 1.005:
            break
        out.append({"factor": factor, "p90_ratio": ratio,
                    "text": f"{factor}: {values_o[factor]} against {values_w[factor]} raises its p90 x{ratio:.2f}"})
        if len(out) == top:
            break
    return out


def distinct_runners_up(ranked: pd.DataFrame, count: int = RUNNERS_UP) -> list[pd.Series]:
    """The next best designs after the first, one per kind: a naive design, or a searched one differing from
    those before it in the number of sizes or the largest size (to a quarter decade)."""
    def kind(row):
        return int(row["n_models"]), int(np.floor(4 * np.log10(np.max(row["sizes"]))))

    seen = {kind(ranked.iloc[0])}
    out = []
    for _, row in ranked.iloc[1:].iterrows():
        if row["name"] == SEARCHED and kind(row) in seen:
            continue
        seen.add(kind(row))
        out.append(row)
        if len(out) == count:
            break
    return out


def _diff(model: ErrorModel, winner: pd.Series, other: pd.Series, parts: pd.DataFrame | None) -> pd.Series:
    """Per factor: ``other``'s part of log p90 minus ``winner``'s."""
    if parts is None or winner.name not in parts.index or other.name not in parts.index:
        parts = p90_factors(model, pd.DataFrame([winner, other]).reset_index(drop=True))
        return parts.iloc[1] - parts.iloc[0]
    return parts.loc[other.name] - parts.loc[winner.name]


def runners_up(model: ErrorModel, ranked: pd.DataFrame, count: int = RUNNERS_UP,
               parts: pd.DataFrame | None = None) -> list[dict]:
    """:func:`distinct_runners_up`, each with its sizes, p10/p50/p90 and what made its p90 higher."""
    winner = ranked.iloc[0]
    out = []
    for row in distinct_runners_up(ranked, count):
        lost = compare(model, winner, row, parts=parts)
        gap = row["p90"] / winner["p90"] if winner["p90"] > 0 else math.inf
        why = "; ".join(f["text"] for f in lost) if lost else "it scores the same at p90 and loses on p50 or cost"
        out.append({
            "name": row["name"], "n_models": int(row["n_models"]), "sizes": [float(s) for s in row["sizes"]],
            "tokens": [float(t) for t in row["tokens"]], "tokens_per_param": float(row["tokens_per_param"]),
            "train_compute_share": float(row["train_compute_share"]), "scale_up": float(row["scale_up"]),
            "p10": float(row["p10"]), "p50": float(row["p50"]), "p90": float(row["p90"]),
            "outside": list(row["outside"]), "p90_over_recommended": float(gap), "factors": lost,
            "why": f"{describe(row)}: p90 {row['p90']:.2%} ({gap:.2f}x the recommended); {why}",
        })
    return out


def sensitivities(model: ErrorModel) -> dict:
    """How the error model's p90 moves with each design choice (multipliers), for the plan's plain words."""
    coef = dict(zip(LEVELS["plan"], model.coefficients["plan"]["0.9"]["coef"]))
    log2 = math.log(2)
    return {
        "scale-up": _ratio(log2 * coef.get("log_scale_up", 0.0)),  # per doubling of the scale-up
        "number of sizes": _ratio(coef.get("n_models", 0.0)),  # per extra size
        "single size": _ratio(coef.get("single_model", 0.0)),  # one size against two
        "share of budget": _ratio(log2 * coef.get("log_compute_share", 0.0)),  # per doubling of the share
        "tokens per model": _ratio(log2 * coef.get("log_tokens_per_model", 0.0)),  # per doubling
        "half of each run": _ratio(-0.5 * coef.get("fraction", 0.0)),  # seeing half of each run, not all
        "outside the corpus": _ratio(model.widen_per_unit),  # per unit (log) of feature outside the ranges
    }


def decided_by(model: ErrorModel, ranked: pd.DataFrame, naive: pd.DataFrame,
               parts: pd.DataFrame | None = None) -> list[dict]:
    """The factors in plain words: the plan's value of each, how the error model weighs it, and how much it
    separated the plan from the runner-up (the first of :func:`distinct_runners_up`) and from the best naive
    design (when the plan is not that one)."""
    winner = ranked.iloc[0]
    sens = sensitivities(model)
    values = _values(winner)
    rivals = []
    others = distinct_runners_up(ranked, 1)
    if others:
        rivals.append(("the runner-up", others[0]))
    naive_others = naive[naive["name"] != winner["name"]] if not naive.empty else naive
    if len(naive_others):
        rivals.append(("the best naive design", rank(naive_others).iloc[0]))
    effect = {}
    for label, row in rivals:
        for factor, v in _diff(model, winner, row, parts).items():
            effect.setdefault(factor, []).append((label, row, _ratio(v)))
    words = {
        "scale-up": (f"the largest small model is {values['scale-up'].split()[1]} smaller than the target; "
                     f"each doubling of the scale-up multiplies the expected p90 by {sens['scale-up']:.2f}"),
        "number of sizes": (f"{values['number of sizes']}; each extra size multiplies the p90 by "
                            f"{sens['number of sizes']:.2f}, and a single size (no size law) by "
                            f"{sens['single size']:.2f}"),
        "share of budget": (f"the runs spend {winner['train_compute_share']:.2%} of the target's compute, the whole "
                            f"budget; each doubling multiplies the p90 by {sens['share of budget']:.2f}"),
        "tokens per model": (f"{winner['tokens_per_param']:.3g} tokens per parameter ({values['tokens per model']}); "
                             f"each doubling multiplies the p90 by {sens['tokens per model']:.2f}"),
        "checkpoints": ("every run is evaluated through its training and seen to its end; fitting on half of each "
                        f"run would multiply the p90 by {sens['half of each run']:.2f}. All candidates share this"),
        OUTSIDE: ("inside the ranges the error model's sweep covered" if not len(winner["outside"]) else
                  f"outside the sweep's ranges in {', '.join(winner['outside'])}: the band is widened "
                  f"(x{sens['outside the corpus']:.2f} on the p90 per unit outside)"),
    }
    out = []
    for factor, text in words.items():
        versus = [{"against": label, "design": describe(row), "p90_ratio": ratio}
                  for label, row, ratio in effect.get(factor, []) if abs(math.log(ratio)) > 0.005]
        out.append({"factor": factor, "value": values[factor], "text": text, "versus": versus})
    return out


__all__ = ["NAIVE_DESIGNS", "SEARCHED", "all_designs", "at_budget", "best", "candidate_designs", "compare", "decided_by",
           "describe", "distinct_runners_up", "naive_designs", "p90_factors", "rank", "runners_up", "score", "sensitivities"]

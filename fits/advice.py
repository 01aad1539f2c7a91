"""Next-run advice: which run to train next so that the target's prediction improves most.

Given the runs so far, the target and the FLOPs left, :func:`advise` weighs
*candidate runs* - sizes on a log grid from the smallest trained size to the
largest the budget affords, each trained on the tokens the runs' own recipe
gives that size - and recommends the one that most lowers the expected ARE.

Tokens of a candidate follow the recipe of the runs so far: log tokens is
fitted as linear in log size over the sizes trained (each size's median
planned tokens), the slope clipped to [0, 1] - from one token count for all
sizes (GPT-3, OPT, Pythia) to tokens in proportion to size (Chinchilla-style);
with one size, proportional.

Two kinds of evidence, both reported for every candidate:

* **error model** (when one is given) - its *fit* level: the design's features
  (sizes, scale-up, compute share, tokens per model, share of each run seen)
  plus the current fit's ``rmse_log`` and rollout error. A candidate design
  is the current one with the run added, *keeping the current fit's
  evidence*: the added run has no evidence yet, and what the runs say about
  how lawful the family is does not change because one more is planned.
  The plan level would compare a design-only band with the fit-level "now",
  so differences of level would pass for effects of the run.
* **own fit** - a run-level bootstrap of the user's runs with the candidate
  simulated from the current law (:mod:`fits.simulated`): the spread of the
  target's prediction, plus the extrapolation error of the new scale-up.

Ranking: by the error model when there is one (its p90, then p50: the plans'
rule, :mod:`fits.plan`), else by the own fit (p90, then p50); ties go to the
cheaper run. The error model is learned from backtests of the corpus, so it
knows what the user's bootstrap cannot see (a law's misfit grows with the
distance extrapolated); the own fit knows this family. ``max_runs`` > 1 picks
further runs greedily, each as if the earlier advised ones were done.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .jsonsafe import json_safe
from .method import DEFAULT_METHOD
from .policy import DEFAULT_POLICY
from .simulated import DEFAULT_CHECKPOINTS, own_fit_spread, simulated_run
from .trainset import TrainSet

ADVICE_VERSION = 1
DEFAULT_CANDIDATES = 8
DEFAULT_N_BOOT = 16
MAX_RUNS = 3
# A candidate this close to a trained size (ratio) is that size again: it adds no size to the design.
SAME_SIZE_RATIO = 1.1
# The largest candidate stays at most this share of the target: a run that large is no longer a small model
# (the plans' bound, fits.plan).
LARGEST_SHARE_OF_TARGET = 0.5
RUNNER_UPS = 3


class AdviceInputError(ValueError):
    """An impossible request; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


def _positive(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise AdviceInputError(name, f"must be a number, not {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(v) or v <= 0:
        raise AdviceInputError(name, f"must be positive and finite, not {value!r}")
    return v


@dataclass
class Advice:
    """The advised run(s), the expected ARE now and after them, and the candidates weighed (``to_dict``)."""

    target: dict
    budget_flops: float
    ranked_by: str
    current: dict
    recipe: dict
    expected_are: dict
    runs: list
    runner_ups: list
    candidates: list
    reasons: list
    warnings: list = field(default_factory=list)
    version: int = ADVICE_VERSION

    def to_dict(self) -> dict:
        return json_safe(dict(self.__dict__))


# ---------------------------------------------------------------------------
# the runs so far as a design


def runs_summary(ts: TrainSet) -> pd.DataFrame:
    """One row per run: params, planned tokens, tokens seen, checkpoints."""
    frame = ts.frame().assign(run=ts.run)
    return frame.groupby("run").agg(params=("params", "first"), planned=("run_tokens", "max"),
                                    seen=("tokens", "max"), checkpoints=("tokens", "size"))


def current_design(ts: TrainSet, fit, n_t: float, d_t: float) -> dict:
    """The runs so far as a design of the error model (:meth:`fits.method.Fit.design`: its columns, with the
    fit's evidence), plus what adding a run changes: the sizes, each run's tokens seen, the compute spent."""
    runs = runs_summary(ts)
    return {"columns": fit.design(n_t, d_t), "sizes": sorted(float(s) for s in ts.sizes),
            "run_tokens": [float(t) for t in runs["seen"]],
            "compute": float(6.0 * (runs["params"] * runs["seen"]).sum()), "target_compute": 6.0 * n_t * d_t,
            "n_t": n_t}


def with_run(design: dict, params: float, tokens: float) -> dict:
    """The design with one more run of ``params`` trained on ``tokens`` (seen in full; evidence kept)."""
    return {**design, "sizes": sorted(set(design["sizes"]) | {float(params)}),
            "run_tokens": design["run_tokens"] + [float(tokens)], "compute": design["compute"] + 6.0 * params * tokens}


def design_columns(design: dict) -> dict:
    """The columns :class:`fits.errormodel.ErrorModel` reads: the fit's, with what the added runs changed."""
    return {**design["columns"], "scale_up": design["n_t"] / max(design["sizes"]), "n_models": len(design["sizes"]),
            "train_compute_share": design["compute"] / design["target_compute"],
            "tokens_per_model": float(np.median(design["run_tokens"]))}


# ---------------------------------------------------------------------------
# candidates


def tokens_recipe(ts: TrainSet) -> dict:
    """How the runs' planned tokens grow with size: D(N) = D0 (N / N0)^slope (module docstring)."""
    runs = runs_summary(ts)
    per_size = runs.groupby("params")["planned"].median()
    n, d = np.log(per_size.index.to_numpy(dtype=float)), np.log(per_size.to_numpy(dtype=float))
    slope = 1.0 if n.size < 2 else float(np.clip(np.polyfit(n, d, 1)[0], 0.0, 1.0))
    n0 = float(np.exp(n.mean()))
    d0 = float(np.exp(d.mean()))
    kind = ("one token count for every size" if slope < 0.15 else
            "tokens in proportion to size" if slope > 0.85 else f"tokens growing as size^{slope:.2f}")
    return {"slope": slope, "n0": n0, "d0": d0, "description": kind,
            "tokens_per_param_at_n0": d0 / n0, "fitted_on_sizes": int(n.size)}


def recipe_tokens(recipe: dict, params) -> np.ndarray:
    return recipe["d0"] * (np.asarray(params, dtype=float) / recipe["n0"]) ** recipe["slope"]


def largest_affordable(recipe: dict, budget: float) -> float:
    """The largest size whose run on the recipe's tokens costs at most ``budget`` (6 N D(N), increasing in N)."""
    # 6 N D0 (N / N0)^s <= B  <=>  N^(1+s) <= B N0^s / (6 D0)
    s = recipe["slope"]
    return float((budget * recipe["n0"] ** s / (6.0 * recipe["d0"])) ** (1.0 / (1.0 + s)))


def candidate_sizes(trained, largest: float, n: int) -> np.ndarray:
    """Up to ``n`` sizes log-spaced from the smallest trained size to ``largest``, none a trained size again."""
    lo = min(trained)
    grid = np.geomspace(lo, largest, n) if largest > lo * SAME_SIZE_RATIO else np.array([largest])
    far = [g for g in grid if min(abs(math.log(g / t)) for t in trained) >= math.log(SAME_SIZE_RATIO)]
    return np.array(far, dtype=float)


# ---------------------------------------------------------------------------
# scoring


def _score_error_model(model, designs: list[dict]) -> list[dict]:
    frame = pd.DataFrame([design_columns(d) for d in designs])
    pred = model.predict(frame, level="fit")
    return [{"p10": float(r["p10"]), "p50": float(r["p50"]), "p90": float(r["p90"]), "level": "fit",
             "outside": list(r["outside"])} for _, r in pred.iterrows()]


def _rank_key(c: dict, ranked_by: str) -> tuple:
    src = c["error_model"] if ranked_by == "error model" else c["own_fit"]["expected"]
    # A candidate whose figures could not be computed (every bootstrap refit failed) ranks last.
    return tuple(v if np.isfinite(v) else np.inf for v in (src["p90"], src["p50"])) + (c["flops"],)


def _schedule(tokens: float) -> dict:
    """When to evaluate the run: the plans' schedule (fits.plan) - 50 evaluations, the early ones dropped."""
    return {"evaluate_every_tokens": tokens / DEFAULT_CHECKPOINTS, "checkpoints": DEFAULT_CHECKPOINTS,
            "drop_before_tokens": float(min(DEFAULT_POLICY.min_tokens, DEFAULT_POLICY.max_run_fraction * tokens))}


def validate_advice_request(runs, target_params, target_tokens, budget_flops, max_runs: int = 1) -> dict:
    """Check a request without fitting (a service refuses bad input before it queues a job).

    Raises :class:`AdviceInputError` naming the field, or :class:`fits.trainset.FitInputError` for the runs;
    returns the numbers resolved (``target_params, target_tokens, budget_flops, max_runs``).
    """
    n_t, d_t = _positive("target_params", target_params), _positive("target_tokens", target_tokens)
    budget = _positive("budget_flops", budget_flops)
    if isinstance(max_runs, bool) or not isinstance(max_runs, (int, np.integer)) or not 1 <= max_runs <= MAX_RUNS:
        raise AdviceInputError("max_runs", f"must be a whole number between 1 and {MAX_RUNS}, not {max_runs!r}")
    ts = TrainSet.from_frame(runs)
    if n_t <= ts.params.max():
        raise AdviceInputError("target_params", f"the target ({n_t:.3g}) must be larger than every run so far "
                                                f"(largest {ts.params.max():.3g})")
    recipe = tokens_recipe(ts)
    smallest = float(ts.params.min())
    if min(largest_affordable(recipe, budget), LARGEST_SHARE_OF_TARGET * n_t) < smallest / 10:
        cheapest = 6.0 * smallest * float(recipe_tokens(recipe, smallest))
        raise AdviceInputError("budget_flops", f"{budget:.3g} FLOPs affords no run near the sizes trained (a run "
                                               f"of the smallest size, {smallest:.3g}, costs {cheapest:.3g} on the "
                                               "recipe's tokens)")
    return {"target_params": n_t, "target_tokens": d_t, "budget_flops": budget, "max_runs": int(max_runs)}


def advise(runs, target_params, target_tokens, budget_flops, *, error_model=None, max_runs: int = 1,
           n_candidates: int = DEFAULT_CANDIDATES, n_boot: int = DEFAULT_N_BOOT, seed: int = 0,
           own_fit: bool = True, method=DEFAULT_METHOD) -> Advice:
    """Recommend the next run(s) for ``runs`` (a runs frame), the target and ``budget_flops`` left (module docstring).

    ``budget_flops``: compute still free for new runs (runs in progress are expected to finish on what was
    set aside for them). ``own_fit=False`` skips the simulation (only with an ``error_model``: the ranking
    does not use it then; backtests use this to stay quick).
    """
    if not own_fit and error_model is None:
        raise AdviceInputError("error_model", "without an error model the advice needs the own-fit evidence")
    request = validate_advice_request(runs, target_params, target_tokens, budget_flops, max_runs)
    n_t, d_t, budget = request["target_params"], request["target_tokens"], request["budget_flops"]
    ts = TrainSet.from_frame(runs)
    fit = method.fit(ts, stderr=False)
    ranked_by = "error model" if error_model is not None else "own fit"
    recipe = tokens_recipe(ts)
    start = design = current_design(ts, fit, n_t, d_t)  # with_run copies: start stays the runs so far
    added: list[pd.DataFrame] = []

    now = {"error_model": _score_error_model(error_model, [design])[0] if error_model is not None else None,
           "own_fit": own_fit_spread(fit, n_t, d_t, n_boot=n_boot, seed=seed) if own_fit else None}
    chosen_runs, first_table, remaining, warnings = [], [], budget, []
    for step in range(request["max_runs"]):
        if remaining <= budget * 1e-6:
            break  # the earlier advised runs spent it
        largest = min(largest_affordable(recipe, remaining), LARGEST_SHARE_OF_TARGET * n_t)
        if largest < min(design["sizes"]) / 10:
            break  # (not at the first step: validate_advice_request refused that budget)
        sizes = candidate_sizes(design["sizes"], largest, n_candidates)
        if sizes.size == 0:
            if step == 0:
                warnings.append("every size the budget affords was trained already: nothing new to add")
            break
        tokens = recipe_tokens(recipe, sizes)
        designs = [with_run(design, n, d) for n, d in zip(sizes, tokens)]
        em = _score_error_model(error_model, designs) if error_model is not None else [None] * len(designs)
        table = []
        for n, d, dsg, e in zip(sizes, tokens, designs, em):
            cand = {"params": float(n), "tokens": float(d), "flops": float(6.0 * n * d),
                    "tokens_per_param": float(d / n), "scale_up": n_t / max(dsg["sizes"]), "error_model": e,
                    "own_fit": None}
            if own_fit:
                sim = simulated_run(fit, n, d, name=f"advised-{step + 1}-{n:.4g}")
                cand["own_fit"] = own_fit_spread(fit, n_t, d_t, added + [sim], n_boot=n_boot, seed=seed)
            table.append(cand)
        table.sort(key=lambda c: _rank_key(c, ranked_by))
        best = table[0]
        chosen_runs.append({**{k: best[k] for k in ("params", "tokens", "flops", "tokens_per_param", "scale_up")},
                            **_schedule(best["tokens"]), "expected_are_after": _figures(best, ranked_by),
                            "error_model": best["error_model"], "own_fit": best["own_fit"]})
        if step == 0:
            first_table = table
        design = with_run(design, best["params"], best["tokens"])
        if own_fit:
            added.append(simulated_run(fit, best["params"], best["tokens"], name=f"advised-{step + 1}"))
        remaining -= best["flops"]
    if not chosen_runs:
        raise AdviceInputError("budget_flops", warnings[0] if warnings else "no run fits the budget")

    now_fig = _figures(now, ranked_by)
    after_fig = chosen_runs[-1]["expected_are_after"]
    current = {"design": design_columns(start), "sizes": start["sizes"], "compute": start["compute"],
               "n_runs": ts.n_runs, "scale_up": n_t / ts.params.max(),
               "method": fit.choice.get("method", fit.method.name), "law": fit.result.form.name,
               "prediction": float(fit.predict([n_t], [d_t])[0]),
               "error_model": now["error_model"], "own_fit": now["own_fit"]}
    return Advice(
        target={"params": n_t, "tokens": d_t, "compute": 6.0 * n_t * d_t}, budget_flops=budget,
        ranked_by=ranked_by, current=current, recipe=recipe,
        expected_are={"now": now_fig, "after": after_fig, "evidence": _evidence_label(ranked_by),
                      "after_runs": len(chosen_runs)},
        runs=chosen_runs,
        runner_ups=[_brief(c, ranked_by) for c in first_table[1:1 + RUNNER_UPS]],
        candidates=[_brief(c, ranked_by) for c in first_table],
        reasons=_reasons(chosen_runs, first_table, now_fig, ranked_by, recipe, budget, own_fit),
        warnings=warnings + _warnings(first_table[0] if first_table else None, ts, n_t, now_fig, after_fig),
    )


def _figures(entry: dict, ranked_by: str) -> dict:
    """p10/p50/p90 of the evidence the ranking used."""
    if ranked_by == "error model":
        return {k: entry["error_model"][k] for k in ("p10", "p50", "p90")}
    return dict(entry["own_fit"]["expected"])


def _evidence_label(ranked_by: str) -> str:
    if ranked_by == "error model":
        return ("error model, fit level: the design's features with the current fit's rmse_log and rollout "
                "error (the added run keeps the current evidence)")
    return ("own fit: run-level bootstrap of the runs with the advised run simulated from the current law, "
            "plus the corpus-measured extrapolation error at the new scale-up (|log error|, about the ARE)")


def _brief(c: dict, ranked_by: str) -> dict:
    out = {k: c[k] for k in ("params", "tokens", "flops", "tokens_per_param", "scale_up")}
    out["expected_are_after"] = _figures(c, ranked_by)
    out["error_model"] = c["error_model"]
    out["own_fit"] = None if c["own_fit"] is None else {k: c["own_fit"][k] for k in ("expected", "boot_sd_log",
                                                                                      "sd_log", "scale_up")}
    return out


def _reasons(chosen, table, now_fig, ranked_by, recipe, budget, own_fit) -> list[str]:
    best = chosen[0]
    out = [
        f"of {len(table)} candidate runs (sizes log-spaced from the smallest trained size to the largest the "
        f"{budget:.3g} FLOPs afford), a run of {best['params']:.3g} parameters on {best['tokens']:.3g} tokens "
        f"({best['flops']:.3g} FLOPs) has the lowest plausible worst-case ARE by the {ranked_by}: "
        f"p90 {now_fig['p90']:.2%} now -> {best['expected_are_after']['p90']:.2%}, "
        f"p50 {now_fig['p50']:.2%} -> {best['expected_are_after']['p50']:.2%}",
        f"tokens follow the recipe of the runs so far ({recipe['description']})",
        f"the scale-up to the target falls to {best['scale_up']:.3g}x",
    ]
    if ranked_by == "error model" and own_fit:
        by_own = sorted(table, key=lambda c: _rank_key(c, "own fit"))
        place = [c["params"] for c in by_own].index(table[0]["params"]) + 1
        out.append(f"the own fit ranks this run {place} of {len(table)} (p50 |log error| "
                   f"{table[0]['own_fit']['expected']['p50']:.2%} after, against "
                   f"{by_own[0]['own_fit']['expected']['p50']:.2%} for its best, a run of {by_own[0]['params']:.3g})")
    if len(chosen) > 1:
        out.append("then, each as if the runs before it were done: " + ", ".join(
            f"{r['params']:.3g} parameters on {r['tokens']:.3g} tokens" for r in chosen[1:]))
    return out


def _warnings(best, ts: TrainSet, n_t: float, now_fig: dict, after_fig: dict) -> list[str]:
    out = []
    if after_fig["p50"] >= now_fig["p50"] or after_fig["p90"] >= now_fig["p90"]:
        out.append(f"the advised run barely changes the expected ARE (p50 {now_fig['p50']:.2%} -> "
                   f"{after_fig['p50']:.2%}, p90 {now_fig['p90']:.2%} -> {after_fig['p90']:.2%})"
                   + (": the budget affords no size closer to the target than the largest trained"
                      if best is not None and best["params"] < ts.params.max() else ""))
    if best is not None and best["error_model"] and best["error_model"]["outside"]:
        out.append("the advised design lies outside the corpus's designs in " + ", ".join(
            best["error_model"]["outside"]) + ": its expected ARE is an extrapolation")
    if ts.sizes.size < 2:
        out.append("one size so far: the current law cannot extrapolate in size; the own fit's figures for "
                   "'now' are those of a token-only law")
    return out

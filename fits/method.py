"""The fitting method as an object: ``Method(...).fit(train) -> Fit``; ``Fit.predict``, ``Fit.interval``.

A :class:`Method` is every choice that turns a family's runs into a law: which
checkpoints and how they weigh (:class:`fits.policy.CheckpointPolicy`), which
optional terms the law may take, whether exponents are borrowed where the data
cannot identify them, and the robust loss. ``fit`` returns a :class:`Fit`,
which keeps the data it used, so its prediction interval (a run-level
bootstrap, :mod:`fits.interval`) needs no second fit of the point estimate.

:class:`AutoMethod` - the library's default - chooses among candidate methods
from the user's own data: it rolls each candidate out on the family's own
ladder (predict the largest trained size from the smaller ones, and the next
largest from the ones below it, scored like the target: the last 30% of the
held-out size's tokens) and keeps the one that extrapolated best - but leaves
the first candidate, the default, only for one that beat it at every held-out
size (:func:`consistent_winners`). Which candidate won, why, and each one's
scores are in ``Fit.choice``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .fitting import DEFAULT_DELTA, fit_law
from .interval import fit_interval
from .jsonsafe import json_safe
from .laws import CHINCHILLA, CONSTANT, DATA_CONSTRAINED, SIZE_ONLY, TOKENS_ONLY, LawForm, form_named
from .policy import DEFAULT_POLICY, CheckpointPolicy
from .posterior import DEFAULT_PRIOR, ExponentPrior
from .result import FitResult
from .targets import TARGET_FRACTION, resolve_target_run_tokens, targets
from .trainset import FitInputError, TrainSet

FIT_VERSION = 1
TERMS = ("schedule", "overfit")
# A run "has a curve" for the schedule term when it logged at least this many checkpoints ...
SCHEDULE_MIN_CHECKPOINTS = 3
# ... and the longest run is at least this much longer than the shortest (see has_curves).
SCHEDULE_MIN_LENGTH_RATIO = 1.5
# Repeated data counts as overfitting once a run ends this far above its best loss while past this many epochs.
OVERFIT_RISE = 0.01
OVERFIT_MIN_EPOCHS = 2.0
# Final losses identify a law's exponents when there are at least this many more runs than parameters.
MIN_SPARE_RUNS = 2
# Rollout fits only rank the candidates: exponents to 0.01 are plenty for that (and cost fewer scans).
ROLLOUT_TOL = 1e-2
# The cap trusts only runs at least this many times smaller than the target (see cap_by_smaller_runs).
CAP_SIZE_RATIO = 2.0


@dataclass(frozen=True)
class Method:
    """One way of fitting a family's runs (see the module docstring).

    ``form`` None = the law the data support (:func:`choose_form`); ``prior``
    "auto" = borrow the exponents only where the data cannot identify them
    (:func:`exponents_identified`), an :class:`ExponentPrior` = always, None = never.
    """

    name: str = "curves"
    policy: CheckpointPolicy = DEFAULT_POLICY
    terms: tuple = TERMS
    prior: ExponentPrior | str | None = "auto"
    loss: str = "huber"
    delta: float = DEFAULT_DELTA
    refine: str = "irls"
    form: str | None = None
    cap: bool = False

    def get_params(self) -> dict:
        """Every setting, as plain JSON types."""
        prior = self.prior.to_dict() if isinstance(self.prior, ExponentPrior) else self.prior
        return {"name": self.name, "policy": self.policy.to_dict(), "terms": list(self.terms), "prior": prior,
                "loss": self.loss, "delta": self.delta, "refine": self.refine, "form": self.form, "cap": self.cap}

    def with_params(self, **changes) -> "Method":
        return replace(self, **changes)

    def fit(self, train, *, stderr: bool = True, tol: float = 3e-3) -> "Fit":
        """Fit ``train`` (a DataFrame of runs or a :class:`TrainSet`); ``tol``: the exponents' precision."""
        ts = TrainSet.from_frame(train)
        idx, weight = self.policy.select_index(ts)
        if idx.size == 0:
            raise FitInputError(f"checkpoint policy {self.policy.name!r} kept no rows")
        used = ts.take(idx)
        form = choose_form(used, self.terms) if self.form is None else form_named(self.form)
        prior = self.prior
        if isinstance(prior, str):
            prior = None if exponents_identified(used, form) else DEFAULT_PRIOR
        result = fit_law(used.params, used.tokens, used.value, form=form, epochs=used.epochs,
                         run_tokens=used.run_tokens, runs=used.run, weights=weight, loss=self.loss,
                         delta=self.delta, refine=self.refine, prior=prior, stderr=stderr, tol=tol)
        return Fit(method=self, result=result, train=ts, used=used, weight=weight)


@dataclass
class Fit:
    """A fitted method: the law, the rows it was fitted to, and (for AutoMethod) how the method was chosen."""

    method: Method
    result: FitResult
    train: TrainSet
    used: TrainSet
    weight: np.ndarray
    choice: dict = field(default_factory=dict)

    @property
    def form(self) -> LawForm:
        return self.result.form

    def predict(self, params, tokens, epochs=None, run_tokens=None) -> np.ndarray:
        """Predicted loss of targets (N, D) of this family.

        ``run_tokens``: final tokens of each target's run; default: the largest
        tokens asked for its size (targets of one size are checkpoints of one run).
        """
        n, d = targets(params, tokens)
        run = resolve_target_run_tokens(n, d, run_tokens)
        pred = self.result.predict(n, d, epochs, run)
        return cap_by_smaller_runs(self.train, n, d, pred) if self.method.cap and not self.form.overfit else pred

    def interval(self, params, tokens, *, coverage: float = 0.8, epochs=None, run_tokens=None, n_boot: int = 100,
                 seed: int = 0, method_error: bool = True, error_model=None):
        """A ``coverage`` prediction interval (:func:`fits.interval.fit_interval`), reusing this fit.

        ``error_model`` (an :class:`fits.errormodel.ErrorModel`): the law's own error is what that model
        expects of this design with this fit's evidence (its "fit" level), instead of the corpus-wide
        table of :mod:`fits.interval`.
        """
        half = None
        if method_error and error_model is not None:
            n, d = targets(params, tokens)
            designs = pd.DataFrame([self.design(size, tokens_) for size, tokens_ in zip(n.ravel(), d.ravel())])
            half = np.log1p(error_model.are_quantile(designs, coverage, level="fit")).reshape(n.shape)
        out = fit_interval(self, params, tokens, coverage=coverage, epochs=epochs, run_tokens=run_tokens,
                           n_boot=n_boot, seed=seed, include_method_error=method_error, method_half_width=half)
        if self.method.cap and not self.form.overfit:
            # The band is about the law's value; the prediction may be capped below it: move the band with it.
            capped = self.predict(params, tokens, epochs, run_tokens).ravel()
            ratio = capped / out.prediction
            out.prediction, out.lower, out.upper = capped, out.lower * ratio, out.upper * ratio
        return out

    def design(self, target_params: float, target_tokens: float) -> dict:
        """This fit as a design of the error model: what was trained, for which target, and the fit's evidence."""
        train = self.train
        last = train.is_last()
        compute = 6.0 * float(np.sum(train.params[last] * train.tokens[last]))
        chosen = self.choice.get("method", self.method.name)
        rollout = (self.choice.get("rollout_mean") or {}).get(chosen)
        epochs = train.epochs[np.isfinite(train.epochs)]
        runs, counts = np.unique(train.run, return_counts=True)
        return {
            "scale_up": float(target_params) / float(train.params.max()),
            "n_models": int(np.unique(train.params).size),
            "train_compute_share": compute / (6.0 * float(target_params) * float(target_tokens)),
            "fraction": float(np.clip(np.median(train.tokens[last] / train.run_tokens[last]), 0.0, 1.0)),
            "tokens_per_model": float(np.median(train.tokens[last])),
            "tokens_per_param": float(np.median(train.tokens[last] / train.params[last])),
            "max_epochs": float(max(epochs.max(), 1.0)) if epochs.size else 1.0,
            "has_curves": float(np.median(counts) > 1),
            "rmse_log": float(self.result.stats.get("rmse_log", np.nan)),
            "rollout_are": float(rollout) if rollout is not None else np.nan,
        }

    def used_frame(self) -> pd.DataFrame:
        """The rows the law was fitted to, with their weights (plots, reports)."""
        return self.used.frame().assign(weight=self.weight)

    def to_dict(self) -> dict:
        return {
            "version": FIT_VERSION,
            "method": self.method.get_params(),
            "law": self.result.to_dict(),
            "choice": self.choice,
            "data": {"n_rows": len(self.train), "n_rows_fitted": len(self.used), "n_runs": self.train.n_runs,
                     "sizes": [float(s) for s in self.train.sizes]},
        }


@dataclass(frozen=True)
class AutoMethod:
    """Choose among ``candidates`` by rolling each out on the family's own sizes (see the module docstring).

    ``folds``: how many of the largest trained sizes are held out in turn (each
    needs two smaller sizes to fit). With no fold possible the first candidate is used.
    """

    candidates: tuple = ()
    folds: int = 2
    name: str = "auto"

    def get_params(self) -> dict:
        return {"name": self.name, "folds": self.folds, "candidates": [c.get_params() for c in self.candidates]}

    def fit(self, train, *, stderr: bool = True) -> Fit:
        ts = TrainSet.from_frame(train)
        candidates = comparable_candidates(self.candidates, ts)
        scores, folds = rollout_scores(candidates, ts, self.folds)
        means = {name: float(np.mean(s)) if s else float("nan") for name, s in scores.items()}
        finite = {name: m for name, m in means.items() if np.isfinite(m)}
        default = candidates[0].name
        if finite:
            eligible = consistent_winners(scores, default) if default in finite else finite
            chosen_name = min(eligible, key=lambda name: (finite[name], list(means).index(name)))
            reason = (f"lowest error predicting its own larger sizes from the smaller ones "
                      f"({100 * finite[chosen_name]:.2f}% over {len(folds)} held-out size(s))")
            passed_over = [n for n in finite if n not in eligible and finite[n] < finite[chosen_name]]
            if passed_over:
                reason += (f"; {', '.join(passed_over)} did better on average but not at every held-out size, "
                           f"so {default}, the default, stays")
        else:
            chosen_name = candidates[0].name
            reason = ("too few sizes to hold one out (a rollout needs two smaller sizes): the first candidate"
                      if not folds else "no candidate could be rolled out: the first candidate")
        dropped = [c.name for c in self.candidates if c not in candidates]
        if dropped:
            reason += (f"; not considered: {', '.join(dropped)} (on these runs its law would lose a term the "
                       "others keep, so it could not extrapolate in that direction)")
        chosen = next(c.with_params(name=name, cap=name != c.name) for c in candidates
                      for name in (c.name, capped_name(c)) if name == chosen_name)
        fit = chosen.fit(ts, stderr=stderr)
        # Plain JSON (a candidate that failed a rollout scored inf; no rollout at all is null).
        fit.choice = json_safe({"method": chosen_name, "reason": reason, "rollout_are": scores,
                                "rollout_mean": means, "folds": folds})
        return fit


def comparable_candidates(candidates, ts: TrainSet) -> tuple:
    """The candidates whose law on these runs keeps every term (size, tokens) the richest candidate's keeps.

    Final losses of runs that all stopped at one token count support only a size law: a rollout scores
    held-out sizes at tokens already trained, so it cannot see that such a law is blind to longer training.
    """
    terms = {}
    for c in candidates:
        idx, _ = c.policy.select_index(ts)
        if idx.size == 0:
            continue
        form = choose_form(ts.take(idx), c.terms) if c.form is None else form_named(c.form)
        terms[c.name] = (form.size_term, form.data_term)
    if not terms:
        return tuple(candidates)
    best = max(sum(t) for t in terms.values())
    kept = tuple(c for c in candidates if c.name in terms and sum(terms[c.name]) == best)
    return kept or tuple(candidates)


def consistent_winners(scores: dict, default: str) -> dict:
    """The candidates that may replace ``default``: those that beat it at every held-out size (and it).

    Two or three held-out sizes are a small sample: a candidate better on
    average but worse at one of them may owe its lead to that one size. Leaving
    the default only on a consistent win asks the family's own data for the
    evidence instead of a margin tuned to a corpus.
    """
    base = scores[default]
    return {name: s for name, s in scores.items()
            if name == default or (len(s) == len(base) > 0 and all(a < b for a, b in zip(s, base)))}


def rollout_scores(candidates, ts: TrainSet, n_folds: int) -> tuple[dict, list]:
    """Each candidate's ARE on the family's largest trained sizes, each predicted from the sizes below it."""
    sizes = ts.sizes
    folds = []
    for j in range(1, n_folds + 1):
        if sizes.size - j < 2:
            break
        held = sizes[-j]
        below = ts.params < held
        at = ts.params == held
        window = at & (ts.tokens >= TARGET_FRACTION * ts.tokens[at].max())
        folds.append((held, below, window))
    scores = {name: [] for c in candidates for name in (c.name, capped_name(c))}
    for held, below, window in folds:
        inner, target = ts.take(below), ts.take(window)
        done = {}  # candidates that fit the same rows with the same weights and law give the same prediction
        for c in candidates:
            idx, weight = c.policy.select_index(inner)
            key = (c.terms, c.prior if not isinstance(c.prior, ExponentPrior) else id(c.prior), c.loss, c.delta,
                   c.refine, c.form, idx.tobytes(), np.round(weight / max(weight.max(), 1e-300), 12).tobytes())
            if key not in done:
                try:
                    pred = c.fit(inner, stderr=False, tol=ROLLOUT_TOL).result.predict(
                        target.params, target.tokens, target.epochs, target.run_tokens)
                    capped = cap_by_smaller_runs(inner, target.params, target.tokens, pred)
                    errs = [float(np.mean(np.abs(p - target.value) / target.value)) for p in (pred, capped)]
                except FitInputError:
                    errs = [float("inf")] * 2
                done[key] = [e if np.isfinite(e) else float("inf") for e in errs]
            scores[c.name].append(done[key][0])
            scores[capped_name(c)].append(done[key][1])
    info = [{"held_out_params": float(held), "train_sizes": int(np.unique(ts.params[below]).size),
             "target_rows": int(window.sum())} for held, below, window in folds]
    return scores, info


def capped_name(method: Method) -> str:
    return f"{method.name}+cap"


def cap_by_smaller_runs(train: TrainSet, target_params, target_tokens, predicted) -> np.ndarray:
    """No target predicted worse than a clearly smaller run that saw no more tokens actually did.

    A model twice as large or more, trained at least as long, in the same
    family, should not end up with a higher loss; a law that says so has been
    pulled off by a misfit (a phase change, a saturated synthetic task).
    Only runs at most 1/CAP_SIZE_RATIO of the target's size cap it: at nearly
    one size, models of different shapes (width against depth) differ by more
    than their sizes do, so a slightly smaller run is no bound (the README's
    science section has what the ratio changed). Whether to apply the cap at
    all is part of the rollout choice.
    """
    predicted = np.asarray(predicted, dtype=float).copy()
    n = np.broadcast_to(np.asarray(target_params, dtype=float), predicted.shape)
    d = np.broadcast_to(np.asarray(target_tokens, dtype=float), predicted.shape)
    for i in np.ndindex(predicted.shape):
        seen = (train.params * CAP_SIZE_RATIO <= n[i]) & (train.tokens <= d[i])
        if seen.any():
            predicted[i] = min(predicted[i], float(train.value[seen].min()))
    return predicted


# ---------------------------------------------------------------------------
# what the data support


def choose_form(used: TrainSet | pd.DataFrame, terms=TERMS) -> LawForm:
    """The law the data support.

    A size term needs >= 2 sizes and a token term >= 2 token counts (a sweep of
    final losses at one budget has one); repeated data asks for effective
    tokens, and overfitting seen in the curves for the overfitting term; curves
    (runs with several checkpoints before their end) for the schedule term.
    ``terms`` limits the optional terms considered.
    """
    used = TrainSet.from_frame(used)
    sizes, token_counts = np.unique(used.params).size, np.unique(used.tokens).size
    if sizes < 2:
        base = TOKENS_ONLY if token_counts >= 2 else CONSTANT
    elif token_counts < 2:
        base = SIZE_ONLY
    else:
        epochs = used.epochs
        base = DATA_CONSTRAINED if np.any(np.isfinite(epochs) & (epochs > 1.0)) else CHINCHILLA
    if not base.data_term:
        return base
    return base.with_terms(schedule="schedule" in terms and has_curves(used),
                           overfit="overfit" in terms and base.data_constrained and shows_overfitting(used))


def has_curves(used: TrainSet | pd.DataFrame) -> bool:
    """True when runs log curves and differ in length, so the schedule term can be told from the law.

    With every run as long as the others, a checkpoint's fraction of its run is
    a function of its tokens alone: the term and the law's token term could not
    be told apart. The term is measured by how the loss falls as the learning
    rate decays, so some run must also be seen past half its length.
    """
    used = TrainSet.from_frame(used)
    runs, counts = np.unique(used.run, return_counts=True)
    if np.median(counts) < SCHEDULE_MIN_CHECKPOINTS:
        return False
    lengths = np.array([used.run_tokens[used.run == r][0] for r in runs])
    share = used.tokens / used.run_tokens
    return bool(lengths.max() >= SCHEDULE_MIN_LENGTH_RATIO * lengths.min()
                and (share < 0.99).any() and (share >= 0.5).any())


def shows_overfitting(used: TrainSet | pd.DataFrame) -> bool:
    """True when some run, well past one epoch, ends clearly above the best loss it reached."""
    used = TrainSet.from_frame(used)
    for r in np.unique(used.run):
        rows = used.run == r
        if rows.sum() < SCHEDULE_MIN_CHECKPOINTS:
            continue
        last = np.argmax(np.where(rows, used.tokens, -np.inf))
        if used.epochs[last] > OVERFIT_MIN_EPOCHS and used.value[last] > (1 + OVERFIT_RISE) * used.value[rows].min():
            return True
    return False


def exponents_identified(used: TrainSet | pd.DataFrame, form: LawForm) -> bool:
    """Whether the data can pin the law's exponents down on their own.

    Not from fewer than three sizes (E, A and alpha from two sizes: any alpha
    fits; and one size's curve trades E against beta), nor from final losses
    of barely more runs than the law has parameters (five runs for five
    parameters interpolate exactly). Then the fit borrows them.
    """
    used = TrainSet.from_frame(used)
    if not form.exponent_names:
        return True
    if np.unique(used.params).size < 3:
        return False
    runs = used.n_runs
    final_losses = len(used) <= 1.5 * runs
    n_params = len(form.coefficient_names) + len(form.exponent_names)
    return not (final_losses and runs < n_params + MIN_SPARE_RUNS)


# ---------------------------------------------------------------------------
# the candidates and the default

CURVES = Method("curves")
FINAL = Method("final", policy=CheckpointPolicy("final-only", min_tokens=0.0, max_run_fraction=0.0,
                                                min_run_fraction=1.0))
# Every checkpoint after the early cut, each weighing the same (no thinning, no run or size weights).
ALL_POINTS = Method("all-points", policy=CheckpointPolicy("all-points", max_per_run=None, equal_run_weight=False,
                                                          size_weight_power=0.0))
DEFAULT_METHOD = AutoMethod(candidates=(CURVES, FINAL, ALL_POINTS))

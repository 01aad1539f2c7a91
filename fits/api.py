"""The library's public contract: fit a family's small models, predict a bigger one.

``predict_loss(train, target_params, target_tokens)`` and
``predict_interval(train, target_params, target_tokens, coverage=0.8)`` apply
the default checkpoint policy and law (see :func:`choose_form`), so a user
with a DataFrame of their small runs needs nothing else.

Runs are taken to be complete: each run's last checkpoint is the end of its
training (a ``run_tokens`` column can say otherwise, e.g. for runs still in
progress). Targets of one size are taken to be checkpoints of one run that
ends at the largest of their token counts (``target_run_tokens`` can say
otherwise); ask for a single token count to get a run's final loss.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .data import run_key
from .fitting import DEFAULT_PRIOR, ExponentPrior, FitInputError, FitResult, fit_law
from .laws import CHINCHILLA, CONSTANT, DATA_CONSTRAINED, SIZE_ONLY, TOKENS_ONLY, LawForm, form_named
from .policy import DEFAULT_POLICY, CheckpointPolicy

REQUIRED_COLUMNS = ("model", "params", "tokens", "value")
# Huber threshold on log residuals: 0.3%. Chosen by backtest over 1e-3 (the
# paper's, closer to an L1 fit), 3e-3, 1e-2, 3e-2 and plain least squares
# (README, "what each choice bought").
DEFAULT_DELTA = 3e-3
# A run "has a curve" for the schedule term when it logged at least this many checkpoints.
SCHEDULE_MIN_CHECKPOINTS = 3
# ... and the longest run is at least this much longer than the shortest (see has_curves).
SCHEDULE_MIN_LENGTH_RATIO = 1.5
# Repeated data counts as overfitting once a run ends this far above its best
# loss while past this many epochs (the datablations curves at 44 epochs end
# ~20% above their minimum; noise on a flat curve is well under 1%).
OVERFIT_RISE = 0.01
OVERFIT_MIN_EPOCHS = 2.0
# Final losses identify a law's exponents when there are at least this many more runs than parameters.
MIN_SPARE_RUNS = 2


def prepare_train(train: pd.DataFrame) -> pd.DataFrame:
    """Validate and normalise a training frame (``model, params, tokens, value``, optional ``seed``, ``epochs``)."""
    if not isinstance(train, pd.DataFrame):
        raise FitInputError(f"train must be a pandas DataFrame, not {type(train).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in train.columns]
    if missing:
        raise FitInputError(f"train is missing column(s) {missing}; it needs {list(REQUIRED_COLUMNS)}")
    if train.empty:
        raise FitInputError("train has no rows")
    out = pd.DataFrame({"model": train["model"].astype(str)})
    for col in ("params", "tokens", "value"):
        vals = pd.to_numeric(train[col], errors="coerce")
        bad = ~np.isfinite(vals.to_numpy(dtype=float))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise FitInputError(f"train column {col!r} has a missing, non-numeric or infinite value at row {i}: "
                                f"{train[col].iloc[i]!r}")
        if (vals <= 0).any():
            i = int(np.flatnonzero((vals <= 0).to_numpy())[0])
            raise FitInputError(f"train column {col!r} must be positive; row {i} has {float(vals.iloc[i])!r}")
        out[col] = vals.to_numpy(dtype=float)
    out["seed"] = train["seed"].fillna("").astype(str).to_numpy() if "seed" in train.columns else ""
    out["epochs"] = pd.to_numeric(train["epochs"], errors="coerce").to_numpy() if "epochs" in train.columns else np.nan
    out["family"] = train["family"].astype(str).to_numpy() if "family" in train.columns else "family"
    out = out.reset_index(drop=True)
    out["run"] = run_key(out)  # computed once: policies, fits and bootstraps group by it many times
    last = out.groupby(out["run"])["tokens"].transform("max").to_numpy()
    if "run_tokens" in train.columns:
        given = pd.to_numeric(train["run_tokens"], errors="coerce").to_numpy(dtype=float)
        bad = np.isfinite(given) & (given < out["tokens"].to_numpy() * (1 - 1e-9))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise FitInputError(f"train column 'run_tokens' is the run's final tokens and cannot be below the "
                                f"checkpoint's tokens; row {i} has {float(given[i])!r} < {float(out['tokens'].iloc[i])!r}")
        last = np.where(np.isfinite(given), given, last)
    out["run_tokens"] = last
    return out


def _targets(target_params, target_tokens):
    n, d = np.broadcast_arrays(np.asarray(target_params, dtype=float), np.asarray(target_tokens, dtype=float))
    for name, arr in (("target_params", n), ("target_tokens", d)):
        if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise FitInputError(f"{name} must be positive and finite")
    return n.astype(float), d.astype(float)


TERMS = ("schedule", "overfit")


def choose_form(selected: pd.DataFrame, terms=TERMS) -> LawForm:
    """The law the data supports.

    A size term needs >= 2 sizes and a token term >= 2 token counts (a sweep of
    final losses at one budget has one); repeated data asks for effective
    tokens, and overfitting seen in the curves for the overfitting term; curves
    (runs with several checkpoints before their end) for the schedule term.
    ``terms`` limits the optional terms considered (for comparisons).
    """
    sizes, token_counts = selected["params"].nunique(), selected["tokens"].nunique()
    if sizes < 2:
        base = TOKENS_ONLY if token_counts >= 2 else CONSTANT
    elif token_counts < 2:
        base = SIZE_ONLY
    else:
        epochs = selected["epochs"].to_numpy(dtype=float)
        base = DATA_CONSTRAINED if np.any(np.isfinite(epochs) & (epochs > 1.0)) else CHINCHILLA
    if not base.data_term:
        return base
    return base.with_terms(schedule="schedule" in terms and has_curves(selected),
                           overfit="overfit" in terms and base.data_constrained and shows_overfitting(selected))


def has_curves(selected: pd.DataFrame) -> bool:
    """True when runs log curves and differ in length, so the schedule term can be told from the law.

    With every run as long as the others, a checkpoint's fraction of its run is
    a function of its tokens alone: the term and the law's token term could not
    be told apart, and their split would decide, arbitrarily, what a longer run
    is predicted to reach. Then the plain law is fitted to the curves as they are.
    """
    keys = run_key(selected)
    per_run = selected.groupby(keys).size()
    if per_run.median() < SCHEDULE_MIN_CHECKPOINTS:
        return False
    run_tokens = selected["run_tokens"] if "run_tokens" in selected.columns else selected.groupby(keys)[
        "tokens"].transform("max")
    lengths = run_tokens.groupby(keys).first()
    share = selected["tokens"] / run_tokens
    # The term is measured by how the loss falls as the learning rate decays: some run must be seen past
    # half its length (a run seen to 10% of it has its whole decay ahead, and the term would be a guess).
    return bool(lengths.max() >= SCHEDULE_MIN_LENGTH_RATIO * lengths.min()
                and (share < 0.99).any() and (share >= 0.5).any())


def shows_overfitting(selected: pd.DataFrame) -> bool:
    """True when some run, well past one epoch, ends clearly above the best loss it reached."""
    for _, run in selected.groupby(run_key(selected)):
        if len(run) < SCHEDULE_MIN_CHECKPOINTS:
            continue
        last = run.loc[run["tokens"].idxmax()]
        if last["epochs"] > OVERFIT_MIN_EPOCHS and last["value"] > (1 + OVERFIT_RISE) * run["value"].min():
            return True
    return False


def fit_train(
    train: pd.DataFrame,
    *,
    policy: CheckpointPolicy = DEFAULT_POLICY,
    form: LawForm | str | None = None,
    delta: float = DEFAULT_DELTA,
    terms=TERMS,
    prior: ExponentPrior | str | None = "auto",
    **kwargs,
) -> tuple[FitResult, pd.DataFrame]:
    """Select checkpoints with ``policy`` and fit; returns the result and the rows used (with weights)."""
    frame = prepare_train(train)
    selected = policy.select(frame)
    if selected.empty:
        raise FitInputError(f"checkpoint policy {policy.name!r} kept no rows")
    chosen = choose_form(selected, terms) if form is None else (form_named(form) if isinstance(form, str) else form)
    if isinstance(prior, str):  # "auto": borrow the exponents only where the data cannot identify them
        prior = None if exponents_identified(selected, chosen) else DEFAULT_PRIOR
    result = fit_law(
        selected["params"], selected["tokens"], selected["value"], form=chosen, epochs=selected["epochs"],
        run_tokens=selected["run_tokens"], runs=run_key(selected), weights=selected["weight"], delta=delta,
        prior=prior, **kwargs,
    )
    return result, selected


def exponents_identified(selected: pd.DataFrame, form: LawForm) -> bool:
    """Whether the data can pin the law's exponents down on their own.

    Not from fewer than three sizes (E, A and alpha from two sizes: any alpha
    fits; and one size's curve trades E against beta), nor from final losses
    of barely more runs than the law has parameters (five runs for five
    parameters interpolate exactly).
    Then the fit borrows them (:class:`fits.fitting.ExponentPrior`); otherwise
    the data decide alone. Measured (README, the science): borrowing everywhere
    gained nothing on families that identify their exponents, and cost plans on
    the synthetic families whose exponents (~2) are far from language models'.
    """
    if not form.exponent_names:
        return True
    if selected["params"].nunique() < 3:
        return False
    runs = run_key(selected).nunique()
    final_losses = len(selected) <= 1.5 * runs
    n_params = len(form.coefficient_names) + len(form.exponent_names)
    return not (final_losses and runs < n_params + MIN_SPARE_RUNS)


def target_run_tokens(target_params, target_tokens) -> np.ndarray:
    """Each target's run's final tokens, by the contract's default: the largest tokens asked for its size."""
    n = np.asarray(target_params, dtype=float)
    d = np.asarray(target_tokens, dtype=float)
    out = np.empty_like(d)
    flat_n, flat_d, flat_out = n.ravel(), d.ravel(), out.ravel()
    for size in np.unique(flat_n):
        at = flat_n == size
        flat_out[at] = flat_d[at].max()
    return flat_out.reshape(d.shape)


def cap_by_smaller_runs(frame: pd.DataFrame, target_params, target_tokens, predicted) -> np.ndarray:
    """No target is predicted worse than a smaller run that saw no more tokens actually did.

    A model at least as large, trained at least as long, in the same family,
    should not end up with a higher loss; a law that says so has been pulled
    off by a misfit (measured: it only fires on families where the fit broke
    down, e.g. a synthetic family with a phase change, where it cut a 600%
    error to 48%).
    """
    predicted = np.asarray(predicted, dtype=float).copy()
    n = np.broadcast_to(np.asarray(target_params, dtype=float), predicted.shape)
    d = np.broadcast_to(np.asarray(target_tokens, dtype=float), predicted.shape)
    p_train = frame["params"].to_numpy()
    t_train = frame["tokens"].to_numpy()
    v_train = frame["value"].to_numpy()
    for i in np.ndindex(predicted.shape):
        seen = (p_train <= n[i]) & (t_train <= d[i])
        if seen.any():
            predicted[i] = min(predicted[i], float(v_train[seen].min()))
    return predicted


def predict_loss(train: pd.DataFrame, target_params, target_tokens, target_epochs=None,
                 target_run_tokens=None) -> np.ndarray:
    """Predicted loss of the targets from one family's smaller runs (default policy and law).

    ``target_run_tokens``: final tokens of each target's run; default: the
    largest ``target_tokens`` asked for its size (see the module docstring).
    """
    return make_predictor()(train, target_params, target_tokens, target_epochs, target_run_tokens)


def predict_interval(train: pd.DataFrame, target_params, target_tokens, coverage: float = 0.8,
                     target_epochs=None, n_boot: int = 100, seed: int = 0, target_run_tokens=None):
    """(lower, upper) arrays: a ``coverage`` prediction interval for the targets' loss.

    See :mod:`fits.interval`: a run-level bootstrap of the fit plus the
    extrapolation error measured by backtests on the corpus.
    """
    from .interval import prediction_interval

    n, d = _targets(target_params, target_tokens)
    # The bootstrap works on flat target lists; answer in the targets' shape.
    epochs = None if target_epochs is None else np.broadcast_to(np.asarray(target_epochs, dtype=float), n.shape).ravel()
    run = resolve_target_run_tokens(n, d, target_run_tokens).ravel()
    out = prediction_interval(train, n.ravel(), d.ravel(), coverage=coverage, target_epochs=epochs, n_boot=n_boot,
                              seed=seed, target_run_tokens=run)
    return out.lower.reshape(n.shape), out.upper.reshape(n.shape)


def resolve_target_run_tokens(n, d, given=None) -> np.ndarray:
    """``given`` (checked: at least each target's tokens), or the contract's default (:func:`target_run_tokens`)."""
    if given is None:
        return target_run_tokens(n, d)
    run = np.broadcast_to(np.asarray(given, dtype=float), d.shape)
    if not np.all(np.isfinite(run)) or np.any(run < d * (1 - 1e-9)):
        raise FitInputError("target_run_tokens must be finite and at least each target's tokens")
    return run


def make_predictor(policy: CheckpointPolicy = DEFAULT_POLICY, **fit_kwargs):
    """The library's method as a backtest predictor: ``f(train, params, tokens, epochs) -> losses``.

    Same path as :func:`predict_loss` (policy, law choice, fit, cap), with the
    policy and fit options open for comparisons.
    """

    def predict(train, target_params, target_tokens, target_epochs=None, target_run_tokens=None):
        n, d = _targets(target_params, target_tokens)
        run = resolve_target_run_tokens(n, d, target_run_tokens)
        result, _ = fit_train(train, policy=policy, **fit_kwargs)
        return finish_prediction(result, prepare_train(train), n, d, result.predict(n, d, target_epochs, run))

    return predict


def finish_prediction(result: FitResult, frame: pd.DataFrame, n, d, predicted) -> np.ndarray:
    """The cap by smaller runs, except where the law itself says bigger or longer can be worse (overfitting)."""
    if result.form.overfit:
        return np.asarray(predicted, dtype=float)
    return cap_by_smaller_runs(frame, n, d, predicted)

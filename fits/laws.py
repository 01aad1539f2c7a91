"""Scaling-law forms, as pure vectorised functions of (N, D) and parameters.

Every law here is linear in its coefficients once its exponents are fixed:

    L = E + A * (N / N0)^-alpha + B * (Deff / D0)^-beta  [+ C_s * u(f)]  [+ C_o * r(R, N/U)]

with ``N0``, ``D0`` reference scales (the training data's geometric means, so
that A and B are of the order of the loss and the problem is well conditioned),
and ``Deff`` the effective data: plain tokens, or the data-constrained
effective tokens of Muennighoff et al. 2023 (arXiv 2305.16264) when the data
repeats. That linearity is what the fitter exploits (variable projection).

Two optional terms are extra linear columns, fixed by covariates of each row:

* ``schedule``: a checkpoint taken part-way through a run sits above the loss a
  run *ending* there would reach, because its learning rate has not decayed
  yet. The gap is taken proportional to the share of the learning rate still
  to decay, u(f) = (1 + cos(pi f)) / 2 at the fraction f = D / T of the run's
  final tokens T (a cosine schedule, the common default): 1 at the start, 0 at
  the end, so a run's last checkpoint is on the plain law. The coefficient is
  fitted per family and must be >= 0.
* ``overfit``: many epochs over little unique data end in the loss *rising*
  (the datablations curves at 44 epochs climb by ~0.6 nats), which no
  decreasing law can follow. The term (R - 1)^a ((N/U) / nu0)^b grows with
  the repetitions R and with the parameters per unique token N/U (larger models
  memorise sooner); its shape (a, b) is chosen from a small grid by the fit.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

# Muennighoff et al. (2023), fitted on their runs: the repetitions after which
# repeated data is worth 1/e of new data. Taken as a constant, not refitted:
# a family rarely has enough repeated-data variation to pin it down.
R_STAR_DATA = 15.4
# Shapes (a, b) of the overfitting term tried by the fit: a = how fast the
# excess loss grows with repetitions, b = how much faster for more parameters
# per unique token (0 = not at all).
OVERFIT_SHAPES = tuple((a, b) for a in (0.5, 1.0, 1.5, 2.0) for b in (0.0, 0.5, 1.0))


@dataclass(frozen=True)
class LawForm:
    """A law's shape: which terms it has."""

    name: str
    size_term: bool = True  # A * N^-alpha: needs >= 2 distinct sizes
    data_term: bool = True  # B * D^-beta
    data_constrained: bool = False  # use effective tokens from epochs
    description: str = ""
    schedule: bool = False  # C_s * u(D / T): checkpoints part-way through their run
    overfit: bool = False  # C_o * r(R, N/U): the loss rising under heavy repetition

    @property
    def exponent_names(self) -> tuple[str, ...]:
        return tuple(n for n, on in (("alpha", self.size_term), ("beta", self.data_term)) if on)

    @property
    def extra_names(self) -> tuple[str, ...]:
        return tuple(n for n, on in (("C_schedule", self.schedule), ("C_overfit", self.overfit)) if on)

    @property
    def coefficient_names(self) -> tuple[str, ...]:
        return ("E",) + tuple(n for n, on in (("A", self.size_term), ("B", self.data_term)) if on) + self.extra_names

    @property
    def formula(self) -> str:
        """The law as text, e.g. ``E + A/N^alpha + B/D^beta + C_schedule*u(D/T)``."""
        d = "D'" if self.data_constrained else "D"
        terms = ["E"] + [t for t, on in (("A/N^alpha", self.size_term), (f"B/{d}^beta", self.data_term)) if on]
        if self.schedule:
            terms.append("C_schedule*u(D/T)")
        if self.overfit:
            terms.append("C_overfit*(R-1)^a*(N/U)^b")
        return " + ".join(terms)

    def with_terms(self, *, schedule: bool | None = None, overfit: bool | None = None) -> "LawForm":
        """This form with the schedule and/or overfitting terms switched on or off."""
        schedule = self.schedule if schedule is None else schedule
        overfit = self.overfit if overfit is None else overfit
        if (schedule, overfit) == (self.schedule, self.overfit):
            return self
        base = self.name.split("+")[0]
        name = base + ("+schedule" if schedule else "") + ("+overfit" if overfit else "")
        return replace(self, name=name, schedule=schedule, overfit=overfit)


CHINCHILLA = LawForm("chinchilla", description="E + A/N^alpha + B/D^beta (Hoffmann et al. 2022)")
TOKENS_ONLY = LawForm(
    "tokens", size_term=False, description="E + B/D^beta: one size, extrapolating a partly trained run"
)
DATA_CONSTRAINED = LawForm(
    "data-constrained",
    data_constrained=True,
    description="E + A/N^alpha + B/D'^beta with D' the effective data of repeated tokens (Muennighoff et al. 2023)",
)
SIZE_ONLY = LawForm(
    "sizes", data_term=False,
    description="E + A/N^alpha: every run stopped at the same tokens, so nothing says how loss moves with D",
)
CONSTANT = LawForm(
    "constant", size_term=False, data_term=False,
    description="E: one size at one token count - no law, only the loss it reached",
)
FORMS = {f.name: f for f in (CHINCHILLA, TOKENS_ONLY, DATA_CONSTRAINED, SIZE_ONLY, CONSTANT)}


def form_named(name: str) -> LawForm:
    """The form called ``name``: a base form, optionally with ``+schedule`` and/or ``+overfit``."""
    base, *terms = name.split("+")
    if base not in FORMS or not set(terms) <= {"schedule", "overfit"}:
        raise KeyError(f"unknown law {name!r}; expected one of {', '.join(FORMS)}, optionally +schedule, +overfit")
    return FORMS[base].with_terms(schedule="schedule" in terms, overfit="overfit" in terms)


def effective_tokens(tokens, epochs, r_star: float = R_STAR_DATA):
    """Muennighoff et al.'s D' = U + U R* (1 - exp(-R / R*)), R = epochs - 1 repetitions.

    Where ``epochs`` is missing or <= 1 the data did not repeat and D' = D.
    """
    tokens = np.asarray(tokens, dtype=float)
    epochs = np.asarray(epochs, dtype=float) if epochs is not None else np.full_like(tokens, np.nan)
    repeated = np.isfinite(epochs) & (epochs > 1.0)
    out = tokens.copy()
    if repeated.any():
        unique = tokens[repeated] / epochs[repeated]
        reps = epochs[repeated] - 1.0
        out[repeated] = unique + unique * r_star * (1.0 - np.exp(-reps / r_star))
    return out


def schedule_remaining(tokens, run_tokens) -> np.ndarray:
    """u(f) = (1 + cos(pi f)) / 2 at f = tokens / run_tokens: the share of a cosine decay still ahead.

    ``run_tokens`` missing (NaN) means the checkpoint ends its run: u = 0.
    """
    tokens = np.asarray(tokens, dtype=float)
    run_tokens = np.broadcast_to(np.asarray(run_tokens, dtype=float), tokens.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(np.isfinite(run_tokens) & (run_tokens > 0), tokens / run_tokens, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * np.clip(f, 0.0, 1.0)))


def repetitions(tokens, epochs) -> tuple[np.ndarray, np.ndarray]:
    """(R, U): passes over the data (>= 1) and unique tokens, from tokens and epochs (missing = 1 pass)."""
    tokens = np.asarray(tokens, dtype=float)
    epochs = np.broadcast_to(np.asarray(epochs, dtype=float), tokens.shape) if epochs is not None else None
    reps = np.ones_like(tokens) if epochs is None else np.where(np.isfinite(epochs), np.maximum(epochs, 1.0), 1.0)
    return reps, tokens / reps


def overfit_feature(params, tokens, epochs, shape: tuple[float, float], nu0: float) -> np.ndarray:
    """r = (R - 1)^a ((N / U) / nu0)^b: excess loss from repeating U unique tokens R times with N parameters."""
    a, b = shape
    reps, unique = repetitions(tokens, epochs)
    return (reps - 1.0) ** a * ((np.asarray(params, dtype=float) / unique) / nu0) ** b


def extra_columns(form: LawForm, params, tokens, epochs, run_tokens, overfit_shape, overfit_nu0) -> np.ndarray | None:
    """The optional terms' columns (schedule, overfitting) for raw params/tokens, or None if the form has none."""
    cols = []
    if form.schedule:
        run = np.full(np.size(tokens), np.nan) if run_tokens is None else run_tokens
        cols.append(schedule_remaining(tokens, np.broadcast_to(np.asarray(run, dtype=float), np.shape(tokens))))
    if form.overfit:
        if overfit_shape is None:
            raise ValueError("an overfitting law needs its shape (a, b)")
        cols.append(overfit_feature(params, tokens, epochs, overfit_shape, overfit_nu0))
    return np.column_stack(cols) if cols else None


def law_columns(form: LawForm, ln, ld, alpha, beta, extra=None) -> np.ndarray:
    """The law's design matrix: columns [1, exp(-alpha ln), exp(-beta ld), extra...] present in ``form``.

    ``ln = log(N / N0)`` and ``ld = log(D' / D0)`` (normalised logs, 1-d, one entry per row). ``alpha`` and
    ``beta`` are scalars - the matrix is (rows, k) - or arrays of K exponent pairs - it is (K, rows, k).
    This is the one place the law is evaluated: fitting, prediction and the Jacobian all use it.
    """
    ln = np.asarray(ln, dtype=float)
    ld = np.asarray(ld, dtype=float)
    alpha = np.asarray(alpha, dtype=float)
    beta = np.asarray(beta, dtype=float)
    batch = np.broadcast_shapes(alpha.shape, beta.shape)
    shape = batch + ln.shape
    cols = [np.ones(shape)]
    if form.size_term:
        cols.append(np.exp(-alpha[..., None] * ln))
    if form.data_term:
        cols.append(np.exp(-beta[..., None] * ld))
    if extra is not None and np.size(extra):
        extra = np.asarray(extra, dtype=float).reshape(ln.size, -1)
        cols.extend(np.broadcast_to(col, shape) for col in extra.T)
    return np.stack([np.broadcast_to(c, shape) for c in cols], axis=-1)


def evaluate(form: LawForm, coef, ln, ld, alpha, beta, extra=None) -> np.ndarray:
    """Predicted loss: ``law_columns(...) @ coef`` (K exponent pairs with (K, k) coefficients give (K, rows))."""
    cols = law_columns(form, ln, ld, alpha, beta, extra)
    return np.einsum("...nk,...k->...n", cols, np.asarray(coef, dtype=float))

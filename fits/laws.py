"""Scaling-law forms, as pure vectorised functions of (N, D) and parameters.

Every law here is linear in its coefficients once its exponents are fixed:

    L = E + A * (N / N0)^-alpha + B * (Deff / D0)^-beta

with ``N0``, ``D0`` reference scales (the training data's geometric means, so
that A and B are of the order of the loss and the problem is well conditioned),
and ``Deff`` the effective data: plain tokens, or the data-constrained
effective tokens of Muennighoff et al. 2023 (arXiv 2305.16264) when the data
repeats. That linearity is what the fitter exploits (variable projection).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Muennighoff et al. (2023), fitted on their runs: the repetitions after which
# repeated data is worth 1/e of new data. Taken as a constant, not refitted:
# a family rarely has enough repeated-data variation to pin it down.
R_STAR_DATA = 15.4


@dataclass(frozen=True)
class LawForm:
    """A law's shape: which terms it has."""

    name: str
    size_term: bool = True  # A * N^-alpha: needs >= 2 distinct sizes
    data_term: bool = True  # B * D^-beta
    data_constrained: bool = False  # use effective tokens from epochs
    description: str = ""

    @property
    def exponent_names(self) -> tuple[str, ...]:
        return tuple(n for n, on in (("alpha", self.size_term), ("beta", self.data_term)) if on)

    @property
    def coefficient_names(self) -> tuple[str, ...]:
        return ("E",) + tuple(n for n, on in (("A", self.size_term), ("B", self.data_term)) if on)


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


def features(form: LawForm, n, d, alpha: float, beta: float, n0: float, d0: float) -> np.ndarray:
    """The design matrix [1, (N/N0)^-alpha, (D/D0)^-beta] (columns present in ``form``)."""
    n = np.asarray(n, dtype=float)
    d = np.asarray(d, dtype=float)
    cols = [np.ones_like(d)]
    if form.size_term:
        cols.append(np.exp(-alpha * np.log(n / n0)))
    if form.data_term:
        cols.append(np.exp(-beta * np.log(d / d0)))
    return np.column_stack(cols)


def evaluate(form: LawForm, coef, n, d, alpha: float, beta: float, n0: float, d0: float) -> np.ndarray:
    """Predicted loss for arrays N, D (D already effective where the form asks for it)."""
    return features(form, n, d, alpha, beta, n0, d0) @ np.asarray(coef, dtype=float)

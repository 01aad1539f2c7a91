"""The compute-optimal split of a compute budget C = 6 N D, with its range from the law's uncertainty.

Under ``L(N, D) = E + A/N^alpha + B/D^beta`` the loss at fixed compute is
lowest at ``N* = G (C/6)^(beta/(alpha+beta))``, ``D* = C / (6 N*)`` with
``G = (alpha A / (beta B))^(1/(alpha+beta))`` (Hoffmann et al. 2022, eq. 4).

The default law is Besiroglu et al.'s 2024 refit of Hoffmann et al.'s
Approach 3 (:data:`REFERENCE_LAW`): the published Hoffmann fit stopped its
optimiser early and rounded its exponents, and put the optimum near 74 tokens
per parameter where its own Approaches 1 and 2 (and the refit) find about 20.

The range: exponents drawn from their standard errors, each size and data term
pivoting about the centre of the data the law was fitted on (its value there is
what the fit pins; extrapolating away from it, the exponent's uncertainty
grows). With the reference law's errors the pivot gives A and B a spread of the
size the paper reports for them (tests/fits/test_compute_optimal.py): a fair
stand-in for the paper's bootstrap, whose draws are not published.
"""
from __future__ import annotations

import math

import numpy as np

# Besiroglu, Erdil, Barnett, You (2024), "Chinchilla Scaling: A replication attempt", arXiv:2404.10102,
# their estimates of Hoffmann et al.'s parametric law (standard errors in brackets there): E 1.8172 (0.03),
# A 482.01 (124.58), B 2085.43 (1293.23), alpha 0.3478 (0.02), beta 0.3658 (0.02).
REFERENCE_LAW = {"E": 1.8172, "A": 482.01, "alpha": 0.3478, "B": 2085.43, "beta": 0.3658}
REFERENCE_STDERR = {"E": 0.03, "A": 124.58, "alpha": 0.02, "B": 1293.23, "beta": 0.02}
REFERENCE_SOURCE = "Chinchilla replication (Besiroglu et al. 2024, arXiv:2404.10102)"
# Hoffmann et al.'s runs, which the refit used: 70M to 16B parameters on 5B to 500B tokens. Geometric centres.
REFERENCE_PIVOT = {"params": math.sqrt(7e7 * 1.6e10), "tokens": math.sqrt(5e9 * 5e11)}
INTERVAL = (0.1, 0.9)
SAMPLES = 4000
MIN_EXPONENT = 0.05  # a drawn exponent below this is no power law: clipped


def optimal_split(compute, law: dict):
    """(N*, D*) minimising the law's loss at ``compute`` FLOPs (arrays broadcast: several laws or budgets)."""
    a, b = np.asarray(law["alpha"], dtype=float), np.asarray(law["beta"], dtype=float)
    g = (a * np.asarray(law["A"], dtype=float) / (b * np.asarray(law["B"], dtype=float))) ** (1.0 / (a + b))
    n = g * (np.asarray(compute, dtype=float) / 6.0) ** (b / (a + b))
    return n, np.asarray(compute, dtype=float) / (6.0 * n)


def law_loss(law: dict, params, tokens):
    """The law's loss at (N, D)."""
    params, tokens = np.asarray(params, dtype=float), np.asarray(tokens, dtype=float)
    return law["E"] + law["A"] / params ** law["alpha"] + law["B"] / tokens ** law["beta"]


def law_samples(law: dict, stderr: dict, pivot: dict, *, samples: int = SAMPLES, seed: int = 0) -> dict:
    """Laws drawn around ``law``: exponents from their standard errors, A and B pivoting about ``pivot``.

    Each draw keeps ``A / N_c^alpha`` and ``B / D_c^beta`` at the pivot (the data's centre) as fitted,
    so the draws agree where the data were and fan out away from them. E is drawn from its own error.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for exp, coef, centre in (("alpha", "A", pivot["params"]), ("beta", "B", pivot["tokens"])):
        drawn = np.maximum(rng.normal(law[exp], stderr.get(exp, 0.0), samples), MIN_EXPONENT)
        out[exp] = drawn
        out[coef] = law[coef] * centre ** (drawn - law[exp])
    out["E"] = rng.normal(law["E"], stderr.get("E", 0.0), samples)
    return out


def compute_optimal(compute: float, law: dict | None = None, *, samples: int = SAMPLES, seed: int = 0) -> dict:
    """The compute-optimal (N, D) for ``compute`` FLOPs, and its 10-90% range from the law's uncertainty.

    ``law``: a reference family's fitted law (``E, A, alpha, B, beta``; optional ``stderr`` with the
    exponents' standard errors and ``pivot`` ``{"params", "tokens"}``, the centre of its data); default:
    :data:`REFERENCE_LAW`. A family law without standard errors borrows the reference's (+-0.02 on each
    exponent), and one without a pivot pivots about its own optimum at ``compute``, which widens nothing
    there but the exponent's effect on the split.
    """
    given = law is not None
    base = {k: float(law[k]) for k in ("E", "A", "alpha", "B", "beta")} if given else dict(REFERENCE_LAW)
    stderr = dict((law or {}).get("stderr") or {}) if given else dict(REFERENCE_STDERR)
    borrowed = not {"alpha", "beta"} <= set(stderr)
    if borrowed:
        stderr = {"alpha": REFERENCE_STDERR["alpha"], "beta": REFERENCE_STDERR["beta"], **stderr}
    n, d = (float(v) for v in optimal_split(compute, base))
    own_pivot = given and bool(law.get("pivot"))
    if given:
        pivot = dict(law["pivot"]) if own_pivot else {"params": n, "tokens": d}
    else:
        pivot = dict(REFERENCE_PIVOT)
    drawn = law_samples(base, stderr, pivot, samples=samples, seed=seed)
    ns, ds = optimal_split(compute, drawn)
    q = list(INTERVAL)
    if given:
        how = ("the family law's exponents drawn from "
               + ("the reference fit's standard errors (+-0.02; the law gave none)" if borrowed else "their standard errors")
               + (", each term pivoting about the centre of the family's data" if own_pivot else
                  ", each term pivoting about this split (the law gave no centre of its data)"))
    else:
        how = ("exponents drawn from the replication's standard errors (+-0.02), A and B pivoting about the centre "
               "of Hoffmann et al.'s runs (70M-16B parameters, 5B-500B tokens)")
    return {
        "params": n,
        "tokens": d,
        "tokens_per_param": d / n,
        "params_interval": [float(v) for v in np.quantile(ns, q)],
        "tokens_interval": [float(v) for v in np.quantile(ds, q)],
        "tokens_per_param_interval": [float(v) for v in np.quantile(ds / ns, q)],
        "interval": q,
        "law": base,
        "stderr": {k: float(v) for k, v in stderr.items()},
        "pivot": pivot,
        "source": "reference family" if given else REFERENCE_SOURCE,
        "uncertainty": f"{q[0]:.0%}-{q[1]:.0%} of {samples} laws drawn around the fit: {how}",
    }


__all__ = ["REFERENCE_LAW", "REFERENCE_STDERR", "REFERENCE_SOURCE", "compute_optimal", "law_loss", "law_samples",
           "optimal_split"]

"""Fitting a scaling law: variable projection over the exponents, a robust refinement, and a posterior.

Why this design (measured by ``bench/fit_speed.py`` and the backtests):

* For fixed exponents the law is linear in its coefficients (E, A, B and the
  optional schedule/overfitting terms, all >= 0), so the best coefficients are
  a small non-negative least-squares problem whose Gram matrix costs one pass
  over the data. Scanning a whole grid of (alpha, beta) is then a handful of
  vectorised matrix products - a global search that needs no starting
  guesses, unlike a 27-start curve_fit.
* The grid minimiser is refined by iteratively reweighted projection on
  shrinking local exponent grids: each step reweights points by their Huber
  weight min(1, delta / |r|) on log residuals, so the fixed point is the Huber
  fit and a few spiky checkpoints do not pull it. Measured against L-BFGS-B
  with analytic gradients over all parameters (kept as ``refine="lbfgs"``):
  faster and lower ARE on the corpus backtest.
* With a ``prior`` (what :func:`fits.api.fit_train` passes where the data
  cannot identify the exponents: two sizes, or final losses of barely more runs
  than the law has parameters), the exponents are not a single point: the
  fit's profile likelihood over an exponent grid is combined with a broad
  prior centred on Hoffmann et al.'s exponents, and predictions average the
  laws of the grid by their posterior weight (Bayesian model averaging). So
  the exponents are in effect borrowed, instead of being whatever the flat
  valley of the fit happens to end at. How much the data say is counted
  honestly: checkpoints of one run are not independent, so a run's curve
  counts as at most ``points_per_run`` observations, runs count by their
  effective number (Kish) under the policy's weights, and the linear
  coefficients' degrees of freedom are taken off (as in REML).

Residuals are relative (log-space), so a family's loss level does not change
how hard a point pulls. Non-convergence is a result, never an exception; bad
input raises :class:`FitInputError` naming the problem.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import optimize

from .laws import (
    CHINCHILLA, OVERFIT_SHAPES, LawForm, effective_tokens, evaluate, features, form_named, overfit_feature,
    repetitions, schedule_remaining,
)

RESULT_VERSION = 2
EXPONENT_BOUNDS = (0.0, 3.0)
_GRID = np.concatenate([np.linspace(0.0, 0.1, 6)[1:], np.geomspace(0.12, 2.5, 28)])
# The posterior is evaluated on a log-uniform grid: the prior is Gaussian in log-exponent.
POSTERIOR_GRID = np.geomspace(0.02, 2.5, 32)
# Grid points whose posterior weight is below this share of the best one are dropped from the average.
POSTERIOR_CUTOFF = 1e-4


class FitInputError(ValueError):
    """The data cannot be fitted with the requested law; the message says why."""


@dataclass(frozen=True)
class ExponentPrior:
    """What exponents a new family has before its data say otherwise.

    Gaussian in log(exponent), centred on the Chinchilla fit (Hoffmann et al.
    2022, approach 3: alpha 0.34, beta 0.28) - published values, not tuned to
    this corpus - and broad: ``sd_log`` = 1 puts a factor e either way within
    one sd. A ``flat_share`` of the prior mass is spread evenly over the grid,
    so a family whose data clearly ask for exponents far from the centre (the
    synthetic PCFG families ask for ~2) keeps them. ``points_per_run`` caps
    what one run's curve counts for (see the module docstring).
    Measured on the corpus backtest (README, "what each choice bought"): the
    figures move little for centres 0.25-0.5, sd 0.7-1.0, flat share 0.05-0.2.
    """

    alpha: float = 0.34
    beta: float = 0.28
    sd_log: float = 1.0
    flat_share: float = 0.1
    points_per_run: float = 10.0

    def log_density(self, alphas: np.ndarray | None, betas: np.ndarray | None) -> np.ndarray:
        """log prior mass of each grid cell (ka, kb); None = that exponent is not free (one cell)."""
        la = np.zeros(1) if alphas is None else -0.5 * ((np.log(alphas) - np.log(self.alpha)) / self.sd_log) ** 2
        lb = np.zeros(1) if betas is None else -0.5 * ((np.log(betas) - np.log(self.beta)) / self.sd_log) ** 2
        g = np.exp(la[:, None] + lb[None, :])
        g = g / g.sum()
        return np.log((1.0 - self.flat_share) * g + self.flat_share / g.size)

    def to_dict(self) -> dict:
        return {k: float(v) for k, v in asdict(self).items()}


DEFAULT_PRIOR = ExponentPrior()


@dataclass
class FitResult:
    """What a fit found. ``success`` is False (with a ``message``) when it did not converge.

    ``coef``/``alpha``/``beta`` are the reported law (the posterior's mode when
    a prior was used, else the robust fit). ``mixture`` (when a prior was used)
    holds the laws of the exponent grid and their posterior weights;
    :meth:`predict` averages them in log space.
    """

    form: LawForm
    success: bool
    message: str
    coef: np.ndarray  # E, A, B, extra terms, in normalised units (see laws.py)
    alpha: float
    beta: float
    n0: float
    d0: float
    stderr: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    seconds: float = 0.0
    nfev: int = 0
    overfit_shape: tuple[float, float] | None = None
    overfit_nu0: float = 1.0
    mixture: dict | None = None  # {"weight": (K,), "alpha": (K,), "beta": (K,), "coef": (K, k)}
    prior: ExponentPrior | None = None

    # -- predictions ---------------------------------------------------------
    def _inputs(self, params, tokens, epochs, run_tokens):
        params, tokens = np.broadcast_arrays(np.asarray(params, dtype=float), np.asarray(tokens, dtype=float))
        shape = params.shape  # the design matrix is 2-d: evaluate flat, return the targets' shape
        params, tokens = params.ravel(), tokens.ravel()
        if epochs is not None:
            epochs = np.broadcast_to(np.asarray(epochs, dtype=float), shape).ravel()
        if run_tokens is not None:
            run_tokens = np.broadcast_to(np.asarray(run_tokens, dtype=float), shape).ravel()
        d = effective_tokens(tokens, epochs) if self.form.data_constrained else tokens
        extra = extra_columns(self.form, params, tokens, epochs, run_tokens, self.overfit_shape, self.overfit_nu0)
        return shape, params, d, extra

    def predict(self, params, tokens, epochs=None, run_tokens=None) -> np.ndarray:
        """Predicted loss. ``run_tokens``: final tokens of each target's run (missing = the target ends its run)."""
        shape, n, d, extra = self._inputs(params, tokens, epochs, run_tokens)
        if not self.mixture:
            return evaluate(self.form, self.coef, n, d, self.alpha, self.beta, self.n0, self.d0, extra).reshape(shape)
        # Every component at once: (K, rows) predictions, averaged in log space by posterior weight.
        coef = np.asarray(self.mixture["coef"], dtype=float)
        pred = np.broadcast_to(coef[:, :1], (coef.shape[0], n.size)).copy()
        i = 1
        if self.form.size_term:
            pred += coef[:, i:i + 1] * np.exp(-np.outer(self.mixture["alpha"], np.log(n / self.n0)))
            i += 1
        if self.form.data_term:
            pred += coef[:, i:i + 1] * np.exp(-np.outer(self.mixture["beta"], np.log(d / self.d0)))
            i += 1
        if extra is not None:
            pred += coef[:, i:] @ extra.T
        log_mean = np.asarray(self.mixture["weight"], dtype=float) @ np.log(np.maximum(pred, 1e-300))
        return np.exp(log_mean).reshape(shape)

    # -- reporting ------------------------------------------------------------
    @property
    def params(self) -> dict:
        """Parameters in the usual un-normalised form L = E + A/N^alpha + B/D^beta (+ extra terms)."""
        out = {"E": float(self.coef[0])}
        i = 1
        if self.form.size_term:
            out["A"] = float(self.coef[i] * self.n0**self.alpha)
            out["alpha"] = float(self.alpha)
            i += 1
        if self.form.data_term:
            out["B"] = float(self.coef[i] * self.d0**self.beta)
            out["beta"] = float(self.beta)
            i += 1
        for name in self.form.extra_names:
            out[name] = float(self.coef[i])
            i += 1
        return out

    def to_dict(self) -> dict:
        return {
            "version": RESULT_VERSION,
            "law": self.form.name,
            "formula": self.form.formula,
            "success": bool(self.success),
            "message": self.message,
            "params": self.params,
            "normalised": {
                "coef": [float(c) for c in self.coef],
                "alpha": float(self.alpha),
                "beta": float(self.beta),
                "n0": float(self.n0),
                "d0": float(self.d0),
                "overfit_shape": None if self.overfit_shape is None else [float(v) for v in self.overfit_shape],
                "overfit_nu0": float(self.overfit_nu0),
            },
            "mixture": None if not self.mixture else {
                "weight": [float(v) for v in self.mixture["weight"]],
                "alpha": [float(v) for v in self.mixture["alpha"]],
                "beta": [float(v) for v in self.mixture["beta"]],
                "coef": [[float(v) for v in row] for row in self.mixture["coef"]],
            },
            "prior": None if self.prior is None else self.prior.to_dict(),
            "stderr": {k: float(v) for k, v in self.stderr.items()},
            "stats": _json_stats(self.stats),
            "seconds": float(self.seconds),
            "nfev": int(self.nfev),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "FitResult":
        """Rebuild a result saved by :meth:`to_dict` (versions 1 and 2), to evaluate it again."""
        if data.get("version") not in (1, RESULT_VERSION):
            raise ValueError(f"fit result version {data.get('version')!r} is not one this library reads")
        norm = data["normalised"]
        shape = norm.get("overfit_shape")
        mix = data.get("mixture")
        return cls(
            form=form_named(data["law"]), success=bool(data["success"]), message=data["message"],
            coef=np.asarray(norm["coef"], dtype=float), alpha=float(norm["alpha"]), beta=float(norm["beta"]),
            n0=float(norm["n0"]), d0=float(norm["d0"]), stderr=dict(data.get("stderr", {})),
            stats=dict(data.get("stats", {})), seconds=float(data.get("seconds", 0.0)), nfev=int(data.get("nfev", 0)),
            overfit_shape=None if shape is None else (float(shape[0]), float(shape[1])),
            overfit_nu0=float(norm.get("overfit_nu0", 1.0)),
            mixture=None if not mix else {k: np.asarray(v, dtype=float) for k, v in mix.items()},
            prior=None if data.get("prior") is None else ExponentPrior(**data["prior"]),
        )


def _json_stats(stats: dict) -> dict:
    out = {}
    for key, value in stats.items():
        if isinstance(value, dict):
            out[key] = _json_stats(value)
        elif isinstance(value, (float, np.floating)):
            out[key] = float(value)
        elif isinstance(value, (np.integer,)):
            out[key] = int(value)
        else:
            out[key] = value
    return out


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


# ---------------------------------------------------------------------------
# input checks


def _check_inputs(form: LawForm, n, d, y, w):
    for name, arr in (("params", n), ("tokens", d), ("value", y), ("weights", w)):
        if arr.ndim != 1 or arr.size != y.size:
            raise FitInputError(f"{name} must be a 1-d array as long as the values ({y.size})")
        if not np.all(np.isfinite(arr)):
            bad = int(np.flatnonzero(~np.isfinite(arr))[0])
            raise FitInputError(f"{name} has a NaN or infinite entry (row {bad})")
    if y.size == 0:
        raise FitInputError("no observations to fit")
    for name, arr in (("params", n), ("tokens", d), ("value", y)):
        if np.any(arr <= 0):
            bad = int(np.flatnonzero(arr <= 0)[0])
            raise FitInputError(f"{name} must be positive; row {bad} has {float(arr[bad])!r}")
    if np.any(w < 0) or not np.any(w > 0):
        raise FitInputError("weights must be non-negative and not all zero")
    if form.size_term and np.unique(n[w > 0]).size < 2:
        raise FitInputError(
            f"the {form.name!r} law has a size term and needs at least 2 distinct model sizes; "
            f"got {np.unique(n[w > 0]).size}"
        )
    if form.data_term and np.unique(d[w > 0]).size < 2:
        raise FitInputError(f"the {form.name!r} law needs at least 2 distinct token counts")


def _optional_array(value, size: int, name: str):
    if value is None:
        return None
    arr = np.asarray(value, dtype=float).ravel()
    if arr.size != size:
        raise FitInputError(f"{name} must be a 1-d array as long as the values ({size})")
    return arr


# ---------------------------------------------------------------------------
# variable projection: exact non-negative coefficients for given exponents


class _Projector:
    """Solves min_c sum w ((X c - y) / y)^2, c >= 0, for many exponent pairs at once.

    X = [1, (N/N0)^-alpha, (D/D0)^-beta, extra columns]. ``weights`` can change
    between calls (the robust stage reweights points).
    """

    def __init__(self, form: LawForm, n, d, y, w, n0, d0, extra=None):
        self.form = form
        self.ln = np.log(n / n0)
        self.ld = np.log(d / d0)
        self.y = y
        self.ly = np.log(y)
        self.w = w
        self.extra = np.zeros((y.size, 0)) if extra is None else np.asarray(extra, dtype=float).reshape(y.size, -1)
        self.k = len(form.coefficient_names)
        # Largest active set first: where its solution is feasible it is the
        # optimum (a convex problem), and the smaller sets need not be tried.
        self.subsets = [s for r in range(self.k, 0, -1) for s in itertools.combinations(range(self.k), r)]

    def columns(self, alpha, beta):
        return features(self.form, np.exp(self.ln), np.exp(self.ld), alpha, beta, 1.0, 1.0, self.extra)

    def solve(self, alpha: float, beta: float, w=None):
        """Best non-negative coefficients and the weighted relative SSE at one exponent pair."""
        c, sse = self.grid_scan(np.array([alpha]), np.array([beta]), w, with_coef=True)
        return c[0, 0], float(sse[0, 0])

    def _grid_columns(self, alphas, betas):
        """Each column as an array broadcastable to (ka, kb, n)."""
        n = self.y.size
        cols = [np.ones((1, 1, n))]
        if self.form.size_term:
            cols.append(np.exp(-np.outer(alphas, self.ln))[:, None, :])
        if self.form.data_term:
            cols.append(np.exp(-np.outer(betas, self.ld))[None, :, :])
        cols.extend(col[None, None, :] for col in self.extra.T)
        return cols

    @staticmethod
    def _dot(a, b, sw, ka, kb):
        """sum_n sw a b for columns a, b of shape (1|ka, 1|kb, n), as a (ka, kb) array."""
        if a.shape[0] > 1 and b.shape[1] > 1 and a.shape[1] == 1 and b.shape[0] == 1:
            return (a[:, 0, :] * sw) @ b[0].T
        if b.shape[0] > 1 and a.shape[1] > 1 and b.shape[1] == 1 and a.shape[0] == 1:
            return (b[:, 0, :] * sw) @ a[0].T
        return np.broadcast_to(np.sum(a * b * sw, axis=-1), (ka, kb))

    def grid_scan(self, alphas, betas, w=None, with_coef=False):
        """Weighted relative SSE (and optionally coefficients) at every grid pair, vectorised.

        Active sets are enumerated: with <= 5 coefficients that is <= 31 tiny
        batched solves per pair, exact and cheaper than an iterative NNLS.
        """
        w = self.w if w is None else w
        sw = w / self.y**2  # relative residuals: rows divided by y
        y = self.y
        ka = alphas.size if self.form.size_term else 1
        kb = betas.size if self.form.data_term else 1
        cols = self._grid_columns(alphas, betas)
        k = self.k
        g = np.empty((ka, kb, k, k))
        b = np.empty((ka, kb, k))
        for i in range(k):
            b[..., i] = self._dot(cols[i], y[None, None, :], sw, ka, kb)
            for j in range(i, k):
                g[..., i, j] = g[..., j, i] = self._dot(cols[i], cols[j], sw, ka, kb)
        yy = float(np.sum(sw * y**2))
        best = np.full((ka, kb), np.inf)
        coef = np.zeros((ka, kb, k))
        for s in self.subsets:
            idx = list(s)
            gs = g[..., idx, :][..., :, idx]
            bs = b[..., idx]
            with np.errstate(all="ignore"):
                det_ok = np.abs(np.linalg.det(gs)) > 1e-300
                gs_safe = np.where(det_ok[..., None, None], gs, np.eye(len(idx)))
                c = np.linalg.solve(gs_safe, bs[..., None])[..., 0]
                sse = yy - 2 * np.einsum("...i,...i", c, bs) + np.einsum("...i,...ij,...j", c, gs, c)
            ok = det_ok & np.all(c >= 0, axis=-1) & np.all(np.isfinite(c), axis=-1) & np.isfinite(sse)
            better = ok & (sse < best)
            best = np.where(better, sse, best)
            if with_coef and better.any():
                full = np.zeros((ka, kb, k))
                full[..., idx] = c
                coef = np.where(better[..., None], full, coef)
            if len(idx) == k and ok.all():
                break
        if with_coef:
            # Degenerate data (no feasible set): fall back to a constant at the weighted mean.
            none = ~np.isfinite(best)
            if none.any():
                coef[none] = 0.0
                coef[none, 0] = np.exp(np.average(self.ly, weights=w))
                best[none] = float(np.sum(sw * (coef[none][0, 0] - y) ** 2))
            return coef, np.maximum(best, 0.0)
        return best


# ---------------------------------------------------------------------------
# the robust (Huber on log residuals) objective with analytic gradients


def _huber(r, delta):
    a = np.abs(r)
    quad = a <= delta
    loss = np.where(quad, 0.5 * r**2, delta * (a - 0.5 * delta))
    dloss = np.where(quad, r, delta * np.sign(r))
    return loss, dloss


def _robust_objective(theta, form, ln, ld, extra, ly, w, delta):
    """theta = log-coefficients then exponents. Returns (loss, gradient)."""
    k = len(form.coefficient_names)
    c = np.exp(theta[:k])
    expo = theta[k:]
    terms = [np.full_like(ld, c[0])]
    i, e = 1, 0
    grads_exp = []
    if form.size_term:
        t = c[i] * np.exp(-expo[e] * ln)
        terms.append(t)
        grads_exp.append(-ln * t)
        i += 1
        e += 1
    if form.data_term:
        t = c[i] * np.exp(-expo[e] * ld)
        terms.append(t)
        grads_exp.append(-ld * t)
        i += 1
    for col in extra.T:
        terms.append(c[i] * col)
        i += 1
    pred = np.sum(terms, axis=0)
    r = np.log(pred) - ly
    loss, dl = _huber(r, delta)
    g_pred = w * dl / pred
    grad = np.concatenate([[np.sum(g_pred * t) for t in terms], [np.sum(g_pred * ge) for ge in grads_exp]])
    return float(np.sum(w * loss)), grad


# ---------------------------------------------------------------------------


def fit_law(
    params,
    tokens,
    values,
    *,
    form: LawForm | str = CHINCHILLA,
    epochs=None,
    run_tokens=None,
    runs=None,
    weights=None,
    loss: str = "huber",
    delta: float = 1e-3,
    refine: str = "irls",
    fixed_exponents: tuple[float | None, float | None] | None = None,
    max_iter: int = 40,
    prior: ExponentPrior | None = None,
    overfit_shape: tuple[float, float] | None = None,
) -> FitResult:
    """Fit ``form`` to observations (arrays of equal length).

    ``loss``: ``"huber"`` (on log residuals, threshold ``delta``, summed) or
    ``"ls"`` (weighted relative least squares).
    ``refine`` (Huber only): ``"irls"`` - iteratively reweighted variable
    projection with a shrinking local grid over the exponents (the default) -
    or ``"lbfgs"`` - L-BFGS-B with analytic gradients over all parameters.
    ``fixed_exponents``: (alpha, beta), either may be None = fitted; e.g. an
    exponent borrowed from other families' fits.
    ``run_tokens``: each row's run's final tokens (the schedule term's T).
    ``runs``: a run label per row, so the posterior counts runs, not checkpoints.
    ``prior``: an :class:`ExponentPrior` turns on the posterior over exponents
    (see the module docstring); None = the single robust fit.
    ``overfit_shape``: the overfitting term's (a, b); None = chosen from
    :data:`fits.laws.OVERFIT_SHAPES` by the fit.
    """
    started = time.perf_counter()
    form = form_named(form) if isinstance(form, str) else form
    n = np.asarray(params, dtype=float).ravel()
    d_raw = np.asarray(tokens, dtype=float).ravel()
    y = np.asarray(values, dtype=float).ravel()
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float).ravel()
    _check_inputs(form, n, d_raw, y, w)
    if loss not in ("huber", "ls"):
        raise FitInputError(f"loss must be 'huber' or 'ls', not {loss!r}")
    if refine not in ("irls", "lbfgs"):
        raise FitInputError(f"refine must be 'irls' or 'lbfgs', not {refine!r}")
    epochs = _optional_array(epochs, y.size, "epochs")
    run_tokens = _optional_array(run_tokens, y.size, "run_tokens")
    runs = None if runs is None else np.asarray(runs).ravel()
    if runs is not None and runs.size != y.size:
        raise FitInputError(f"runs must be a 1-d array as long as the values ({y.size})")
    d = effective_tokens(d_raw, epochs) if form.data_constrained else d_raw
    keep = w > 0
    n, d_raw, d, y, w = n[keep], d_raw[keep], d[keep], y[keep], w[keep]
    epochs = None if epochs is None else epochs[keep]
    run_tokens = None if run_tokens is None else run_tokens[keep]
    runs = None if runs is None else runs[keep]
    w = w / w.sum() * np.count_nonzero(w)  # mean weight 1: delta keeps its meaning

    n0 = float(np.exp(np.mean(np.log(n))))
    d0 = float(np.exp(np.mean(np.log(d))))
    nu0 = 1.0
    if form.overfit:
        _, unique = repetitions(d_raw, epochs)
        nu0 = float(np.exp(np.mean(np.log(n / unique))))
    nfev = 0
    shape = overfit_shape
    if form.overfit and shape is None:
        # The overfitting term's shape: the one whose law fits best on the global exponent grid
        # (least squares, as the exponents' starting point is chosen) - one grid scan per shape.
        scores = []
        for candidate in OVERFIT_SHAPES:
            extra = extra_columns(form, n, d_raw, epochs, run_tokens, candidate, nu0)
            sse = _Projector(form, n, d, y, w, n0, d0, extra).grid_scan(_GRID, _GRID)
            nfev += sse.size
            scores.append(float(sse.min()))
        shape = OVERFIT_SHAPES[int(np.argmin(scores))]
    proj = _Projector(form, n, d, y, w, n0, d0, extra_columns(form, n, d_raw, epochs, run_tokens, shape, nu0))
    best = _robust_fit(proj, form, w, loss, delta, refine, fixed_exponents, max_iter)
    nfev += best["nfev"]
    coef, alpha, beta = best["coef"], best["alpha"], best["beta"]
    success, message = best["success"], best["message"]

    mixture, posterior = None, {}
    if prior is not None and form.exponent_names:
        mixture, posterior, (coef, alpha, beta), evals = _posterior(proj, form, w, best["robust_weights"], runs,
                                                                    prior, fixed_exponents, alpha, beta)
        nfev += evals

    pred = proj.columns(alpha, beta) @ coef
    if not np.all(np.isfinite(pred)) or np.any(pred <= 0):
        success, message = False, "fitted law gives non-positive or non-finite losses on the data"
        pred = np.where(pred > 0, pred, np.nan)
    r = np.log(pred) - proj.ly
    finite = bool(np.all(np.isfinite(r)))
    stats = {
        "n_points": int(y.size),
        "n_sizes": int(np.unique(n).size),
        "n_token_values": int(np.unique(d).size),
        "rmse_log": float(np.sqrt(np.average(r**2, weights=w))) if finite else float("nan"),
        "mae_log": float(np.average(np.abs(r), weights=w)) if finite else float("nan"),
        "max_abs_log": float(np.nanmax(np.abs(r))) if finite else float("nan"),
        "huber": float(np.sum(w * _huber(r, delta)[0])) if finite else float("nan"),
    }
    if posterior:
        stats["posterior"] = posterior
    result = FitResult(form=form, success=success, message=message, coef=coef, alpha=alpha, beta=beta,
                       n0=n0, d0=d0, stats=stats, nfev=nfev, overfit_shape=shape, overfit_nu0=nu0,
                       mixture=mixture, prior=prior)
    result.stderr = _stderr(result, n, d_raw, epochs, run_tokens, y, w)
    result.seconds = time.perf_counter() - started
    return result


def _robust_fit(proj: _Projector, form: LawForm, w, loss, delta, refine, fixed_exponents, max_iter) -> dict:
    """The single best law: global grid scan (least squares), then the robust local refinement."""
    fixed_a, fixed_b = fixed_exponents if fixed_exponents is not None else (None, None)
    free_a = form.size_term and fixed_a is None
    free_b = form.data_term and fixed_b is None
    alphas = _GRID if free_a else np.array([fixed_a if fixed_a is not None else 0.0])
    betas = _GRID if free_b else np.array([fixed_b if fixed_b is not None else 0.0])
    sse = proj.grid_scan(alphas, betas)
    nfev = sse.size
    ia, ib = np.unravel_index(np.argmin(sse), sse.shape)
    alpha, beta = float(alphas[ia]), float(betas[ib])
    step_a = _grid_step(_GRID, ia) if free_a else 0.0
    step_b = _grid_step(_GRID, ib) if free_b else 0.0

    success, message = True, "converged"
    if loss == "huber" and refine == "lbfgs":
        coef, _ = proj.solve(alpha, beta)
        coef, alpha, beta, res_ok, res_msg, evals = _refine_lbfgs(proj, form, coef, alpha, beta, free_a, free_b,
                                                                  w, delta)
        success, message = res_ok, res_msg
    else:
        coef, alpha, beta, converged, evals = _refine_zoom(proj, alpha, beta, step_a, step_b, w,
                                                           delta if loss == "huber" else None, max_iter)
        if not converged:
            success, message = False, f"exponents still moving after {max_iter} iterations"
    nfev += evals
    pred = proj.columns(alpha, beta) @ coef
    r = np.log(np.maximum(pred, 1e-300)) - proj.ly
    if loss == "huber":
        objective = float(np.sum(w * _huber(r, delta)[0]))
        robust_weights = np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-12))
    else:
        objective = float(np.sum(w * r**2))
        robust_weights = np.ones_like(r)
    return {"coef": coef, "alpha": alpha, "beta": beta, "success": success, "message": message, "nfev": nfev,
            "objective": objective, "robust_weights": robust_weights}


def effective_observations(w, runs, points_per_run: float) -> float:
    """How many independent observations the data are worth (see the module docstring)."""
    if runs is None:
        return float(w.sum() ** 2 / np.sum(w**2))
    _, inverse = np.unique(runs, return_inverse=True)
    totals = np.bincount(inverse, weights=w)
    counts = np.bincount(inverse)
    ess_runs = totals.sum() ** 2 / np.sum(totals**2)
    return float(ess_runs * min(counts.mean(), points_per_run))


def _posterior(proj: _Projector, form: LawForm, w, robust_weights, runs, prior: ExponentPrior,
               fixed_exponents, alpha, beta):
    """Posterior weights over exponent grids (robust weights held fixed), and its mode refined locally.

    A coarse log grid over the whole range finds where the mass is. Where it is
    concentrated within a cell or two - data that pin the exponents down - the
    average is taken over a fine grid spanning +-3 sd around the mode instead,
    so a sharp posterior is not rounded to the nearest coarse grid point.
    """
    fixed_a, fixed_b = fixed_exponents if fixed_exponents is not None else (None, None)
    free_a = form.size_term and fixed_a is None
    free_b = form.data_term and fixed_b is None
    ww = w * robust_weights
    m = effective_observations(w, runs, prior.points_per_run)
    temperature = max(m - proj.k, 0.5) / 2.0  # REML-like: the linear coefficients' degrees of freedom are spent
    evals = 0

    def log_post(a_grid, b_grid):
        nonlocal evals
        coefs, sse = proj.grid_scan(a_grid, b_grid, ww, with_coef=True)
        evals += sse.size
        ms = np.maximum(sse / ww.sum(), 1e-300)
        lp = prior.log_density(a_grid if free_a else None, b_grid if free_b else None)
        return coefs, -temperature * np.log(ms) + lp

    def axis(grid, free, value):
        return grid if free else np.array([value])

    def weigh(a_grid, b_grid, coefs, lpost):
        post = np.exp(lpost - lpost.max())
        post /= post.sum()
        keep = np.argwhere(post >= POSTERIOR_CUTOFF * post.max())
        weights = post[keep[:, 0], keep[:, 1]]
        return {"weight": weights / weights.sum(), "alpha": a_grid[keep[:, 0]].astype(float),
                "beta": b_grid[keep[:, 1]].astype(float), "coef": coefs[keep[:, 0], keep[:, 1]]}

    def spread(mixture):
        out = {}
        for name, free in (("alpha", free_a), ("beta", free_b)):
            if free:
                logs = np.log(mixture[name])
                mean = float(mixture["weight"] @ logs)
                out[name] = (mean, float(np.sqrt(mixture["weight"] @ (logs - mean) ** 2)))
        return out

    alphas, betas = axis(POSTERIOR_GRID, free_a, alpha), axis(POSTERIOR_GRID, free_b, beta)
    coefs, lpost = log_post(alphas, betas)
    mixture = weigh(alphas, betas, coefs, lpost)

    # The mode, by a pattern search in log-exponent, the step halving each time: to 1% of the grid's spacing.
    step = float(np.log(POSTERIOR_GRID[1] / POSTERIOR_GRID[0]))
    ia, ib = np.unravel_index(np.argmax(lpost), lpost.shape)
    mode_a, mode_b = float(alphas[ia]), float(betas[ib])
    offsets = np.array([-1.0, 0.0, 1.0])
    h = step / 2
    for _ in range(7):
        a_grid = np.unique(np.clip(mode_a * np.exp(h * offsets), *EXPONENT_BOUNDS)) if free_a else np.array([mode_a])
        b_grid = np.unique(np.clip(mode_b * np.exp(h * offsets), *EXPONENT_BOUNDS)) if free_b else np.array([mode_b])
        c_grid, lp_grid = log_post(a_grid, b_grid)
        i, j = np.unravel_index(np.argmax(lp_grid), lp_grid.shape)
        mode_a, mode_b, mode_c = float(a_grid[i]), float(b_grid[j]), c_grid[i, j]
        h /= 2.0

    coarse = spread(mixture)
    if coarse and all(sd < 1.5 * step for _, sd in coarse.values()):
        # Concentrated: the posterior's width from its curvature at the mode, then a fine grid over +-3 sd.
        widths = {}
        for name, free, mode in (("alpha", free_a, mode_a), ("beta", free_b, mode_b)):
            if not free:
                continue
            probe = mode * np.exp(np.array([-1.0, 0.0, 1.0]) * step / 4)
            a_grid = probe if name == "alpha" else np.array([mode_a])
            b_grid = probe if name == "beta" else np.array([mode_b])
            lp3 = log_post(a_grid, b_grid)[1].ravel()
            curvature = (lp3[0] - 2 * lp3[1] + lp3[2]) / (step / 4) ** 2
            widths[name] = min(1.0 / np.sqrt(-curvature), step) if curvature < 0 else step
        z = np.linspace(-3.0, 3.0, 11)
        fine_a = np.clip(mode_a * np.exp(widths["alpha"] * z), *EXPONENT_BOUNDS) if free_a else np.array([mode_a])
        fine_b = np.clip(mode_b * np.exp(widths["beta"] * z), *EXPONENT_BOUNDS) if free_b else np.array([mode_b])
        fine_a, fine_b = np.unique(np.maximum(fine_a, 1e-6)), np.unique(np.maximum(fine_b, 1e-6))
        coefs, lpost = log_post(fine_a, fine_b)
        mixture = weigh(fine_a, fine_b, coefs, lpost)

    summary = {"effective_observations": m, "components": int(len(mixture["weight"]))}
    for name, (mean, sd) in spread(mixture).items():
        summary[f"{name}_mean"] = float(np.exp(mean))
        summary[f"{name}_sd_log"] = sd
    return mixture, summary, (mode_c, mode_a, mode_b), evals


def _grid_step(grid: np.ndarray, i: int) -> float:
    lo = grid[i] - grid[i - 1] if i > 0 else grid[1] - grid[0]
    hi = grid[i + 1] - grid[i] if i + 1 < grid.size else lo
    return float(max(lo, hi))


def _refine_zoom(proj: _Projector, alpha, beta, step_a, step_b, w, delta, max_iter, tol=1e-3):
    """Shrinking 5x5 local grids over the exponents, coefficients projected exactly.

    With ``delta`` set, each step first reweights points by the Huber weights
    min(1, delta / |r|) of the current log residuals (iteratively reweighted
    least squares), so the fixed point is the Huber fit.
    """
    offsets = np.linspace(-1.0, 1.0, 5)
    rw = np.ones_like(w)
    evals = 0
    converged = False
    coef, _ = proj.solve(alpha, beta, w)
    for it in range(max_iter):
        if delta is not None:
            pred = proj.columns(alpha, beta) @ coef
            r = np.log(np.maximum(pred, 1e-300)) - proj.ly
            rw = np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-12))
        ww = w * rw
        alphas = np.clip(alpha + step_a * offsets, *EXPONENT_BOUNDS) if step_a else np.array([alpha])
        betas = np.clip(beta + step_b * offsets, *EXPONENT_BOUNDS) if step_b else np.array([beta])
        alphas, betas = np.unique(alphas), np.unique(betas)
        coefs, sse = proj.grid_scan(alphas, betas, ww, with_coef=True)
        evals += sse.size
        ia, ib = np.unravel_index(np.argmin(sse), sse.shape)
        moved = (alphas[ia] != alpha) or (betas[ib] != beta)
        alpha, beta, coef = float(alphas[ia]), float(betas[ib]), coefs[ia, ib]
        # Shrink on a stay; after a while shrink anyway, since reweighting can
        # make the minimiser hop between neighbours of a flat optimum.
        if not moved:
            step_a, step_b = step_a / 2, step_b / 2
        elif it >= max_iter // 4:
            step_a, step_b = step_a * 0.7, step_b * 0.7
        if max(step_a, step_b) < tol:
            converged = True
            break
    return coef, alpha, beta, converged, evals


def _refine_lbfgs(proj: _Projector, form: LawForm, coef, alpha, beta, free_a, free_b, w, delta):
    """L-BFGS-B over log-coefficients and exponents on the Huber loss of log residuals."""
    k = coef.size
    floor = 1e-12 * max(float(np.max(proj.y)), 1.0)
    expo0 = [v for name, v in (("alpha", alpha), ("beta", beta)) if name in form.exponent_names]
    theta0 = np.concatenate([np.log(np.maximum(coef, floor)), expo0])
    bounds = [(np.log(floor), None)] * k
    for name in form.exponent_names:
        free = free_a if name == "alpha" else free_b
        val = alpha if name == "alpha" else beta
        bounds.append(EXPONENT_BOUNDS if free else (val, val))

    def objective(theta):
        return _robust_objective(theta, form, proj.ln, proj.ld, proj.extra, proj.ly, w, delta)

    f0 = objective(theta0)[0]
    res = optimize.minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                            options={"maxiter": 500})
    if np.isfinite(res.fun) and res.fun <= f0:
        coef = np.exp(res.x[:k])
        e = k
        if form.size_term:
            alpha = float(res.x[e])
            e += 1
        if form.data_term:
            beta = float(res.x[e])
    coef = np.where(coef <= floor * 1.0001, 0.0, coef)
    ok = bool(res.success) or res.fun <= f0
    return coef, alpha, beta, ok, ("converged" if res.success else str(res.message)), int(res.nfev)


def _stderr(result: FitResult, n, d_raw, epochs, run_tokens, y, w) -> dict:
    """Gauss-Newton standard errors of the reported parameters from log residuals.

    These treat checkpoints as independent and so understate uncertainty for
    curves; the run-level bootstrap (fits.interval) is the honest interval.
    """
    form = result.form
    names = list(result.params)
    base = np.array([result.params[k] for k in names])
    d = effective_tokens(d_raw, epochs) if form.data_constrained else d_raw
    extra = extra_columns(form, n, d_raw, epochs, run_tokens, result.overfit_shape, result.overfit_nu0)
    extra = np.zeros((y.size, 0)) if extra is None else extra

    def predict(vec):
        p = dict(zip(names, vec))
        out = np.full_like(y, p["E"])
        if form.size_term:
            out = out + p["A"] * np.exp(-p["alpha"] * np.log(n))
        if form.data_term:
            out = out + p["B"] * np.exp(-p["beta"] * np.log(d))
        for j, name in enumerate(form.extra_names):
            out = out + p[name] * extra[:, j]
        return np.log(np.maximum(out, 1e-300))

    f0 = predict(base)
    jac = np.empty((y.size, base.size))
    for j in range(base.size):
        h = 1e-6 * max(abs(base[j]), 1e-8)
        step = base.copy()
        step[j] += h
        jac[:, j] = (predict(step) - f0) / h
    r = f0 - np.log(y)
    dof = max(y.size - base.size, 1)
    s2 = float(np.sum(w * r**2) / dof)
    jw = jac * np.sqrt(w)[:, None]
    # Columns differ by many orders of magnitude (B multiplies D^-beta ~ 1e-5):
    # unscaled, pinv truncates the B-beta direction and reports tiny errors.
    scale = np.linalg.norm(jw, axis=0)
    scale[scale == 0] = 1.0
    try:
        cov = np.linalg.pinv((jw / scale).T @ (jw / scale)) / np.outer(scale, scale) * s2
    except np.linalg.LinAlgError:
        return {k: float("nan") for k in names}
    return {k: float(np.sqrt(max(cov[i, i], 0.0))) for i, k in enumerate(names)}

"""Fitting a scaling law: variable projection over the exponents, then a robust refinement.

Why this design (measured by ``bench/fit_speed.py`` and the backtests):

* For fixed exponents the law is linear in (E, A, B) >= 0, so the best
  coefficients are a 3-variable non-negative least-squares problem whose Gram
  matrix costs one pass over the data. Scanning a whole grid of (alpha, beta)
  is then a handful of vectorised matrix products - a global search that needs
  no starting guesses, unlike a 27-start curve_fit.
* The grid minimiser is polished by a bounded local search over the two
  exponents (coefficients re-solved exactly at every step).
* Optionally a final L-BFGS-B pass with analytic gradients minimises a Huber
  loss on log residuals over all parameters, so that a few spiky checkpoints
  do not pull the fit.

Residuals are relative (log-space), so a family's loss level does not change
how hard a point pulls. Non-convergence is a result, never an exception; bad
input raises :class:`FitInputError` naming the problem.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from .laws import CHINCHILLA, FORMS, LawForm, effective_tokens, evaluate, features

RESULT_VERSION = 1
EXPONENT_BOUNDS = (0.0, 3.0)
_GRID = np.concatenate([np.linspace(0.0, 0.1, 6)[1:], np.geomspace(0.12, 2.5, 28)])


class FitInputError(ValueError):
    """The data cannot be fitted with the requested law; the message says why."""


@dataclass
class FitResult:
    """What a fit found. ``success`` is False (with a ``message``) when it did not converge."""

    form: LawForm
    success: bool
    message: str
    coef: np.ndarray  # E, A, B in normalised units (see laws.py)
    alpha: float
    beta: float
    n0: float
    d0: float
    stderr: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    seconds: float = 0.0
    nfev: int = 0
    r_star: float | None = None

    # -- predictions ---------------------------------------------------------
    def predict(self, params, tokens, epochs=None) -> np.ndarray:
        params = np.asarray(params, dtype=float)
        tokens = np.asarray(tokens, dtype=float)
        params, tokens = np.broadcast_arrays(params, tokens)
        d = effective_tokens(tokens, epochs) if self.form.data_constrained else tokens
        return evaluate(self.form, self.coef, params, d, self.alpha, self.beta, self.n0, self.d0)

    # -- reporting ------------------------------------------------------------
    @property
    def params(self) -> dict:
        """Parameters in the usual un-normalised form L = E + A/N^alpha + B/D^beta."""
        out = {"E": float(self.coef[0])}
        i = 1
        if self.form.size_term:
            out["A"] = float(self.coef[i] * self.n0**self.alpha)
            out["alpha"] = float(self.alpha)
            i += 1
        if self.form.data_term:
            out["B"] = float(self.coef[i] * self.d0**self.beta)
            out["beta"] = float(self.beta)
        return out

    def to_dict(self) -> dict:
        return {
            "version": RESULT_VERSION,
            "law": self.form.name,
            "success": bool(self.success),
            "message": self.message,
            "params": self.params,
            "normalised": {
                "coef": [float(c) for c in self.coef],
                "alpha": float(self.alpha),
                "beta": float(self.beta),
                "n0": float(self.n0),
                "d0": float(self.d0),
            },
            "stderr": {k: float(v) for k, v in self.stderr.items()},
            "stats": {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in self.stats.items()},
            "seconds": float(self.seconds),
            "nfev": int(self.nfev),
        }


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
            raise FitInputError(f"{name} must be positive; row {bad} has {arr[bad]!r}")
    if np.any(w < 0) or not np.any(w > 0):
        raise FitInputError("weights must be non-negative and not all zero")
    if form.size_term and np.unique(n[w > 0]).size < 2:
        raise FitInputError(
            f"the {form.name!r} law has a size term and needs at least 2 distinct model sizes; "
            f"got {np.unique(n[w > 0]).size}"
        )
    if form.data_term and np.unique(d[w > 0]).size < 2:
        raise FitInputError(f"the {form.name!r} law needs at least 2 distinct token counts")


# ---------------------------------------------------------------------------
# variable projection: exact non-negative coefficients for given exponents


class _Projector:
    """Solves min_c sum w ((X c - y) / y)^2, c >= 0, for many exponent pairs at once."""

    def __init__(self, form: LawForm, n, d, y, w, n0, d0):
        self.form = form
        self.ln = np.log(n / n0)
        self.ld = np.log(d / d0)
        self.y = y
        self.ly = np.log(y)
        # Relative residuals: divide each row by y; the target becomes 1.
        self.sw = w / y**2
        self.w = w
        self.k = len(form.coefficient_names)
        self.subsets = [s for r in range(1, self.k + 1) for s in itertools.combinations(range(self.k), r)]

    def columns(self, alpha, beta):
        cols = [np.ones_like(self.ld)]
        if self.form.size_term:
            cols.append(np.exp(-alpha * self.ln))
        if self.form.data_term:
            cols.append(np.exp(-beta * self.ld))
        return np.column_stack(cols)

    def solve(self, alpha: float, beta: float):
        """Best non-negative coefficients and the weighted relative SSE."""
        x = self.columns(alpha, beta)
        g = x.T @ (x * self.sw[:, None])
        b = x.T @ (self.sw * self.y)
        yy = float(np.sum(self.sw * self.y**2))
        best, best_c = np.inf, None
        # Enumerate active sets: with <= 3 coefficients that is <= 7 tiny solves,
        # exact and cheaper than an iterative NNLS.
        for s in self.subsets:
            idx = list(s)
            try:
                c_s = np.linalg.solve(g[np.ix_(idx, idx)], b[idx])
            except np.linalg.LinAlgError:
                continue
            if np.any(c_s < 0):
                continue
            sse = yy - 2 * c_s @ b[idx] + c_s @ g[np.ix_(idx, idx)] @ c_s
            if sse < best:
                best = sse
                best_c = np.zeros(self.k)
                best_c[idx] = c_s
        if best_c is None:  # degenerate data; fall back to a plain constant
            best_c = np.zeros(self.k)
            best_c[0] = np.exp(np.average(self.ly, weights=self.w))
            best = float(np.sum(self.sw * (best_c[0] - self.y) ** 2))
        return best_c, max(best, 0.0)

    def grid_scan(self, alphas, betas):
        """Weighted SSE of the unconstrained-or-feasible solution at every grid pair (vectorised)."""
        ka = alphas.size if self.form.size_term else 1
        kb = betas.size if self.form.data_term else 1
        sw, y = self.sw, self.y
        one = np.ones_like(self.ld)
        f1 = np.exp(-np.outer(self.ln, alphas)) if self.form.size_term else None  # n x ka
        f2 = np.exp(-np.outer(self.ld, betas)) if self.form.data_term else None  # n x kb
        # Gram entries for every pair, then batched 3x3 solves.
        k = self.k
        g = np.zeros((ka, kb, k, k))
        b = np.zeros((ka, kb, k))
        g[..., 0, 0] = np.sum(sw)
        b[..., 0] = np.sum(sw * y)
        j = 1
        if f1 is not None:
            g[..., 0, j] = g[..., j, 0] = (sw @ f1)[:, None]
            g[..., j, j] = ((f1**2).T @ sw)[:, None]
            b[..., j] = ((f1.T @ (sw * y)))[:, None]
            ja = j
            j += 1
        if f2 is not None:
            g[..., 0, j] = g[..., j, 0] = (sw @ f2)[None, :]
            g[..., j, j] = ((f2**2).T @ sw)[None, :]
            b[..., j] = (f2.T @ (sw * y))[None, :]
            if f1 is not None:
                g[..., ja, j] = g[..., j, ja] = f1.T @ (f2 * sw[:, None])
        yy = float(np.sum(sw * y**2))
        best = np.full((ka, kb), np.inf)
        for s in self.subsets:
            idx = list(s)
            gs = g[..., idx, :][..., :, idx]
            bs = b[..., idx]
            with np.errstate(all="ignore"):
                try:
                    c = np.linalg.solve(gs + 1e-300, bs[..., None])[..., 0]
                except np.linalg.LinAlgError:
                    continue
            ok = np.all(c >= 0, axis=-1) & np.all(np.isfinite(c), axis=-1)
            sse = yy - 2 * np.einsum("...i,...i", c, bs) + np.einsum("...i,...ij,...j", c, gs, c)
            sse = np.where(ok, sse, np.inf)
            best = np.minimum(best, sse)
        return best


# ---------------------------------------------------------------------------
# the robust (Huber on log residuals) objective with analytic gradients


def _huber(r, delta):
    a = np.abs(r)
    quad = a <= delta
    loss = np.where(quad, 0.5 * r**2, delta * (a - 0.5 * delta))
    dloss = np.where(quad, r, delta * np.sign(r))
    return loss, dloss


def _robust_objective(theta, form, ln, ld, ly, w, delta):
    """theta = log-coefficients then exponents. Returns (loss, gradient)."""
    k = len(form.coefficient_names)
    logc = theta[:k]
    expo = theta[k:]
    c = np.exp(logc)
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
    weights=None,
    loss: str = "huber",
    delta: float = 1e-3,
    fixed_exponents: tuple[float | None, float | None] | None = None,
    exponent_prior: dict | None = None,
) -> FitResult:
    """Fit ``form`` to observations (arrays of equal length).

    ``loss``: ``"huber"`` (log residuals, ``delta``, summed) or ``"ls"`` (weighted
    relative least squares, the variable-projection objective only).
    ``fixed_exponents``: (alpha, beta), either may be None = fitted; a borrowed
    exponent from other families' fits.
    ``exponent_prior``: ``{"alpha": (mean, sd), "beta": (mean, sd), "sigma": s}``
    adds a Gaussian penalty ((x - mean) / sd)^2 * sigma^2 to the relative SSE,
    i.e. a prior on the exponents measured in units of the residual noise.
    """
    started = time.perf_counter()
    form = FORMS[form] if isinstance(form, str) else form
    n = np.asarray(params, dtype=float).ravel()
    d_raw = np.asarray(tokens, dtype=float).ravel()
    y = np.asarray(values, dtype=float).ravel()
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float).ravel()
    _check_inputs(form, n, d_raw, y, w)
    if loss not in ("huber", "ls"):
        raise FitInputError(f"loss must be 'huber' or 'ls', not {loss!r}")
    d = effective_tokens(d_raw, epochs) if form.data_constrained else d_raw
    keep = w > 0
    n, d, y, w = n[keep], d[keep], y[keep], w[keep]
    w = w / w.sum() * np.count_nonzero(w)  # mean weight 1: delta keeps its meaning

    n0 = float(np.exp(np.mean(np.log(n))))
    d0 = float(np.exp(np.mean(np.log(d))))
    proj = _Projector(form, n, d, y, w, n0, d0)
    fixed_a, fixed_b = fixed_exponents if fixed_exponents is not None else (None, None)
    prior = exponent_prior or {}

    def penalty(alpha, beta):
        p = 0.0
        sigma2 = prior.get("sigma", 0.0) ** 2 * prior.get("points", np.sum(w))
        for name, val in (("alpha", alpha), ("beta", beta)):
            if name in prior and name in form.exponent_names:
                mean, sd = prior[name]
                p += sigma2 * ((val - mean) / sd) ** 2
        return p

    # 1. global grid scan over the free exponents
    alphas = np.array([fixed_a]) if (fixed_a is not None or not form.size_term) else _GRID
    betas = np.array([fixed_b]) if (fixed_b is not None or not form.data_term) else _GRID
    if not form.size_term:
        alphas = np.array([0.0])
    if not form.data_term:
        betas = np.array([0.0])
    sse = proj.grid_scan(alphas, betas)
    if prior:
        sse = sse + np.array([[penalty(a, b) for b in betas] for a in alphas])
    nfev = sse.size
    ia, ib = np.unravel_index(np.argmin(sse), sse.shape)
    alpha, beta = float(alphas[ia]), float(betas[ib])

    # 2. local polish of the free exponents, coefficients re-projected exactly
    free = [name for name, fixed, grid in (("alpha", fixed_a, alphas), ("beta", fixed_b, betas))
            if fixed is None and name in form.exponent_names]

    def obj(x):
        a = x[free.index("alpha")] if "alpha" in free else alpha
        b = x[free.index("beta")] if "beta" in free else beta
        return proj.solve(a, b)[1] + (penalty(a, b) if prior else 0.0)

    success, message = True, "converged"
    if free:
        x0 = np.array([alpha if f == "alpha" else beta for f in free])
        res = optimize.minimize(obj, x0, method="L-BFGS-B", bounds=[EXPONENT_BOUNDS] * len(free))
        nfev += int(res.nfev)
        if res.fun <= obj(x0):
            for f, v in zip(free, res.x):
                if f == "alpha":
                    alpha = float(v)
                else:
                    beta = float(v)
    coef, _ = proj.solve(alpha, beta)

    # 3. robust refinement of everything (Huber on log residuals)
    if loss == "huber":
        k = coef.size
        floor = 1e-12 * max(float(np.max(y)), 1.0)
        expo0 = [v for name, v in (("alpha", alpha), ("beta", beta)) if name in form.exponent_names]
        theta0 = np.concatenate([np.log(np.maximum(coef, floor)), expo0])
        bounds = [(np.log(floor), None)] * k
        for name in form.exponent_names:
            fixed = fixed_a if name == "alpha" else fixed_b
            val = alpha if name == "alpha" else beta
            bounds.append((val, val) if fixed is not None else EXPONENT_BOUNDS)

        def robust(theta):
            f, g = _robust_objective(theta, form, proj.ln, proj.ld, proj.ly, w, delta)
            if prior:
                sigma2 = prior.get("sigma", 0.0) ** 2 * prior.get("points", np.sum(w))
                for j, name in enumerate(form.exponent_names):
                    if name in prior:
                        mean, sd = prior[name]
                        # The prior is in SSE units; the Huber loss is ~ delta * |r|: rescale.
                        scale = delta / max(prior.get("sigma", delta), 1e-12)
                        f += scale * sigma2 * ((theta[k + j] - mean) / sd) ** 2
                        g[k + j] += scale * sigma2 * 2 * (theta[k + j] - mean) / sd**2
            return f, g

        f0 = robust(theta0)[0]
        res = optimize.minimize(robust, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                                options={"maxiter": 500})
        nfev += int(res.nfev)
        if np.isfinite(res.fun) and res.fun <= f0:
            coef = np.exp(res.x[:k])
            e = k
            if form.size_term:
                alpha = float(res.x[e])
                e += 1
            if form.data_term:
                beta = float(res.x[e])
        success = bool(res.success) or res.fun <= f0
        message = str(res.message) if not res.success else "converged"
        coef = np.where(coef <= floor * 1.0001, 0.0, coef)

    pred = evaluate(form, coef, n, d, alpha, beta, n0, d0)
    if not np.all(np.isfinite(pred)) or np.any(pred <= 0):
        success, message = False, "fitted law gives non-positive or non-finite losses on the data"
        pred = np.where(pred > 0, pred, np.nan)
    r = np.log(pred) - proj.ly
    stats = {
        "n_points": int(y.size),
        "n_sizes": int(np.unique(n).size),
        "rmse_log": float(np.sqrt(np.average(r**2, weights=w))) if np.all(np.isfinite(r)) else float("nan"),
        "mae_log": float(np.average(np.abs(r), weights=w)) if np.all(np.isfinite(r)) else float("nan"),
        "max_abs_log": float(np.nanmax(np.abs(r))),
    }
    result = FitResult(form=form, success=success, message=message, coef=coef, alpha=alpha, beta=beta,
                       n0=n0, d0=d0, stats=stats, nfev=nfev)
    result.stderr = _stderr(result, n, d, y, w)
    result.seconds = time.perf_counter() - started
    return result


def _stderr(result: FitResult, n, d, y, w) -> dict:
    """Gauss-Newton standard errors of the reported parameters from log residuals.

    These treat checkpoints as independent and so understate uncertainty for
    curves; the run-level bootstrap (fits.interval) is the honest interval.
    """
    form = result.form
    names = list(result.params)
    base = np.array([result.params[k] for k in names])

    def predict(vec):
        p = dict(zip(names, vec))
        out = np.full_like(y, p["E"])
        if form.size_term:
            out = out + p["A"] * np.exp(-p["alpha"] * np.log(n))
        if form.data_term:
            out = out + p["B"] * np.exp(-p["beta"] * np.log(d))
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
    try:
        cov = np.linalg.pinv(jw.T @ jw) * s2
    except np.linalg.LinAlgError:
        return {k: float("nan") for k in names}
    return {k: float(np.sqrt(max(cov[i, i], 0.0))) for i, k in enumerate(names)}

"""Fitting one law to observations: a global exponent grid, a robust refinement, optionally a posterior.

* For fixed exponents the law is linear in its coefficients, so the best
  coefficients come from :class:`fits.projection.Projector` exactly; a grid
  of (alpha, beta) is scanned globally with no starting guesses.
* The grid minimiser is refined by iteratively reweighted projection on
  shrinking local exponent grids: each step reweights points by their Huber
  weight min(1, delta / |r|) on log residuals, so the fixed point is the Huber
  fit and a few spiky checkpoints do not pull it. L-BFGS-B with analytic
  gradients over all parameters is kept as ``refine="lbfgs"`` for comparison.
* With a ``prior`` the exponents are not a single point but a posterior
  (:mod:`fits.posterior`), and predictions average the grid's laws.

Residuals are relative (log-space), so a family's loss level does not change
how hard a point pulls. Non-convergence is a result, never an exception; bad
input raises :class:`FitInputError` naming the problem.
"""
from __future__ import annotations

import time

import numpy as np
from scipy import optimize

from .laws import CHINCHILLA, OVERFIT_SHAPES, LawForm, effective_tokens, extra_columns, form_named, repetitions
from .posterior import EXPONENT_BOUNDS, ExponentPrior, posterior
from .projection import Projector
from .result import FitResult
from .trainset import FitInputError

# The global exponent grid: a few small values (the size term of a family that barely improves with N),
# then log-spaced up to 2.5 (the synthetic PCFG families reach ~2).
GRID = np.concatenate([[0.02, 0.05, 0.08], np.geomspace(0.11, 2.5, 15)])
# Huber threshold on log residuals (0.3%): chosen by backtest over 1e-3, 3e-3, 1e-2, 3e-2 and least squares.
DEFAULT_DELTA = 3e-3


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
    delta: float = DEFAULT_DELTA,
    refine: str = "irls",
    fixed_exponents: tuple[float | None, float | None] | None = None,
    max_iter: int = 40,
    prior: ExponentPrior | None = None,
    overfit_shape: tuple[float, float] | None = None,
    stderr: bool = True,
    tol: float = 3e-3,
) -> FitResult:
    """Fit ``form`` to observations (arrays of equal length).

    ``loss``: ``"huber"`` (on log residuals, threshold ``delta``, summed) or
    ``"ls"`` (weighted relative least squares).
    ``refine`` (Huber only): ``"irls"`` - iteratively reweighted variable
    projection with a shrinking local grid over the exponents (the default) -
    or ``"lbfgs"`` - L-BFGS-B with analytic gradients over all parameters.
    ``fixed_exponents``: (alpha, beta), either may be None = fitted.
    ``run_tokens``: each row's run's final tokens (the schedule term's T).
    ``runs``: a run label per row, so the posterior counts runs, not checkpoints.
    ``prior``: an :class:`ExponentPrior` turns on the posterior over exponents;
    None = the single robust fit.
    ``overfit_shape``: the overfitting term's (a, b); None = chosen by the fit.
    ``stderr``: compute standard errors (a prediction alone does not need them).
    ``tol``: how precisely the exponents are refined.
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
    keep = w > 0
    if not keep.all():
        n, d_raw, y, w = n[keep], d_raw[keep], y[keep], w[keep]
        epochs = None if epochs is None else epochs[keep]
        run_tokens = None if run_tokens is None else run_tokens[keep]
        runs = None if runs is None else runs[keep]
    d = effective_tokens(d_raw, epochs) if form.data_constrained else d_raw
    w = w / w.sum() * w.size  # mean weight 1: delta keeps its meaning

    n0 = float(np.exp(np.mean(np.log(n))))
    d0 = float(np.exp(np.mean(np.log(d))))
    ln, ld = np.log(n / n0), np.log(d / d0)
    nu0 = 1.0
    if form.overfit:
        _, unique = repetitions(d_raw, epochs)
        nu0 = float(np.exp(np.mean(np.log(n / unique))))
    nfev = 0
    shape = overfit_shape
    if form.overfit and shape is None:
        # The overfitting term's shape: the one whose law fits best on the global exponent grid.
        scores = []
        for candidate in OVERFIT_SHAPES:
            extra = extra_columns(form, n, d_raw, epochs, run_tokens, candidate, nu0)
            sse = Projector(form, ln, ld, y, w, extra).grid_scan(GRID, GRID)
            nfev += sse.size
            scores.append(float(sse.min()))
        shape = OVERFIT_SHAPES[int(np.argmin(scores))]
    proj = Projector(form, ln, ld, y, w, extra_columns(form, n, d_raw, epochs, run_tokens, shape, nu0))
    best = _robust_fit(proj, form, w, loss, delta, refine, fixed_exponents, max_iter, tol)
    nfev += best["nfev"]
    coef, alpha, beta = best["coef"], best["alpha"], best["beta"]
    success, message = best["success"], best["message"]

    mixture, summary = None, {}
    if prior is not None and form.exponent_names:
        mixture, summary, (coef, alpha, beta), evals = posterior(proj, form, w, best["robust_weights"], runs, prior,
                                                                 fixed_exponents, alpha, beta)
        nfev += evals

    pred = proj.predict(coef, alpha, beta)
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
        "huber": float(np.sum(w * huber(r, delta)[0])) if finite else float("nan"),
    }
    if summary:
        stats["posterior"] = summary
    result = FitResult(form=form, success=success, message=message, coef=coef, alpha=alpha, beta=beta,
                       n0=n0, d0=d0, stats=stats, nfev=nfev, overfit_shape=shape, overfit_nu0=nu0,
                       mixture=mixture, prior=prior)
    if stderr:
        result.stderr = standard_errors(result, proj, pred, w)
    result.seconds = time.perf_counter() - started
    return result


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
# the robust fit


def huber(r, delta):
    """Huber loss of residuals ``r`` at threshold ``delta``, and its derivative."""
    a = np.abs(r)
    quad = a <= delta
    loss = np.where(quad, 0.5 * r**2, delta * (a - 0.5 * delta))
    dloss = np.where(quad, r, delta * np.sign(r))
    return loss, dloss


def _robust_fit(proj: Projector, form: LawForm, w, loss, delta, refine, fixed_exponents, max_iter, tol) -> dict:
    """The single best law: global grid scan (least squares), then the robust local refinement."""
    fixed_a, fixed_b = fixed_exponents if fixed_exponents is not None else (None, None)
    free_a = form.size_term and fixed_a is None
    free_b = form.data_term and fixed_b is None
    alphas = GRID if free_a else np.array([fixed_a if fixed_a is not None else 0.0])
    betas = GRID if free_b else np.array([fixed_b if fixed_b is not None else 0.0])
    sse = proj.grid_scan(alphas, betas)
    nfev = sse.size
    ia, ib = np.unravel_index(np.argmin(sse), sse.shape)
    alpha, beta = float(alphas[ia]), float(betas[ib])
    step_a = _grid_step(GRID, ia) if free_a else 0.0
    step_b = _grid_step(GRID, ib) if free_b else 0.0

    success, message = True, "converged"
    if loss == "huber" and refine == "lbfgs":
        coef, _ = proj.solve(alpha, beta)
        coef, alpha, beta, success, message, evals = _refine_lbfgs(proj, form, coef, alpha, beta, free_a, free_b,
                                                                   w, delta)
    else:
        coef, alpha, beta, converged, evals = _refine_zoom(proj, alpha, beta, step_a, step_b, w,
                                                           delta if loss == "huber" else None, max_iter, tol)
        if not converged:
            success, message = False, f"exponents still moving after {max_iter} iterations"
    nfev += evals
    r = np.log(np.maximum(proj.predict(coef, alpha, beta), 1e-300)) - proj.ly
    if loss == "huber":
        robust_weights = np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-12))
    else:
        robust_weights = np.ones_like(r)
    return {"coef": coef, "alpha": alpha, "beta": beta, "success": success, "message": message, "nfev": nfev,
            "robust_weights": robust_weights}


def _grid_step(grid: np.ndarray, i: int) -> float:
    lo = grid[i] - grid[i - 1] if i > 0 else grid[1] - grid[0]
    hi = grid[i + 1] - grid[i] if i + 1 < grid.size else lo
    return float(max(lo, hi))


def _refine_zoom(proj: Projector, alpha, beta, step_a, step_b, w, delta, max_iter, tol):
    """Shrinking local grids over the exponents, coefficients projected exactly at every point.

    Each iteration reweights the points by the Huber weights min(1, delta / |r|)
    of the current log residuals (iteratively reweighted least squares, so the
    fixed point is the Huber fit; ``delta`` None = least squares), then scans a
    7x7 grid of half-width 3h around the current exponents. A minimum inside
    the grid shrinks h threefold; one on its edge recentres the grid. A scan
    costs about the same for 9 or 49 points (its cost is the calls, not the
    points), so a wide grid that shrinks fast needs the fewest scans. After a
    few iterations h shrinks anyway: a flat valley (an exponent the data barely
    constrain) would otherwise be walked for long.
    """
    offsets = np.linspace(-3.0, 3.0, 7)
    evals = 0
    free = np.array([step_a > 0, step_b > 0])
    h = np.array([step_a, step_b], dtype=float) / 3
    lo, hi = EXPONENT_BOUNDS
    coef, _ = proj.solve(alpha, beta, w)
    for it in range(max_iter):
        ww = w
        if delta is not None:
            r = np.log(np.maximum(proj.predict(coef, alpha, beta), 1e-300)) - proj.ly
            ww = w * np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-12))
        alphas = np.unique(np.clip(alpha + h[0] * offsets, lo, hi)) if free[0] else np.array([alpha])
        betas = np.unique(np.clip(beta + h[1] * offsets, lo, hi)) if free[1] else np.array([beta])
        coefs, sse = proj.grid_scan(alphas, betas, ww, with_coef=True)
        evals += sse.size
        ia, ib = np.unravel_index(np.argmin(sse), sse.shape)
        moved = np.array([abs(alphas[ia] - alpha), abs(betas[ib] - beta)])
        alpha, beta, coef = float(alphas[ia]), float(betas[ib]), coefs[ia, ib]
        inside = np.array([0 < ia < alphas.size - 1 or alphas.size == 1 or alpha in (lo, hi),
                           0 < ib < betas.size - 1 or betas.size == 1 or beta in (lo, hi)])
        h = np.where(inside, h / 3, h)
        if it >= 6:
            h = h * 0.7
        if np.all(h[free] * 3 < tol) and np.all(moved[free] < tol):
            return coef, alpha, beta, True, evals
    return coef, alpha, beta, False, evals


def _robust_objective(theta, form, proj: Projector, w, delta):
    """theta = log-coefficients then the free exponents. Returns (Huber loss, gradient)."""
    k = len(form.coefficient_names)
    c = np.exp(theta[:k])
    alpha = theta[k] if form.size_term else 0.0
    beta = theta[k + int(form.size_term)] if form.data_term else 0.0
    cols = proj.columns(alpha, beta)
    terms = cols * c
    pred = terms.sum(axis=1)
    r = np.log(pred) - proj.ly
    value, dl = huber(r, delta)
    g_pred = w * dl / pred
    grad = [terms.T @ g_pred]
    i = 1
    if form.size_term:
        grad.append([np.sum(g_pred * -proj.ln * terms[:, i])])
        i += 1
    if form.data_term:
        grad.append([np.sum(g_pred * -proj.ld * terms[:, i])])
    return float(np.sum(w * value)), np.concatenate(grad)


def _refine_lbfgs(proj: Projector, form: LawForm, coef, alpha, beta, free_a, free_b, w, delta):
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
        return _robust_objective(theta, form, proj, w, delta)

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


def standard_errors(result: FitResult, proj: Projector, pred: np.ndarray, w: np.ndarray) -> dict:
    """Gauss-Newton standard errors of the reported parameters, from log residuals.

    The Jacobian is analytic: the law's columns (the same evaluator as the fit)
    and, for an exponent, the log-size or log-data times its term. Checkpoints
    are treated as independent, so these understate the uncertainty of curves;
    the run-level bootstrap (:mod:`fits.interval`) is the honest interval.
    """
    form = result.form
    names = list(result.params)
    cols = proj.columns(result.alpha, result.beta)
    ok = np.isfinite(pred) & (pred > 0)
    if not ok.all():
        return {k: float("nan") for k in names}
    jac = []
    i = 1
    jac.append(cols[:, 0])  # E
    if form.size_term:
        # A multiplies N^-alpha = (N/N0)^-alpha N0^-alpha; alpha scales that term by -log N.
        jac.append(cols[:, i] * result.n0 ** -result.alpha)
        jac.append(-(proj.ln + np.log(result.n0)) * result.coef[i] * cols[:, i])
        i += 1
    if form.data_term:
        jac.append(cols[:, i] * result.d0 ** -result.beta)
        jac.append(-(proj.ld + np.log(result.d0)) * result.coef[i] * cols[:, i])
        i += 1
    for _ in form.extra_names:
        jac.append(cols[:, i])
        i += 1
    jac = np.column_stack(jac) / pred[:, None]
    r = np.log(pred) - proj.ly
    dof = max(pred.size - len(names), 1)
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

"""Borrowed exponents: a broad prior over (alpha, beta) and the posterior the data give it.

Where the data cannot identify a law's exponents (two sizes; final losses of
barely more runs than the law has parameters), the fit's profile likelihood
over an exponent grid is combined with a broad prior centred on Hoffmann et
al.'s exponents, and predictions average the grid's laws by their posterior
weight (Bayesian model averaging). So the exponents are in effect borrowed,
instead of being wherever the flat valley of the fit happens to end.

How much the data say is counted honestly: checkpoints of one run are not
independent, so a run's curve counts as at most ``points_per_run``
observations, runs count by their effective number (Kish) under the policy's
weights, and the linear coefficients' degrees of freedom are taken off (as in
REML).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .laws import LawForm
from .projection import Projector

EXPONENT_BOUNDS = (0.0, 3.0)
# The posterior is evaluated on a log-uniform grid: the prior is Gaussian in log-exponent.
POSTERIOR_GRID = np.geomspace(0.02, 2.5, 32)
# Grid points whose posterior weight is below this share of the best one are dropped from the average.
POSTERIOR_CUTOFF = 1e-4


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


def effective_observations(w, runs, points_per_run: float) -> float:
    """How many independent observations the data are worth (see the module docstring)."""
    if runs is None:
        return float(w.sum() ** 2 / np.sum(w**2))
    _, inverse = np.unique(runs, return_inverse=True)
    totals = np.bincount(inverse, weights=w)
    counts = np.bincount(inverse)
    ess_runs = totals.sum() ** 2 / np.sum(totals**2)
    return float(ess_runs * min(counts.mean(), points_per_run))


def posterior(proj: Projector, form: LawForm, w, robust_weights, runs, prior: ExponentPrior,
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



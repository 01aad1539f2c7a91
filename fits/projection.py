"""Variable projection: the exact non-negative coefficients of a law for many exponent pairs at once.

For fixed exponents every law here is linear in its coefficients (E, A, B and
the optional terms, all >= 0), so the best coefficients are a small
non-negative least-squares problem whose Gram matrix costs one pass over the
data. A whole grid of (alpha, beta) is then a handful of vectorised matrix
products: a global search that needs no starting guesses.
"""
from __future__ import annotations

import itertools

import numpy as np

from .laws import LawForm, law_columns


class Projector:
    """Solves min_c sum w ((X c - y) / y)^2, c >= 0, for a grid of exponent pairs.

    X = [1, (N/N0)^-alpha, (D/D0)^-beta, extra columns]; residuals are relative,
    so a family's loss level does not change how hard a point pulls. ``w`` can
    be replaced per call (the robust refinement reweights points).
    """

    def __init__(self, form: LawForm, ln, ld, y, w, extra=None):
        self.form = form
        self.ln = np.asarray(ln, dtype=float)
        self.ld = np.asarray(ld, dtype=float)
        self.y = np.asarray(y, dtype=float)
        self.ly = np.log(self.y)
        self.w = np.asarray(w, dtype=float)
        self.extra = np.zeros((self.y.size, 0)) if extra is None else np.asarray(extra, dtype=float).reshape(
            self.y.size, -1)
        self.k = len(form.coefficient_names)
        # Largest active set first: where its solution is feasible it is the optimum (a convex problem).
        self.subsets = [list(s) for r in range(self.k, 0, -1) for s in itertools.combinations(range(self.k), r)]

    def columns(self, alpha: float, beta: float) -> np.ndarray:
        """The design matrix at one exponent pair (rows, k)."""
        return law_columns(self.form, self.ln, self.ld, alpha, beta, self.extra)

    def predict(self, coef, alpha: float, beta: float) -> np.ndarray:
        return self.columns(alpha, beta) @ np.asarray(coef, dtype=float)

    def solve(self, alpha: float, beta: float, w=None):
        """Best non-negative coefficients and the weighted relative SSE at one exponent pair."""
        c, sse = self.grid_scan(np.array([alpha]), np.array([beta]), w, with_coef=True)
        return c[0, 0], float(sse[0, 0])

    def _gram(self, alphas, betas, sw):
        """Gram matrix G (ka, kb, k, k) and right-hand side b (ka, kb, k) of the weighted relative problem."""
        ka = alphas.size if self.form.size_term else 1
        kb = betas.size if self.form.data_term else 1
        y = self.y
        # Each column as (values (m, n), axis): axis 0 varies with alpha, 1 with beta, None is fixed.
        cols = [(np.ones((1, y.size)), None)]
        if self.form.size_term:
            cols.append((np.exp(-np.outer(alphas, self.ln)), 0))
        if self.form.data_term:
            cols.append((np.exp(-np.outer(betas, self.ld)), 1))
        cols.extend((col[None, :], None) for col in self.extra.T)
        k = len(cols)
        g = np.empty((ka, kb, k, k))
        b = np.empty((ka, kb, k))

        def place(vec, axis):
            """A per-pair quantity that varies along one grid axis (or none) as a (ka, kb)-broadcastable array."""
            if axis is None:
                return vec.reshape(1, 1)
            return vec.reshape(-1, 1) if axis == 0 else vec.reshape(1, -1)

        for i, (ci, ai) in enumerate(cols):
            b[..., i] = place((ci * (sw * y)).sum(axis=1), ai)
            for j in range(i, k):
                cj, aj = cols[j]
                if ai is None or aj is None or ai == aj:
                    val = place((ci * cj * sw).sum(axis=1), ai if ai is not None else aj)
                else:  # one varies with alpha, the other with beta: a (ka, kb) matrix product
                    val = (ci * sw) @ cj.T if ai == 0 else ((cj * sw) @ ci.T)
                g[..., i, j] = g[..., j, i] = val
        return g, b

    def grid_scan(self, alphas, betas, w=None, with_coef=False):
        """Weighted relative SSE (and optionally coefficients) at every grid pair, vectorised.

        Active sets are enumerated: with <= 5 coefficients that is <= 31 tiny
        batched solves per pair, exact and cheaper than an iterative NNLS.
        """
        alphas = np.atleast_1d(np.asarray(alphas, dtype=float))
        betas = np.atleast_1d(np.asarray(betas, dtype=float))
        w = self.w if w is None else w
        sw = w / self.y**2  # relative residuals: rows divided by y
        g, b = self._gram(alphas, betas, sw)
        ka, kb = b.shape[:2]
        k = b.shape[-1]
        yy = float(np.sum(sw * self.y**2))
        g = g.reshape(-1, k, k)
        b = b.reshape(-1, k)
        best = np.full(ka * kb, np.inf)
        coef = np.zeros((ka * kb, k))
        todo = np.arange(ka * kb)  # pairs whose optimum is not known yet
        for s in self.subsets:
            gs = g[todo][:, s][:, :, s]
            bs = b[todo][:, s]
            with np.errstate(all="ignore"):
                # A relative ridge of 1e-12 keeps singular (degenerate) pairs solvable without a determinant.
                ridge = 1e-12 * np.einsum("pii->p", gs)[:, None, None] * np.eye(len(s))
                c = np.linalg.solve(gs + ridge, bs[..., None])[..., 0]
                sse = yy - 2 * np.einsum("pi,pi->p", c, bs) + np.einsum("pi,pij,pj->p", c, gs, c)
                # KKT: at a feasible face solution, no excluded coefficient would lower the SSE by growing:
                # then it is the optimum of the convex problem, and smaller faces need not be tried.
                grad = np.einsum("pij,pj->pi", g[todo][:, :, s], c) - b[todo]
            ok = np.all(c >= 0, axis=-1) & np.all(np.isfinite(c), axis=-1) & np.isfinite(sse)
            better = ok & (sse < best[todo])
            rows = todo[better]
            best[rows] = sse[better]
            if with_coef and rows.size:
                coef[rows] = 0.0
                coef[np.ix_(rows, s)] = c[better]
            out = [j for j in range(k) if j not in s]
            scale = np.abs(b[todo]).max(axis=1, keepdims=True) + 1e-300
            kkt = ok & np.all(grad[:, out] >= -1e-9 * scale, axis=1) if out else ok
            todo = todo[~kkt]
            if not todo.size:
                break
        best = best.reshape(ka, kb)
        coef = coef.reshape(ka, kb, k)
        if with_coef:
            none = ~np.isfinite(best)
            if none.any():  # degenerate data (no feasible set): a constant at the weighted mean
                level = np.exp(np.average(self.ly, weights=w))
                coef[none] = 0.0
                coef[none, 0] = level
                best[none] = float(np.sum(sw * (level - self.y) ** 2))
            return coef, np.maximum(best, 0.0)
        return best

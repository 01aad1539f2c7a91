"""fits.projection: the exact non-negative coefficients at every exponent pair, checked against scipy's NNLS."""
import itertools

import numpy as np
import pytest
from scipy.optimize import nnls

from fits.laws import CHINCHILLA, SIZE_ONLY, TOKENS_ONLY, law_columns
from fits.projection import Projector

FORMS = [CHINCHILLA, CHINCHILLA.with_terms(schedule=True), TOKENS_ONLY, SIZE_ONLY,
         CHINCHILLA.with_terms(schedule=True, overfit=True)]


def random_problem(seed):
    """Losses that follow no law (so non-negativity binds often), random weights and extra columns."""
    rng = np.random.default_rng(seed)
    form = FORMS[seed % len(FORMS)]
    m = 25
    ln, ld = rng.normal(0, 1, m), rng.normal(0, 1.5, m)
    y = np.exp(rng.normal(1.0, 0.3, m))
    w = rng.uniform(0.1, 2.0, m)
    extra = rng.uniform(0, 1, (m, len(form.extra_names))) if form.extra_names else None
    return form, ln, ld, y, w, extra, rng


def reference(form, ln, ld, y, w, extra, alpha, beta):
    """scipy's NNLS on the same weighted relative problem: min sum w ((X c - y) / y)^2, c >= 0."""
    x = law_columns(form, ln, ld, alpha, beta, extra)
    s = np.sqrt(w) / y
    c, rnorm = nnls(x * s[:, None], y * s)
    return c, rnorm**2


@pytest.mark.parametrize("seed", range(40))
def test_grid_scan_finds_the_nnls_optimum_at_every_pair(seed):
    form, ln, ld, y, w, extra, rng = random_problem(seed)
    proj = Projector(form, ln, ld, y, w, extra)
    alphas, betas = rng.uniform(0.01, 2.5, 4), rng.uniform(0.01, 2.5, 3)
    coef, sse = proj.grid_scan(alphas, betas, with_coef=True)
    np.testing.assert_array_equal(proj.grid_scan(alphas, betas), sse)  # with or without the coefficients
    pairs = itertools.product(range(sse.shape[0]), range(sse.shape[1]))
    for i, j in pairs:
        c_ref, sse_ref = reference(form, ln, ld, y, w, extra, alphas[i], betas[j])
        assert sse[i, j] == pytest.approx(sse_ref, rel=1e-7, abs=1e-12)
        assert np.all(coef[i, j] >= 0)
        # The fitted losses agree closely, the coefficients as well as the problem is conditioned: random
        # extra columns can be nearly collinear, and the projector solves ridged (1e-12) normal equations,
        # which square the condition number. 1e-4 of a loss is far below any fit's noise (delta = 3e-3).
        x = law_columns(form, ln, ld, alphas[i], betas[j], extra)
        np.testing.assert_allclose(x @ coef[i, j], x @ c_ref, rtol=1e-4)
        np.testing.assert_allclose(coef[i, j], c_ref, rtol=1e-2, atol=1e-4 * np.abs(c_ref).max())


def test_the_random_problems_exercise_bound_coefficients():
    # Otherwise the comparison above would only check unconstrained least squares.
    bound = 0
    for seed in range(40):
        form, ln, ld, y, w, extra, rng = random_problem(seed)
        alphas, betas = rng.uniform(0.01, 2.5, 4), rng.uniform(0.01, 2.5, 3)
        coef, _ = Projector(form, ln, ld, y, w, extra).grid_scan(alphas, betas, with_coef=True)
        bound += int(np.sum(np.any(coef == 0.0, axis=-1)))
    assert bound > 50


def test_on_data_from_the_law_the_coefficients_are_the_true_ones():
    rng = np.random.default_rng(1)
    ln, ld = rng.normal(0, 1, 30), rng.normal(0, 1, 30)
    truth = np.array([1.8, 0.6, 0.4])
    y = law_columns(CHINCHILLA, ln, ld, 0.34, 0.28) @ truth
    proj = Projector(CHINCHILLA, ln, ld, y, np.ones(30))
    coef, sse = proj.solve(0.34, 0.28)
    np.testing.assert_allclose(coef, truth, rtol=1e-8)
    # Zero up to rounding: the SSE comes from the normal equations (y'y - 2 c'b + c'Gc), exact to ~1e-15.
    assert sse < 1e-12
    # Elsewhere on the grid the fit is worse: the scan's minimum is at the truth, along either axis.
    grid = np.array([0.2, 0.34, 0.5])
    assert np.argmin(proj.grid_scan(grid, [0.28])[:, 0]) == 1
    assert np.argmin(proj.grid_scan([0.34], [0.2, 0.28, 0.5])[0]) == 1
    assert proj.grid_scan(grid[[0, 2]], [0.28]).min() > 1e-6


def test_per_call_weights_replace_the_projectors_own():
    form, ln, ld, y, w, extra, rng = random_problem(3)
    proj = Projector(form, ln, ld, y, w, extra)
    w2 = rng.uniform(0.1, 2.0, y.size)
    _, sse = proj.solve(0.4, 0.3, w2)
    _, sse_ref = reference(form, ln, ld, y, w2, extra, 0.4, 0.3)
    assert sse == pytest.approx(sse_ref, rel=1e-7)


def test_a_form_without_an_exponent_ignores_that_axis():
    form, ln, ld, y, w, extra, _ = random_problem(2)  # TOKENS_ONLY: no size term
    assert form is TOKENS_ONLY
    sse = Projector(form, ln, ld, y, w, extra).grid_scan([0.1, 0.2, 0.3], [0.2, 0.5])
    assert sse.shape == (1, 2)

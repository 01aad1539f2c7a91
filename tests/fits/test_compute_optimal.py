"""fits.compute_optimal: the split of a compute budget under Besiroglu et al.'s refit, and its range."""
import numpy as np
import pytest

from fits.compute_optimal import (
    REFERENCE_LAW,
    REFERENCE_PIVOT,
    REFERENCE_STDERR,
    compute_optimal,
    law_loss,
    law_samples,
    optimal_split,
)

CHINCHILLA_COMPUTE = 5.76e23  # Chinchilla's own budget: 70B parameters on 1.4T tokens


def test_the_reference_law_is_the_replications_published_fit():
    assert REFERENCE_LAW == {"E": 1.8172, "A": 482.01, "alpha": 0.3478, "B": 2085.43, "beta": 0.3658}
    assert REFERENCE_STDERR["alpha"] == REFERENCE_STDERR["beta"] == 0.02


def test_at_chinchillas_compute_the_split_is_chinchillas_about_20_tokens_per_parameter():
    out = compute_optimal(CHINCHILLA_COMPUTE)
    assert out["params"] == pytest.approx(7.2e10, rel=0.05)
    assert 17 < out["tokens_per_param"] < 21  # the replication's point: ~20, not Hoffmann's published 74
    assert 6 * out["params"] * out["tokens"] == pytest.approx(CHINCHILLA_COMPUTE)
    for key in ("params", "tokens", "tokens_per_param"):
        lo, hi = out[f"{key}_interval"]
        assert lo < out[key] < hi
    assert "2404.10102" in out["source"] and out["interval"] == [0.1, 0.9]


def test_the_split_minimises_the_law_along_the_iso_flop_curve():
    n_opt, d_opt = optimal_split(1e22, REFERENCE_LAW)
    grid = np.geomspace(n_opt / 10, n_opt * 10, 2001)
    losses = law_loss(REFERENCE_LAW, grid, 1e22 / (6 * grid))
    assert grid[np.argmin(losses)] == pytest.approx(n_opt, rel=0.01)
    assert law_loss(REFERENCE_LAW, n_opt, d_opt) <= losses.min() + 1e-12


def test_the_range_widens_away_from_the_data_the_law_was_fitted_on():
    def width(c):
        lo, hi = compute_optimal(c)["tokens_per_param_interval"]
        return hi / lo

    assert width(1e21) < width(1e25) < width(1e28)


def test_pivoting_draws_give_a_and_b_the_spread_the_paper_reports():
    drawn = law_samples(REFERENCE_LAW, REFERENCE_STDERR, REFERENCE_PIVOT, samples=20000, seed=1)
    # The paper's standard errors: A 124.58, B 1293.23. The pivot is a stand-in for its (unpublished) bootstrap:
    # within a factor of two of each.
    assert 0.5 < np.std(drawn["A"]) / REFERENCE_STDERR["A"] < 2.0
    assert 0.5 < np.std(drawn["B"]) / REFERENCE_STDERR["B"] < 2.0
    # Every draw agrees with the fit at the centre of the data.
    assert drawn["A"] / REFERENCE_PIVOT["params"] ** drawn["alpha"] == pytest.approx(
        REFERENCE_LAW["A"] / REFERENCE_PIVOT["params"] ** REFERENCE_LAW["alpha"])


def test_the_same_seed_gives_the_same_range():
    assert compute_optimal(1e23) == compute_optimal(1e23)


def test_a_reference_familys_law_is_used_with_its_own_errors():
    law = {"E": 1.7, "A": 400.0, "alpha": 0.3, "B": 400.0, "beta": 0.3, "stderr": {"alpha": 0.01, "beta": 0.01},
           "pivot": {"params": 1e9, "tokens": 2e10}}
    out = compute_optimal(1e23, law)
    assert out["source"] == "reference family" and out["law"]["alpha"] == 0.3
    assert out["tokens_per_param"] == pytest.approx(1.0, rel=1e-9)  # equal terms: D* = N*
    assert out["stderr"]["alpha"] == 0.01 and "their standard errors" in out["uncertainty"]
    wider = compute_optimal(1e23, {**law, "stderr": {"alpha": 0.04, "beta": 0.04}})
    lo, hi = out["params_interval"]
    lo2, hi2 = wider["params_interval"]
    assert lo2 < lo and hi2 > hi


def test_a_family_law_without_errors_borrows_the_references_and_says_so():
    out = compute_optimal(1e23, {"E": 1.7, "A": 400.0, "alpha": 0.3, "B": 400.0, "beta": 0.3})
    assert out["stderr"]["alpha"] == REFERENCE_STDERR["alpha"]
    assert "the law gave none" in out["uncertainty"]

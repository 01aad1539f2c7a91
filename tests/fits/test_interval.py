"""fits.interval: the run-level bootstrap plus the corpus-learned method error, checked on synthetic families."""
import json

import numpy as np
import pytest

from fits.api import prediction_interval
from fits.interval import (
    SCALE_UP_POWER,
    Interval,
    bootstrap_predictions,
    fit_interval,
    method_error,
    run_offsets,
    scale_up_shape,
)
from fits.method import CURVES, DEFAULT_METHOD

from .conftest import synthetic_family, true_loss

TARGET_N, TARGET_D = 3.2e9, 6e10  # 4x the largest synthetic size


def _family(seed, run_noise=0.005):
    # Short curves (8 checkpoints) keep the 40-family coverage check fast.
    return synthetic_family(seed, tokens=np.geomspace(1e9, 2e10, 8), point_noise=0.003, run_noise=run_noise)


def test_the_interval_brackets_the_prediction_and_is_json_safe():
    out = prediction_interval(_family(0), [TARGET_N, TARGET_N], [TARGET_D / 2, TARGET_D], n_boot=20)
    assert np.all(out.lower < out.prediction) and np.all(out.prediction < out.upper)
    assert out.n_boot == 20 and out.coverage == 0.8
    assert json.loads(json.dumps(out.to_dict()))["upper"] == pytest.approx(out.upper.tolist())


def test_the_bootstrap_is_reproducible_with_its_seed():
    a = prediction_interval(_family(1), [TARGET_N], [TARGET_D], n_boot=15, seed=7)
    b = prediction_interval(_family(1), [TARGET_N], [TARGET_D], n_boot=15, seed=7)
    assert a.lower == pytest.approx(b.lower, rel=1e-12) and a.upper == pytest.approx(b.upper, rel=1e-12)


def test_higher_coverage_gives_a_wider_interval():
    fam = _family(2)
    narrow = prediction_interval(fam, [TARGET_N], [TARGET_D], coverage=0.5, n_boot=15)
    wide = prediction_interval(fam, [TARGET_N], [TARGET_D], coverage=0.95, n_boot=15)
    assert wide.lower[0] < narrow.lower[0] and narrow.upper[0] < wide.upper[0]


def test_the_method_error_grows_with_the_scale_up():
    assert method_error(0.8, 1.0) < method_error(0.8, 4.0) < method_error(0.8, 100.0)


def test_without_the_method_error_only_the_bootstrap_remains():
    fam = _family(3)
    full = prediction_interval(fam, [TARGET_N], [TARGET_D], n_boot=15)
    boot = prediction_interval(fam, [TARGET_N], [TARGET_D], n_boot=15, include_method_error=False)
    assert boot.method_sd_log == 0.0
    assert full.lower[0] < boot.lower[0] and boot.upper[0] < full.upper[0]


@pytest.mark.parametrize("coverage", [0.0, 1.0, 1.5])
def test_it_rejects_a_coverage_outside_zero_and_one(coverage):
    with pytest.raises(ValueError, match="coverage must be between 0 and 1"):
        prediction_interval(_family(4), [TARGET_N], [TARGET_D], coverage=coverage)


def _coverage(n_families, include_method_error, method=DEFAULT_METHOD):
    """Share of seeded synthetic families whose 80% interval holds the target's true loss.

    Each run carries its own offset (run-level noise, as seeds do) on top of
    checkpoint noise; the target is a run too, so its true loss carries one.
    """
    hits = []
    for seed in range(n_families):
        out = prediction_interval(_family(seed), [TARGET_N], [TARGET_D], coverage=0.8, n_boot=20, seed=seed,
                                  include_method_error=include_method_error, method=method)
        truth = true_loss(TARGET_N, TARGET_D) * np.exp(np.random.default_rng(10_000 + seed).normal(0.0, 0.005))
        hits.append(out.lower[0] <= truth <= out.upper[0])
    return float(np.mean(hits))


@pytest.mark.slow
def test_with_the_method_error_80_percent_intervals_are_conservative_where_the_law_is_exact():
    # The corpus-learned method error covers misfit that synthetic data from the
    # exact law does not have, so here it can only widen: at least nominal.
    assert _coverage(40, include_method_error=True) >= 0.8


@pytest.mark.slow
def test_the_statistical_interval_alone_covers_near_nominal_when_the_law_is_exact():
    # Measured 80-90% across run noise 0-2% and checkpoint noise 0.3-1% (bench figures in the README).
    # The bootstrap is checked with the curves method, which fits the exact law here. The default method
    # (AutoMethod) picks a size-only law on most of these families and misses the target by ~6%, which no
    # statistical interval should cover: see test_method's xfailed
    # test_the_default_method_extrapolates_an_exact_law_in_tokens_too.
    assert 0.7 <= _coverage(40, include_method_error=False, method=CURVES) <= 0.95


# --- the pieces ----------------------------------------------------------------------


def test_run_offsets_split_residuals_into_run_means_and_the_rest():
    runs = np.array(["a", "a", "b", "b", "c", "c", "d", "d", "e", "e"])
    resid = np.array([0.01, 0.03, -0.02, -0.02, 0.0, 0.0, 0.01, 0.01, -0.01, -0.01])
    weight = np.array([1.0, 3.0, 1, 1, 1, 1, 1, 1, 1, 1])
    inverse, n_runs, within, sd, dof = run_offsets(runs, weight, resid)
    offsets = np.array([0.025, -0.02, 0.0, 0.01, -0.01])  # a's mean weighted 1:3
    assert n_runs == 5 and inverse.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    np.testing.assert_allclose(within, resid - offsets[inverse])
    # Five runs, about three offsets absorbed by the fit's size part: 2 degrees of freedom.
    assert dof == 2 and sd == pytest.approx(np.sqrt(np.sum(offsets**2) / 2))
    assert run_offsets(np.zeros(3), np.ones(3), np.array([0.1, 0.2, 0.3]))[3] == 0.0  # one run: no spread


def test_the_scale_up_shape_is_one_at_the_largest_trained_size_and_grows_slowly():
    np.testing.assert_allclose(scale_up_shape([0.5, 1.0]), [1.0, 1.0])  # no shrinking below the trained sizes
    assert scale_up_shape(np.e) == pytest.approx(2.0**SCALE_UP_POWER)
    assert method_error(0.8, 4.0) == pytest.approx(method_error(0.8, 1.0) * scale_up_shape(4.0))


def test_bootstrap_replicates_refit_the_law_the_fit_was_made_with():
    fit = CURVES.fit(_family(5))
    boots, run_sd, dof = bootstrap_predictions(fit, np.array([TARGET_N, TARGET_N]), np.array([TARGET_D / 2, TARGET_D]),
                                               n_boot=12, seed=3)
    assert boots.shape == (12, 2) and np.all(np.isfinite(boots)) and run_sd > 0 and dof == 2
    center = fit.predict([TARGET_N, TARGET_N], [TARGET_D / 2, TARGET_D], run_tokens=[TARGET_D / 2, TARGET_D])
    # Replicates scatter around the fit's prediction, by about the run-to-run sd.
    assert np.median(boots, axis=0) == pytest.approx(center, rel=0.02)
    again, _, _ = bootstrap_predictions(fit, np.array([TARGET_N, TARGET_N]), np.array([TARGET_D / 2, TARGET_D]),
                                        n_boot=12, seed=3)
    np.testing.assert_array_equal(again, boots)


def test_fit_interval_is_fit_dot_interval_and_prediction_interval_fits_first():
    fam = _family(6)
    fit = CURVES.fit(fam)
    a = fit_interval(fit, [TARGET_N], [TARGET_D], n_boot=10, seed=1)
    b = fit.interval([TARGET_N], [TARGET_D], n_boot=10, seed=1)
    c = prediction_interval(fam, [TARGET_N], [TARGET_D], n_boot=10, seed=1, method=CURVES)
    for other in (b, c):
        np.testing.assert_array_equal(a.lower, other.lower)
        np.testing.assert_array_equal(a.upper, other.upper)
    assert isinstance(a, Interval) and a.run_sd_log > 0 and a.method_sd_log > 0

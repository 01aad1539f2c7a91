"""fits.interval: the run-level bootstrap plus the corpus-learned method error, checked on synthetic families."""
import json

import numpy as np
import pytest

from fits.api import prediction_interval
from fits.interval import method_error

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


def _coverage(n_families, include_method_error):
    """Share of seeded synthetic families whose 80% interval holds the target's true loss.

    Each run carries its own offset (run-level noise, as seeds do) on top of
    checkpoint noise; the target is a run too, so its true loss carries one.
    """
    hits = []
    for seed in range(n_families):
        out = prediction_interval(_family(seed), [TARGET_N], [TARGET_D], coverage=0.8, n_boot=20, seed=seed,
                                  include_method_error=include_method_error)
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
    assert 0.7 <= _coverage(40, include_method_error=False) <= 0.95

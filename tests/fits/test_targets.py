"""fits.targets: checked target arrays, and each target's run length by the contract's default."""
import numpy as np
import pytest

from fits.targets import (
    TARGET_FRACTION,
    default_run_tokens,
    resolve_target_run_tokens,
    targets,
)
from fits.trainset import FitInputError


def test_targets_broadcast_and_are_checked():
    n, d = targets(1e9, [1e10, 2e10])
    np.testing.assert_array_equal(n, [1e9, 1e9])
    assert d.dtype == float
    for bad, name in (((0.0, 1e10), "target_params"), ((1e9, np.inf), "target_tokens"),
                      ((-1e9, 1e10), "target_params")):
        with pytest.raises(FitInputError, match=f"{name} must be positive and finite"):
            targets(*bad)


def test_targets_of_one_size_are_one_run_ending_at_the_largest_tokens_asked():
    n = np.array([[1e9, 1e9], [2e9, 1e9]])
    d = np.array([[1e10, 3e10], [5e9, 2e10]])
    np.testing.assert_array_equal(default_run_tokens(n, d), [[3e10, 3e10], [5e9, 3e10]])
    assert default_run_tokens(1e9, 4e10) == 4e10


def test_given_run_tokens_are_checked_against_the_targets():
    n, d = np.array([1e9, 1e9]), np.array([1e10, 3e10])
    np.testing.assert_array_equal(resolve_target_run_tokens(n, d), [3e10, 3e10])
    np.testing.assert_array_equal(resolve_target_run_tokens(n, d, 5e10), [5e10, 5e10])
    with pytest.raises(FitInputError, match="at least each target's tokens"):
        resolve_target_run_tokens(n, d, [2e10, 2e10])
    with pytest.raises(FitInputError, match="must be finite"):
        resolve_target_run_tokens(n, d, [np.nan, 5e10])


def test_the_target_window_is_the_last_30_percent_of_training():
    assert TARGET_FRACTION == 0.7

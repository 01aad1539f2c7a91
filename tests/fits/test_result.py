"""fits.result and fits.jsonsafe: a fit as strict, versioned JSON that rebuilds into a law."""
import json
import math

import numpy as np
import pytest

from fits.fitting import fit_law
from fits.jsonsafe import json_safe
from fits.result import RESULT_VERSION, FitResult

from .conftest import synthetic_family


def strict(value):
    return json.loads(json.dumps(value, allow_nan=False))


@pytest.fixture(scope="module")
def result():
    frame = synthetic_family(seed=3)
    return fit_law(frame["params"], frame["tokens"], frame["value"])


def test_json_safe_unwraps_numpy_and_makes_non_finite_floats_null():
    value = {1: np.float64(1.5), "a": np.array([1, 2]), "b": (np.int64(3), np.bool_(True)), "nan": float("nan"),
             "inf": np.float32(np.inf), "nested": [{"x": -np.inf}], "text": "ok", "none": None}
    out = json_safe(value)
    assert out == {"1": 1.5, "a": [1, 2], "b": [3, True], "nan": None, "inf": None, "nested": [{"x": None}],
                   "text": "ok", "none": None}
    assert type(out["a"][0]) is int and type(out["b"][1]) is bool


def test_to_dict_is_strict_json_even_when_a_statistic_is_not_a_number(result):
    broken = FitResult(**{**result.__dict__, "stats": {**result.stats, "rmse_log": float("nan")},
                          "stderr": {k: float("inf") for k in result.stderr}})
    out = strict(broken.to_dict())  # NaN and inf become null, as PostgreSQL's jsonb requires
    assert out["stats"]["rmse_log"] is None and set(out["stderr"].values()) == {None}
    assert out["version"] == RESULT_VERSION == 2


def test_from_dict_rebuilds_a_law_that_predicts_the_same(result):
    again = FitResult.from_dict(strict(result.to_dict()))
    n, d = np.array([1e9, 8e9]), np.array([2e10, 1.6e11])
    np.testing.assert_allclose(again.predict(n, d), result.predict(n, d), rtol=1e-12)
    assert again.params == pytest.approx(result.params, rel=1e-12)


def test_from_dict_reads_version_1_and_refuses_others(result):
    data = strict(result.to_dict())
    assert FitResult.from_dict(data | {"version": 1}).params == pytest.approx(result.params)
    with pytest.raises(ValueError, match="version 3 is not one this library reads"):
        FitResult.from_dict(data | {"version": 3})

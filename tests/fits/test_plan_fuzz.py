"""Fuzzing fits.plan's input validation (hypothesis, derandomized, bounded examples).

Property: for any request - numbers or not, NaN, inf, negative, huge, tiny, missing
fields - PlanRequest.resolved() and recommend() either give a plan of finite,
JSON-safe numbers within the request's bounds, or raise PlanInputError naming one
of the request's fields with a reason. Nothing else escapes.
"""
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fits.errormodel import fit_error_model
from fits.plan import PlanInputError, PlanRequest, recommend

from .test_errormodel import synthetic_sweep

pytestmark = pytest.mark.fuzz

FIELDS = ("target_params", "target_tokens", "target_compute", "budget_flops", "budget_fraction", "min_size",
          "max_size", "max_models", "max_epochs")
FUZZ = settings(max_examples=300, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])

def log_uniform(lo, hi):
    return st.floats(min_value=math.log10(lo), max_value=math.log10(hi)).map(lambda e: float(f"{10 ** e:.4g}"))


odd_numbers = st.sampled_from([0.0, -1.0, -7e9, math.nan, math.inf, -math.inf, 1e308, 5e-324, 1e-300, 1e300,
                               2.0 ** 63, 0.5, 1.0, 20.0, 21.0, 2.5, 1.7976931348623157e308])
not_numbers = st.one_of(st.none(), st.booleans(), st.text(max_size=8), st.sampled_from(["7e9", "nan", "1e400", ""]),
                        st.lists(st.integers(), max_size=2), st.integers(min_value=-2**70, max_value=2**70))
anything = st.one_of(odd_numbers, not_numbers, st.floats())


@st.composite
def requests(draw):
    """A plausible request (a 1e8-1e12 target, 5-100 tokens per parameter, a budget), then 0-3 fields broken."""
    n = draw(log_uniform(1e8, 1e12))
    kwargs = {"target_params": n}
    if draw(st.booleans()):
        kwargs["target_tokens"] = n * draw(log_uniform(5, 100))
    else:
        kwargs["target_compute"] = 6 * n * n * draw(log_uniform(5, 100))
    if draw(st.booleans()):
        kwargs["budget_fraction"] = draw(log_uniform(1e-4, 1))
    else:
        kwargs["budget_flops"] = 6 * n * n * draw(log_uniform(1e-4, 1)) * 20
    if draw(st.booleans()):
        kwargs["min_size"] = n * draw(log_uniform(1e-5, 0.1))
    if draw(st.booleans()):
        kwargs["max_size"] = n * draw(log_uniform(1e-3, 1.2))
    if draw(st.booleans()):
        kwargs["max_models"] = draw(st.integers(min_value=1, max_value=20))
    if draw(st.booleans()):
        kwargs["max_epochs"] = draw(st.one_of(st.just(1.0), log_uniform(1, 50)))
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        if draw(st.integers(0, 4)) == 0 and name != "target_params":  # required by the dataclass itself
            kwargs.pop(name, None)  # a field left out
        else:
            kwargs[name] = draw(anything)
    return kwargs


@pytest.fixture(scope="module")
def model():
    return fit_error_model(synthetic_sweep())


def _finite_numbers(value):
    if isinstance(value, dict):
        return all(_finite_numbers(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite_numbers(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return True


@FUZZ
@given(kwargs=requests())
def test_any_request_gives_a_plan_or_names_the_field_at_fault(model, kwargs):
    request = PlanRequest(**kwargs)
    try:
        plan = recommend(model, request).to_dict()
    except PlanInputError as exc:
        assert exc.field in FIELDS, exc
        assert isinstance(exc.reason, str) and exc.reason.strip()
        assert str(exc).startswith(f"{exc.field}: ")
        return
    json.dumps(plan, allow_nan=False)  # what a job row stores (expected ARE bounds may be None: unbounded)
    assert _finite_numbers({k: v for k, v in plan.items() if k != "expected_are"})
    r = request.resolved()
    assert plan["models"] and len(plan["models"]) <= int(kwargs.get("max_models", 8))
    for m in plan["models"]:
        assert r["lo"] * (1 - 1e-9) <= m["params"] <= r["hi"] * (1 + 1e-9) and m["params"] < r["n_t"]
        assert m["tokens"] > 0 and m["flops"] == pytest.approx(6 * m["params"] * m["tokens"])
    assert sum(m["flops"] for m in plan["models"]) <= r["budget"] * (1 + 1e-6)

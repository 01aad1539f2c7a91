"""Fuzzing plan inputs end to end: the API's serializer, the form, the service and the worker's runner.

Property: any JSON body to POST /api/v1/plans/ is either a 202 whose job the
runner turns into a JSON-safe plan, or a 400 naming the fields at fault with a
message each, and then no row of any table has changed. The plan form answers
the same way for people: a redirect, or the form again with errors under the
fields (status 200, as Django's forms answer; a 4xx page would be a browser
console error), and no row changed. Derandomized, bounded.
"""
import json
import math

import pytest
from django.apps import apps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.throttling import ScopedRateThrottle

from planner.models import Job
from planner.jobs.services import JobFailure
from planner.plans.services import REQUEST_FIELDS, plan_run
from tests.fits.test_plan_fuzz import requests
from tests.planner.plans.test_plans import error_model  # noqa: F401 (fixture)

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

FUZZ = settings(max_examples=120, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                         st.text(max_size=10))
extra_keys = st.dictionaries(st.text(max_size=12), json_scalars, max_size=2)


def _jsonable(value):
    """What a JSON client can send: NaN/inf are not JSON, so they travel as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@st.composite
def bodies(draw):
    body = {k: _jsonable(v) for k, v in draw(requests()).items()}
    body.update(draw(extra_keys))  # unknown keys are refused, each named (a typo'd optional key does nothing)
    return body


def table_counts():
    return {model._meta.db_table: model.objects.count() for model in apps.get_models()}


@pytest.fixture
def world(error_model, monkeypatch):  # noqa: F811
    from planner.jobs import services as jobs

    monkeypatch.setattr(jobs, "_enqueue", lambda job_id: None)
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES",
                        {scope: "100000/hour" for scope in ScopedRateThrottle.THROTTLE_RATES})


def _check_error_details(details, fields):
    assert details, "a 400 must say what is wrong"
    for field, messages in details.items():
        assert field in fields or field == "non_field_errors", field
        assert messages and all(isinstance(m, str) and m.strip() for m in messages), (field, messages)


@FUZZ
@given(body=bodies())
def test_any_plan_body_is_accepted_and_planned_or_refused_naming_the_field(world, client_for, owner, body):
    before = table_counts()
    response = client_for(owner).post("/api/v1/plans/", body, format="json")
    assert response.status_code in (202, 400), (response.status_code, response.content)
    if response.status_code == 400:
        error = response.json()["error"]
        assert error["code"] == "invalid"
        unknown = tuple(set(body) - set(REQUEST_FIELDS))
        _check_error_details(error["details"], REQUEST_FIELDS + unknown)
        assert set(unknown) <= set(error["details"]), (unknown, error)
        assert table_counts() == before
        return
    assert set(body) <= set(REQUEST_FIELDS)
    job = Job.objects.get(pk=response.json()["id"])
    assert table_counts() == {**before, Job._meta.db_table: before[Job._meta.db_table] + 1}
    try:
        result = plan_run(job=job, progress=lambda *a: None)
    except JobFailure as exc:  # accepted, then impossible for this error model: the job says why
        assert exc.details["field"] in REQUEST_FIELDS and exc.details["reason"]
        return
    json.dumps(result, allow_nan=False)  # storable on the job row (jsonb refuses NaN)
    assert result["models"]


def _as_form(body):
    return {k: "" if v is None else str(v) for k, v in body.items() if k in REQUEST_FIELDS and k != "max_epochs"}


@FUZZ
@given(body=bodies())
def test_the_plan_form_redirects_or_shows_errors_under_the_fields(world, client, owner, body):
    client.force_login(owner)
    before = table_counts()
    response = client.post("/plans/new", _as_form(body))
    # 429 (throttled) and 503 (broker down) are the form's other answers, tested in test_throttling and
    # test_jobs; here the throttle is lifted and nothing is enqueued, so a request plans or names its fields.
    assert response.status_code in (302, 200), response.status_code
    if response.status_code == 200:
        errors = {k: list(v) for k, v in response.context["form"].errors.items()}
        _check_error_details(errors, REQUEST_FIELDS + ("__all__",))  # "__all__": shown above the fields
        assert table_counts() == before

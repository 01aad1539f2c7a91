"""Per-user limits on creating plans and predictions: API POSTs and HTML forms share one count.

The rates come from SCALEPLAN_PLAN_RATE / SCALEPLAN_PREDICTION_RATE; here they are
patched low, as DRF reads them once at import.
"""
import pytest
from rest_framework.throttling import ScopedRateThrottle

from planner.models import Job
from tests.planner.test_api_errors import assert_error
from tests.planner.plans.test_plans import REQUEST as PLAN_REQUEST
from tests.planner.plans.test_plans import error_model  # noqa: F401 (fixture)
from tests.planner.test_settings import setting_values

pytestmark = pytest.mark.django_db

RUNS = [{"model": f"m-{n}", "params": n * 1e6, "tokens": t, "value": 2.0 + 300 / n ** 0.3 + 200 / (t / 1e9) ** 0.3}
        for n in (20, 60, 200) for t in (2e9, 1e10)]
PREDICTION = {"runs": RUNS, "target_params": 1e9, "target_tokens": 2e10}
PREDICTION_FORM = {
    "csv_text": "family,model,arch,params,tokens,step,seed,dataset,epochs,flops,metric,value,split,source\n" + "".join(
        f"mine,{r['model']},dec,{int(r['params'])},{r['tokens']},,,,,,val_loss,{r['value']},validation,\n" for r in RUNS),
    "target_params": "1e9", "target_tokens": "2e10", "coverage": "0.8",
}
PLAN_FORM = {"target_params": "7e9", "target_tokens": "1.4e11", "budget_fraction": "0.05", "max_models": "6"}


@pytest.fixture
def low_rates(monkeypatch):
    from planner.jobs import services as jobs

    monkeypatch.setattr(jobs, "_enqueue", lambda job_id: None)
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES",
                        {**ScopedRateThrottle.THROTTLE_RATES, "plans": "2/hour", "predictions": "2/hour"})


def assert_throttled(response):
    error = assert_error(response, 429, "throttled")
    retry = int(response["Retry-After"])
    assert 0 < retry <= 3600
    assert error["details"]["retry_after_seconds"] == pytest.approx(retry, abs=1)
    assert "Expected available in" in error["message"]


def test_plans_over_the_rate_get_429_with_retry_after(client_for, owner, error_model, low_rates):  # noqa: F811
    client = client_for(owner)
    assert [client.post("/api/v1/plans/", PLAN_REQUEST, format="json").status_code for _ in range(2)] == [202, 202]
    assert_throttled(client.post("/api/v1/plans/", PLAN_REQUEST, format="json"))
    assert Job.objects.count() == 2
    assert client.get("/api/v1/plans/").status_code == 200  # reading is never throttled


def test_the_limit_is_per_user(client_for, owner, stranger, error_model, low_rates):  # noqa: F811
    for _ in range(2):
        client_for(owner).post("/api/v1/plans/", PLAN_REQUEST, format="json")
    assert client_for(stranger).post("/api/v1/plans/", PLAN_REQUEST, format="json").status_code == 202


def test_predictions_over_the_rate_get_429(client_for, owner, low_rates):
    client = client_for(owner)
    assert [client.post("/api/v1/predictions/", PREDICTION, format="json").status_code for _ in range(2)] == [202, 202]
    assert_throttled(client.post("/api/v1/predictions/", PREDICTION, format="json"))


def test_invalid_requests_count_too(client_for, owner, low_rates):
    # Validation is the expensive part of a bad 50,000-row body: it is what the limit protects.
    client = client_for(owner)
    assert [client.post("/api/v1/predictions/", {}, format="json").status_code for _ in range(2)] == [400, 400]
    assert client.post("/api/v1/predictions/", PREDICTION, format="json").status_code == 429


def test_the_plan_form_shares_the_apis_count_and_says_why(client, client_for, owner, error_model,  # noqa: F811
                                                          low_rates):
    client_for(owner).post("/api/v1/plans/", PLAN_REQUEST, format="json")
    client.force_login(owner)
    assert client.post("/plans/new", PLAN_FORM).status_code == 302  # the second of two
    response = client.post("/plans/new", PLAN_FORM)
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    html = response.content.decode()
    assert "Too many requests: at most 2/hour per user for plans." in html and "Try again in" in html
    assert 'value="7e9"' in html or 'value="7000000000.0"' in html  # the form keeps what was typed
    assert Job.objects.count() == 2
    assert client.get("/plans/new").status_code == 200


def test_the_prediction_form_is_throttled_with_the_api(client, client_for, owner, low_rates):
    client.force_login(owner)
    assert client.post("/predictions/new", PREDICTION_FORM).status_code == 302
    assert client_for(owner).post("/api/v1/predictions/", PREDICTION, format="json").status_code == 202
    response = client.post("/predictions/new", PREDICTION_FORM)
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert "at most 2/hour per user for predictions" in response.content.decode()


@pytest.mark.subprocess
def test_the_rates_come_from_the_environment_with_sensible_defaults(tmp_path):
    rates = setting_values(tmp_path, ["REST_FRAMEWORK"])["REST_FRAMEWORK"]["DEFAULT_THROTTLE_RATES"]
    assert rates == {"uploads": "60/hour", "plans": "300/hour", "predictions": "120/hour"}
    rates = setting_values(tmp_path, ["REST_FRAMEWORK"], SCALEPLAN_PLAN_RATE="5/minute",
                           SCALEPLAN_PREDICTION_RATE="1000/day")["REST_FRAMEWORK"]["DEFAULT_THROTTLE_RATES"]
    assert (rates["plans"], rates["predictions"]) == ("5/minute", "1000/day")


@pytest.mark.subprocess
def test_counts_live_in_a_cache_every_web_process_shares(tmp_path):
    caches = setting_values(tmp_path, ["CACHES"])["CACHES"]
    assert caches["throttle"]["BACKEND"] == "django.core.cache.backends.filebased.FileBasedCache"
    assert caches["throttle"]["LOCATION"] == str(tmp_path / "data" / "throttle")


def _hammer(throttle_cache, *, threads, attempts, rate):
    """`threads` clients of one user, `attempts` each, at once: how many the throttle let through."""
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    from planner.api.throttling import CreationRateThrottle

    class Throttle(CreationRateThrottle):
        cache = throttle_cache
        THROTTLE_RATES = {"plans": rate}

    user = SimpleNamespace(is_authenticated=True, pk=4242)
    request = SimpleNamespace(method="POST", user=user, META={"REMOTE_ADDR": "127.0.0.1"})
    view = SimpleNamespace(throttle_scope="plans")

    def client(_):
        return sum(Throttle().allow_request(request, view) for _ in range(attempts))

    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(client, range(threads)))


@pytest.mark.parametrize("threads, attempts", [(2, 200), (8, 50)])
def test_the_count_is_atomic_in_redis_under_concurrent_clients(threads, attempts, settings):
    # Issue 11 #5: DRF's read-modify-write let 308 plans through a limit of 300 with 2 clients, 305 with 8.
    import uuid

    from django.core.cache.backends.redis import RedisCache

    from tests.conftest import _require

    url = settings.REDIS_URL or ""
    _require(url.startswith("redis"), "needs Redis: set REDIS_URL")
    cache = RedisCache(url, {"KEY_PREFIX": f"throttle-test-{uuid.uuid4().hex}"})
    try:
        assert _hammer(cache, threads=threads, attempts=attempts, rate="300/hour") == 300
    finally:
        client = cache._cache.get_client(write=True)
        for key in client.scan_iter(f"{cache.key_prefix}*"):  # leave the Redis database as found
            client.delete(key)


def test_the_count_is_atomic_within_a_process_without_redis():
    from django.core.cache.backends.locmem import LocMemCache

    cache = LocMemCache("throttle-atomic", {})
    assert _hammer(cache, threads=8, attempts=50, rate="300/hour") == 300


@pytest.mark.subprocess
def test_with_redis_configured_the_throttle_counts_live_in_redis():
    import os
    import subprocess
    import sys

    code = ("import django; django.setup(); from django.conf import settings; "
            "print(settings.CACHES['throttle']['BACKEND'])")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "planner.settings", "REDIS_URL": "redis://127.0.0.1:6379/9"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("django.core.cache.backends.redis.RedisCache")
    env.pop("REDIS_URL")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("django.core.cache.backends.filebased.FileBasedCache")

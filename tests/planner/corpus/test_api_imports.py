"""Corpus import through the API: staff only, multipart, size limit, header check, 202 + job."""
import gzip
import time

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.throttling import ScopedRateThrottle

from planner.models import Family, Job, Observation
from tests.conftest import SMALL_CORPUS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    cache.clear()
    yield
    cache.clear()


def upload(text=SMALL_CORPUS, name="corpus.csv", gz=False):
    data = text.encode()
    if gz:
        data = gzip.compress(data)
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def post(client, **data):
    return client.post("/api/v1/imports/", data, format="multipart")


def test_staff_upload_answers_202_with_a_queued_import_job(client_for, staff, settings):
    response = post(client_for(staff), file=upload(gz=True, name="c.csv.gz"), skip_invalid="true")
    assert response.status_code == 202, response.content
    body = response.json()
    assert response["Location"] == body["url"]
    assert type(response.headers["Location"]) is str  # WSGI servers accept nothing else
    assert (body["kind"], body["status"]) == ("corpus_import", "queued")
    assert body["input"] == {"filename": "c.csv.gz", "size": len(gzip.compress(SMALL_CORPUS.encode())),
                             "skip_invalid": True, "replace": False}
    stored = Job.objects.get(pk=body["id"]).input["path"]
    assert stored.startswith(str(settings.DATA_DIR / "uploads")) and stored.endswith(".csv.gz")
    assert gzip.decompress(open(stored, "rb").read()).decode() == SMALL_CORPUS


def test_it_requires_a_token(client_for):
    response = post(client_for(None), file=upload())
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"


def test_it_is_for_staff_only(client_for, owner):
    response = post(client_for(owner), file=upload())
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "permission_denied", "message": "Only staff users may import corpus files.", "details": {}
    }
    assert not Job.objects.exists()


def test_it_rejects_json_bodies_with_415(client_for, staff):
    response = client_for(staff).post("/api/v1/imports/", {"file": "a,b"}, format="json")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_it_rejects_a_missing_file(client_for, staff):
    response = post(client_for(staff), replace="true")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"file": ["No file was submitted."]}


def test_it_rejects_other_file_types(client_for, staff):
    response = post(client_for(staff), file=upload(name="corpus.xlsx"))
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"file": ["Expected a .csv or .csv.gz file."]}


def test_it_rejects_a_file_over_the_size_limit_with_413(client_for, staff, settings):
    settings.SCALEPLAN_MAX_UPLOAD_BYTES = 100
    response = post(client_for(staff), file=upload())
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    # Refused while streaming (planner.corpus.uploads), so its full size is never read.
    assert "the upload limit of 100 bytes" in error["message"]
    assert not Job.objects.exists()
    assert not list(settings.DATA_DIR.rglob("*.csv"))


def test_it_refuses_an_oversized_request_before_reading_it(client_for, staff, settings):
    settings.SCALEPLAN_MAX_UPLOAD_BYTES = 1000
    response = post(client_for(staff), file=upload(SMALL_CORPUS * 2000))
    assert response.status_code == 413
    assert "The request is" in response.json()["error"]["message"]


def test_a_wrong_header_is_rejected_at_once_with_line_column_and_reason(client_for, staff):
    bad = SMALL_CORPUS.replace("family,model,", "famly,model,", 1)
    response = post(client_for(staff), file=upload(bad, gz=True, name="bad.csv.gz"))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["message"].startswith("corpus file rejected: 2 problem(s)")
    problems = error["details"]["problems"]
    assert {"line": 1, "column": "famly", "reason": problems[0]["reason"]} in problems
    assert {"line": 1, "column": "family", "reason": "missing column"} in problems
    assert not Job.objects.exists()


def test_a_corrupt_gzip_upload_is_rejected(client_for, staff):
    response = post(client_for(staff), file=SimpleUploadedFile("x.csv.gz", b"\x1f\x8b" + b"garbage" * 10))
    assert response.status_code == 400
    assert "corrupt gzip" in response.json()["error"]["details"]["problems"][0]["reason"]


def test_uploads_are_throttled_with_429(client_for, staff, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"uploads": "2/hour"})
    client = client_for(staff)
    assert [post(client, file=upload()).status_code for _ in range(2)] == [202, 202]
    response = post(client, file=upload())
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "throttled" and error["details"]["retry_after_seconds"] > 0


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_uploaded_file_is_imported_by_a_real_worker_and_reported(celery_worker_process, client_for, staff):
    client = client_for(staff)
    response = post(client, file=upload(gz=True, name="small.csv.gz"))
    assert response.status_code == 202
    url = response["Location"]
    deadline = time.monotonic() + 30
    while (body := client.get(url).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, celery_worker_process.log()
        time.sleep(0.2)
    assert body["status"] == "succeeded", (body, celery_worker_process.log())
    assert body["progress"] == 1.0
    assert body["result"]["import"]["rows_inserted"] == 8
    assert body["result"]["import"]["families_created"] == 2
    assert Observation.objects.count() == 8
    assert Family.objects.get(name="tiny").stats["n_runs"] == 3
    # Re-importing the same file changes nothing.
    again = client.get(post(client, file=upload(gz=True, name="small.csv.gz"))["Location"]).json()
    deadline = time.monotonic() + 30
    while (again := client.get(again["url"]).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert again["result"]["import"]["rows_inserted"] == 0
    assert again["result"]["import"]["rows_unchanged"] == 8


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_invalid_upload_fails_its_job_with_the_problems_in_the_result(celery_worker_process, client_for, staff):
    client = client_for(staff)
    bad = SMALL_CORPUS.replace("tiny-10m,dec,10000000,2e9", "tiny-10m,dec,10000000,0")
    url = post(client, file=upload(bad))["Location"]
    deadline = time.monotonic() + 30
    while (body := client.get(url).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, celery_worker_process.log()
        time.sleep(0.2)
    assert body["status"] == "failed"
    assert "line 3" in body["error"]
    assert [(p["line"], p["column"]) for p in body["result"]["problems"]] == [(3, "tokens")]
    assert not Observation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_broker_answers_503_and_leaves_no_upload_behind(client_for, staff, settings,
                                                                       unreachable_broker):
    response = post(client_for(staff), file=upload())
    assert response.status_code == 503
    assert "import was not started" in response.json()["error"]["message"]
    assert not Job.objects.exists()
    assert not list(settings.DATA_DIR.rglob("*.csv"))

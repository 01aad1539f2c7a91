"""Upload size limit, row limit and compressed bombs: refused early, clearly, in bounded memory.

SCALEPLAN_MAX_UPLOAD_BYTES is enforced before a body is read (Content-Length) and
while it streams (the upload handler); SCALEPLAN_MAX_DECOMPRESSED_BYTES and
SCALEPLAN_MAX_IMPORT_ROWS by the reader, before any row is validated.
"""
import gzip
import resource
import time
import tracemalloc

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from fits.canonical import CorpusTooLarge, read_canonical
from planner.models import Job
from planner.corpus.services import corpus_import_run
from planner.jobs.services import JobFailure
from tests.conftest import SMALL_CORPUS

pytestmark = pytest.mark.django_db

HEADER = SMALL_CORPUS.splitlines()[0] + "\n"
PREDICTION = {"target_params": "1e10", "target_tokens": "1e11"}


def write_bomb(path, *, gigabytes=1, header=True):
    """A gzip file that decompresses to ~`gigabytes` GiB of zeros, written member by member (~1 MB on disk).

    One 16 MiB member is compressed once and written 64 times per GiB, so neither the
    bomb nor its decompressed form is ever held in memory.
    """
    member = gzip.compress(bytes(16 << 20), compresslevel=9)
    with open(path, "wb") as out:
        if header:
            out.write(gzip.compress(HEADER.encode()))
        for _ in range(64 * gigabytes):
            out.write(member)
    return path


def max_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


@pytest.fixture
def bomb(tmp_path):
    return write_bomb(tmp_path / "bomb.csv.gz")


def test_a_gzip_bomb_is_refused_quickly_in_bounded_memory(bomb, settings):
    assert bomb.stat().st_size < 2 << 20  # ~1 MB that would be 1 GiB
    rss_before = max_rss_mb()
    tracemalloc.start()
    started = time.monotonic()
    with pytest.raises(CorpusTooLarge) as refused:
        read_canonical(bomb, max_bytes=settings.SCALEPLAN_MAX_DECOMPRESSED_BYTES)
    seconds = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    problem = refused.value.problems[0]
    assert (problem.line, problem.column) == (0, "")
    assert f"decompresses to more than {settings.SCALEPLAN_MAX_DECOMPRESSED_BYTES} bytes" in problem.reason
    assert seconds < 15
    # The decompressed data is counted and dropped chunk by chunk: a few MB, not the 256 MiB limit.
    assert peak < 16 << 20, f"peak {peak / 2**20:.1f} MiB"
    assert max_rss_mb() - rss_before < 64


def test_the_reference_corpus_is_within_the_default_limits(settings):
    path = settings.SCALEPLAN_SHARED_DIR / "corpus" / "colpret.csv.gz"
    if not path.is_file():
        pytest.skip(f"{path} is not there")
    frame, _ = read_canonical(path, max_bytes=settings.SCALEPLAN_MAX_DECOMPRESSED_BYTES,
                              max_rows=settings.SCALEPLAN_MAX_IMPORT_ROWS)
    assert len(frame) * 4 < settings.SCALEPLAN_MAX_IMPORT_ROWS  # headroom for several corpora this size


def test_a_file_over_the_row_limit_is_refused_before_validation(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text(HEADER + "not,even,valid\n" * 11)
    with pytest.raises(CorpusTooLarge, match=r"has more than 10 data rows \(blank lines count\); the limit for one file is 10"):
        read_canonical(path, max_rows=10)
    ok = tmp_path / "ok.csv"
    ok.write_text(SMALL_CORPUS)
    assert len(read_canonical(ok, max_rows=8)[0]) == 8


@pytest.mark.parametrize("magic, name", [(b"PK\x03\x04", "zip"), (b"BZh91AY", "bzip2"), (b"\xfd7zXZ\x00", "xz")])
def test_other_compressions_are_refused_by_name(tmp_path, magic, name):
    path = tmp_path / "x.csv"
    path.write_bytes(magic + b"\x00" * 100)
    with pytest.raises(ValueError, match=f"is {name}-compressed; only plain CSV or gzip"):
        read_canonical(path)


# --- through the API and the pages ---------------------------------------------------------------


def _upload(data, name="corpus.csv.gz"):
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def test_a_bomb_uploaded_for_import_fails_its_job_with_the_reason(client_for, staff, bomb):
    response = client_for(staff).post("/api/v1/imports/", {"file": _upload(bomb.read_bytes())}, format="multipart")
    assert response.status_code == 202, response.content  # its header line is fine
    job = Job.objects.get(pk=response.json()["id"])
    with pytest.raises(JobFailure, match="decompresses to more than"):
        corpus_import_run(job=job, progress=lambda *a: None)


def test_a_file_over_the_row_limit_uploaded_for_import_fails_its_job(client_for, staff, settings):
    settings.SCALEPLAN_MAX_IMPORT_ROWS = 5
    response = client_for(staff).post("/api/v1/imports/", {"file": _upload(SMALL_CORPUS.encode(), "c.csv")},
                                      format="multipart")
    job = Job.objects.get(pk=response.json()["id"])
    with pytest.raises(JobFailure, match=r"has more than 5 data rows \(blank lines count\); the limit for one file is 5") as failed:
        corpus_import_run(job=job, progress=lambda *a: None)
    assert [(p["line"], p["column"]) for p in failed.value.details["problems"]] == [(0, "")]


def test_a_bomb_uploaded_for_a_prediction_is_a_413(client_for, owner, bomb):
    response = client_for(owner).post("/api/v1/predictions/", {"file": _upload(bomb.read_bytes()), **PREDICTION},
                                      format="multipart")
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "payload_too_large" and "decompresses to more than" in error["message"]


def test_a_bomb_pasted_into_the_prediction_form_is_a_field_error(client, owner, bomb):
    client.force_login(owner)
    with open(bomb, "rb") as handle:
        response = client.post("/predictions/new", {"file": handle, "coverage": "0.8", **PREDICTION})
    assert response.status_code == 200 and not Job.objects.exists()
    assert "decompresses to more than" in response.content.decode()


def _oversized(client, url, **extra):
    """A POST that claims a 10 GB multipart body but carries none: reading it would fail the test client."""
    return client.generic("POST", url, b"", content_type="multipart/form-data; boundary=xx",
                          CONTENT_LENGTH=str(10 << 30), **extra)


def test_the_api_refuses_an_oversized_body_from_its_length_alone(client_for, owner, staff):
    for user, url in ((staff, "/api/v1/imports/"), (owner, "/api/v1/predictions/")):
        response = _oversized(client_for(user), url)
        assert response.status_code == 413, url
        error = response.json()["error"]
        assert error["code"] == "payload_too_large" and f"The request is {10 << 30} bytes" in error["message"]


@pytest.mark.parametrize("url, user", [("/predictions/new", "owner"), ("/admin/planner/job/import/", "staff")])
def test_the_pages_refuse_an_oversized_body_from_its_length_alone(client, request, url, user):
    client.force_login(request.getfixturevalue(user))
    response = _oversized(client, url)
    assert response.status_code == 413
    assert "Upload too large" in response.content.decode() and "the upload limit is" in response.content.decode()


@pytest.mark.parametrize("url, user, fields", [
    ("/api/v1/imports/", "staff", {}),
    ("/api/v1/predictions/", "owner", PREDICTION),
])
def test_the_api_stops_reading_a_file_at_the_limit_whatever_the_declared_length(
        client_for, request, settings, url, user, fields):
    settings.SCALEPLAN_MAX_UPLOAD_BYTES = 1000  # the body (~9 kB) is under limit + multipart allowance
    response = client_for(request.getfixturevalue(user)).post(
        url, {"file": _upload((SMALL_CORPUS * 12).encode(), "c.csv"), **fields}, format="multipart")
    assert response.status_code == 413
    assert "over the upload limit of 1000 bytes" in response.json()["error"]["message"]
    assert not Job.objects.exists()


def test_the_prediction_form_stops_reading_a_file_at_the_limit(client, owner, settings):
    settings.SCALEPLAN_MAX_UPLOAD_BYTES = 1000
    client.force_login(owner)
    response = client.post("/predictions/new", {"file": _upload((SMALL_CORPUS * 12).encode(), "c.csv"),
                                                "coverage": "0.8", **PREDICTION})
    assert response.status_code == 413
    assert "over the upload limit of 1000 bytes" in response.content.decode()

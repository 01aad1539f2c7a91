"""Admin: the read-only Job admin and the staff corpus-import page."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from planner.models import Job
from tests.conftest import SMALL_CORPUS

pytestmark = pytest.mark.django_db

IMPORT_URL = "/admin/planner/job/import/"


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def status_url(job):
    return reverse("admin:planner_job_import_status", args=[job.pk])


def test_the_family_changelist_links_to_the_import_page(staff_client):
    response = staff_client.get("/admin/planner/family/")
    assert response.status_code == 200
    assert f'href="{IMPORT_URL}"' in response.content.decode()


def test_the_import_page_is_for_staff_only(client, owner):
    assert client.get(IMPORT_URL).status_code == 302
    client.force_login(owner)
    response = client.get(IMPORT_URL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_see_the_upload_form(staff_client):
    response = staff_client.get(IMPORT_URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'enctype="multipart/form-data"' in html and 'name="skip_invalid"' in html and 'name="replace"' in html


def test_an_upload_creates_an_import_job_and_shows_its_progress(staff_client, staff):
    response = staff_client.post(
        IMPORT_URL, {"file": SimpleUploadedFile("c.csv", SMALL_CORPUS.encode()), "replace": "on"}
    )
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == status_url(job)
    assert (job.kind, job.status, job.created_by) == ("corpus_import", "queued", staff)
    assert job.input["replace"] is True and job.input["skip_invalid"] is False
    page = staff_client.get(status_url(job)).content.decode()
    assert '<meta http-equiv="refresh" content="2">' in page
    assert "c.csv" in page and "queued" in page


def test_a_wrong_header_is_shown_on_the_form_and_creates_no_job(staff_client):
    bad = SMALL_CORPUS.replace("arch,", "architecture,", 1)
    response = staff_client.post(IMPORT_URL, {"file": SimpleUploadedFile("c.csv", bad.encode())})
    assert response.status_code == 200
    html = response.content.decode()
    assert "line 1, column &#x27;architecture&#x27;: unknown column" in html
    assert "line 1, column &#x27;arch&#x27;: missing column" in html
    assert not Job.objects.exists()


def test_a_file_over_the_limit_is_refused_on_the_form(staff_client, settings):
    settings.SCALEPLAN_MAX_UPLOAD_BYTES = 50
    response = staff_client.post(IMPORT_URL, {"file": SimpleUploadedFile("c.csv", SMALL_CORPUS.encode())})
    # Stopped while streaming, before the form sees it (planner.corpus.uploads): a 413 page saying why.
    assert response.status_code == 413
    assert "over the upload limit of 50 bytes" in response.content.decode()
    assert not Job.objects.exists()


def test_a_finished_import_shows_its_report_and_stops_refreshing(staff_client, staff):
    job = Job.objects.create(
        kind=Job.Kind.CORPUS_IMPORT, status="succeeded", progress=1.0, created_by=staff,
        input={"filename": "c.csv", "size": 10, "skip_invalid": True, "replace": False},
        result={"import": {"rows_read": 9, "rows_inserted": 7, "rows_skipped": 1, "n_problems": 3,
                           "problems": [{"line": 4, "column": "value", "reason": "not a finite number"}]},
                "stats": {"families_refreshed": 2, "families": ["a", "b"]}},
    )
    html = staff_client.get(status_url(job)).content.decode()
    assert "http-equiv" not in html
    assert "<tr><th>rows imported</th><td>7</td></tr>" in html and "<tr><th>rows read</th><td>9</td></tr>" in html
    assert "</progress> 100%</td>" in html
    assert "<td>4</td><td>value</td><td>not a finite number</td>" in html
    assert "Rejected rows: 3 (first 1 shown)" in html
    assert "Statistics refreshed for 2 families" in html


def test_a_failed_import_shows_the_error_and_the_rejected_rows(staff_client, staff):
    job = Job.objects.create(
        kind=Job.Kind.CORPUS_IMPORT, status="failed", created_by=staff, error="corpus file rejected: 1 problem(s)",
        input={"filename": "c.csv"}, result={"problems": [{"line": 3, "column": "tokens", "reason": "must be > 0"}]},
    )
    html = staff_client.get(status_url(job)).content.decode()
    assert "corpus file rejected: 1 problem(s)" in html
    assert "<td>3</td><td>tokens</td><td>must be &gt; 0</td>" in html


def test_the_job_changelist_filters_by_kind_and_status(staff_client, staff):
    Job.objects.create(kind=Job.Kind.CORPUS_STATS, status="succeeded")
    Job.objects.create(kind=Job.Kind.CORPUS_IMPORT, status="failed", input={"filename": "x.csv"})
    for query in ("", "?kind__exact=corpus_stats", "?status__exact=failed", "?q=1"):
        response = staff_client.get("/admin/planner/job/" + query)
        assert response.status_code == 200, query
    assert staff_client.get("/admin/planner/job/?status__exact=failed").context["cl"].result_count == 1


def test_jobs_are_read_only_in_the_admin(staff_client):
    job = Job.objects.create(kind=Job.Kind.CORPUS_STATS)
    assert staff_client.get("/admin/planner/job/add/").status_code == 403
    page = staff_client.get(f"/admin/planner/job/{job.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()


def test_the_cancel_action_cancels_only_unfinished_jobs(staff_client):
    queued = Job.objects.create(kind=Job.Kind.CORPUS_STATS)
    done = Job.objects.create(kind=Job.Kind.CORPUS_STATS, status="succeeded")
    response = staff_client.post(
        "/admin/planner/job/", {"action": "cancel_jobs", "_selected_action": [queued.pk, done.pk]}, follow=True
    )
    assert response.status_code == 200
    queued.refresh_from_db()
    done.refresh_from_db()
    assert (queued.status, done.status) == ("cancelled", "succeeded")
    assert "1 job(s) cancelled." in response.content.decode()


def test_the_import_report_reads_in_words_with_lists_joined():
    from planner.jobs.admin import report_rows

    rows = report_rows({"rows_read": 3, "families": ["a", "b"], "rows_inserted": 3, "problems": [],
                        "problems_truncated": False, "something_new": 1})
    assert rows == [("families in the file", "a, b"), ("rows read", "3"), ("rows imported", "3"),
                    ("something new", "1")]
    assert report_rows(None) == []

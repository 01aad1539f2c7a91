"""Pages: the prediction form, the job page, the plot, the login they need and the home page's link."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from planner.models import Job
from tests.planner.predictions.test_predictions import csv_of, run_job, synthetic_runs
from tests.planner.corpus.test_views import parse

pytestmark = pytest.mark.django_db

NEW = "/predictions/new"


@pytest.fixture
def logged_in(client, owner):
    client.force_login(owner)
    return client


def form(**overrides):
    return {"csv_text": csv_of(synthetic_runs()).decode(), "target_params": "1e10", "target_tokens": "2e11",
            "coverage": "0.8", **overrides}


def test_the_home_page_links_to_the_prediction_form(client):
    assert NEW in parse(client.get("/")).hrefs


def test_the_form_needs_a_login(client):
    response = client.get(NEW)
    assert response.status_code == 302 and response["Location"] == f"/accounts/login/?next={NEW}"
    assert client.get("/accounts/login/").status_code == 200


def test_a_user_logs_in_and_comes_back_to_the_form(client, owner):
    response = client.post("/accounts/login/", {"username": "owner", "password": "pw-owner", "next": NEW})
    assert response.status_code == 302 and response["Location"] == NEW
    assert client.get(NEW).status_code == 200


def test_the_form_renders_with_csrf_and_no_external_assets(logged_in):
    response = logged_in.get(NEW)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="csrfmiddlewaretoken"' in html and 'enctype="multipart/form-data"' in html
    links = parse(response)
    assert links.scripts == 0 and not [s for s in links.srcs if "//" in s]


def test_posting_without_a_csrf_token_is_refused(owner):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(NEW, form()).status_code == 403
    assert not Job.objects.exists()


def test_a_pasted_csv_queues_a_job_and_redirects_to_its_page(logged_in, owner):
    response = logged_in.post(NEW, form(target_tokens="1e11, 2e11"))

    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert (job.kind, job.status, job.created_by) == ("prediction", "queued", owner)
    assert job.input["target_tokens"] == [1e11, 2e11] and job.input["family"] == "mine"


def test_an_uploaded_csv_queues_a_job(logged_in):
    upload = SimpleUploadedFile("runs.csv", csv_of(synthetic_runs()), content_type="text/csv")
    response = logged_in.post(NEW, form(csv_text="", file=upload))
    assert response.status_code == 302
    assert Job.objects.get().input["filename"] == "runs.csv"


@pytest.mark.parametrize("overrides, field, message", [
    ({"csv_text": ""}, None, "Paste the CSV or upload a file (one of the two)."),
    ({"target_tokens": "2e11, lots"}, "target_tokens", "'lots' is not a number."),
    ({"target_tokens": "-5"}, "target_tokens", "'-5' is not a positive number."),
    ({"target_params": "many"}, "target_params", "Enter a number."),
    ({"coverage": "1"}, "coverage", "Ensure this value is less than or equal to 0.99."),
    ({"metric": "ppl"}, "metric", "The file has no rows of metric 'ppl'; it has val_loss."),
    ({"csv_text": "model,value\na,1\n"}, "csv_text", None),
])
def test_bad_input_shows_the_error_at_its_field_and_queues_nothing(logged_in, overrides, field, message):
    response = logged_in.post(NEW, form(**overrides))

    assert response.status_code == 200
    errors = response.context["form"].errors.get(field or "__all__")
    assert errors, response.context["form"].errors
    if message:
        assert message in errors
        assert message.replace("'", "&#x27;") in response.content.decode()
    assert not Job.objects.exists()


def test_a_csv_with_a_bad_row_shows_its_line_and_column(logged_in):
    text = csv_of(synthetic_runs()[:4]).decode().replace("val_loss,", "val_loss,oops,", 1)
    response = logged_in.post(NEW, form(csv_text=text))
    errors = response.context["form"].errors["csv_text"]
    assert errors[0].startswith("line 2, column '")


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_broker_answers_503_with_a_message(client, owner, unreachable_broker):
    client.force_login(owner)
    response = client.post(NEW, form())
    assert response.status_code == 503
    assert "task queue is unreachable, so the prediction was not started" in response.content.decode()
    assert not Job.objects.exists()


def test_the_job_page_refreshes_while_the_job_runs(logged_in, owner):
    job = Job.objects.create(kind=Job.Kind.PREDICTION, status=Job.Status.RUNNING, created_by=owner, progress=0.3,
                             progress_message="bootstrapping")
    html = logged_in.get(f"/jobs/{job.pk}/").content.decode()
    assert '<meta http-equiv="refresh" content="2">' in html
    assert "bootstrapping" in html and 'value="30"' in html


def test_the_job_page_shows_the_prediction_diagnostics_and_plot_once_succeeded(logged_in, owner):
    job, result, _ = run_job(synthetic_runs(sizes=(1e8, 1e9)), 2e10, 2e11)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, result=result, created_by=owner)

    response = logged_in.get(f"/jobs/{job.pk}/")

    html = response.content.decode()
    assert response.status_code == 200 and 'http-equiv="refresh"' not in html
    assert f"{result['prediction']:.4g}" in html
    assert f"{result['lower']:.4g} &ndash; {result['upper']:.4g}" in html
    assert "few_sizes" in html and "large_extrapolation" in html
    assert f'src="/predictions/{job.pk}/plot.png"' in html


def test_the_job_page_shows_a_failed_jobs_error(logged_in, owner):
    job = Job.objects.create(kind=Job.Kind.PREDICTION, status=Job.Status.FAILED, created_by=owner,
                             error="The runs cannot be fitted: no rows")
    html = logged_in.get(f"/jobs/{job.pk}/").content.decode()
    assert "The runs cannot be fitted: no rows" in html and "refresh" not in html


def test_another_users_job_and_plot_are_a_404_like_a_missing_one(client, stranger, owner):
    job = Job.objects.create(kind=Job.Kind.PREDICTION, status=Job.Status.SUCCEEDED, created_by=owner)
    client.force_login(stranger)
    assert client.get(f"/jobs/{job.pk}/").status_code == 404
    assert client.get(f"/predictions/{job.pk}/plot.png").status_code == 404
    assert client.get(f"/jobs/{job.pk + 1000}/").status_code == 404


def test_the_plot_is_a_png(logged_in, owner):
    job, result, _ = run_job(synthetic_runs(), 1e10, [1e11, 2e11, 4e11])
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, result=result, created_by=owner)

    response = logged_in.get(f"/predictions/{job.pk}/plot.png")

    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_there_is_no_plot_before_the_prediction_succeeded(logged_in, owner):
    job = Job.objects.create(kind=Job.Kind.PREDICTION, status=Job.Status.RUNNING, created_by=owner)
    assert logged_in.get(f"/predictions/{job.pk}/plot.png").status_code == 404

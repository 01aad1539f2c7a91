"""Pages: the plan form (login, CSRF, field errors), the plan page (progress, then the plan) and its PNG plots."""
import pytest

from planner.models import Job
from planner.jobs.tasks import run_job
from tests.planner.plans.test_plans import error_model  # noqa: F401 (fixture)
from tests.planner.corpus.test_views import parse

pytestmark = pytest.mark.django_db

NEW = "/plans/new"
FORM = {"target_params": "7e9", "target_tokens": "1.4e11", "budget_fraction": "0.05", "max_models": "6"}


@pytest.fixture
def logged_in(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def no_enqueue(monkeypatch):
    from planner.jobs import services as jobs

    monkeypatch.setattr(jobs, "_enqueue", lambda job_id: None)


def test_the_home_page_links_to_the_plan_form(client):
    assert NEW in parse(client.get("/")).hrefs


def test_the_form_needs_a_login(client):
    response = client.get(NEW)
    assert response.status_code == 302 and response["Location"] == f"/accounts/login/?next={NEW}"


def test_the_form_renders_with_csrf_and_no_external_assets(logged_in, error_model):
    response = logged_in.get(NEW)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="csrfmiddlewaretoken"' in html and 'name="target_params"' in html and "Error model v1" in html
    links = parse(response)
    assert links.scripts == 0 and not [s for s in links.srcs if "//" in s]


def test_posting_without_a_csrf_token_is_refused(owner, error_model):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(NEW, FORM).status_code == 403
    assert not Job.objects.exists()


@pytest.mark.parametrize("change, field, message", [
    ({"target_params": "big"}, "target_params", "Enter a number."),
    ({"target_tokens": ""}, "target_tokens", "give the target's tokens or its compute budget"),
    ({"budget_fraction": "3"}, "budget_fraction", "must be a share of the target's compute"),
    ({"max_size": "8e9"}, "max_size", "must be smaller than the target"),
    ({"budget_flops": "1e20"}, "budget_flops", "not both"),
    ({"budget_flops": "1e20"}, "budget_fraction", "not both"),
    ({"target_compute": "6e21"}, "target_tokens", "not both"),
    ({"target_compute": "6e21"}, "target_compute", "not both"),
])
def test_impossible_input_shows_the_error_under_its_field_and_queues_nothing(logged_in, error_model, change, field,
                                                                          message):
    response = logged_in.post(NEW, {**FORM, **change})
    assert response.status_code == 200
    errors = response.context["form"].errors
    # A conflicting pair is shown under both of its fields; anything else under its own field only.
    assert field in errors and len(errors) == (2 if message == "not both" else 1) and message in errors[field][0]
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not Job.objects.exists()


def test_without_an_error_model_the_form_says_what_to_do(logged_in):
    response = logged_in.post(NEW, FORM)
    assert response.status_code == 409
    assert "no error model yet" in response.content.decode()
    assert not Job.objects.exists()


def test_a_valid_plan_queues_a_job_and_redirects_to_its_page(logged_in, owner, error_model, no_enqueue):
    response = logged_in.post(NEW, FORM)
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/plans/{job.pk}/"
    assert (job.kind, job.created_by, job.input["target_params"], job.input["max_models"]) == ("plan", owner, 7e9, 6)
    page = logged_in.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and 'http-equiv="refresh"' in html and "Queued" in html


@pytest.fixture
def finished_plan(owner, error_model):
    job = Job.objects.create(kind=Job.Kind.PLAN, created_by=owner,
                             input={"target_params": 7e9, "target_tokens": 1.4e11, "budget_fraction": 0.05})
    run_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    return job


@pytest.mark.django_db(transaction=True)
def test_the_plan_page_shows_the_plan_explained(logged_in, finished_plan):
    response = logged_in.get(f"/plans/{finished_plan.pk}/")
    html = response.content.decode()
    page = parse(response)
    plan = finished_plan.result
    assert response.status_code == 200 and 'http-equiv="refresh"' not in html
    for heading in ("Train these models", "Downloads", "Expected error on the target", "Why this design",
                    "Runners-up", "Naive designs at the same budget", "Alternatives at other budgets",
                    "Compute-optimal split"):
        assert heading in html
    # The per-run schedule: each run's name, size, tokens, FLOPs and its own evaluation interval.
    for m in plan["recommended"]["models"]:
        row = f"<td class=\"name\">{m['model']}</td><td>{m['params']:.3g}</td><td>{m['tokens']:.3g}</td>"
        assert row in html
        assert f"<td>{m['eval_every_tokens']:.3g}</td><td>{m['evaluations']}</td>" in html
    assert f"{plan['expected_are']['p50'] * 100:.3g}%" in html
    assert plan["reasons"]["models"] in html
    # Runners-up with their p10/p50/p90, and the factors that decided.
    for a in plan["alternatives"]:
        assert f"<td>{a['p10'] * 100:.3g}%</td><td>{a['p50'] * 100:.3g}%</td>" in html
    assert plan["choice"]["factors"] and all(f["factor"] in html for f in plan["choice"]["factors"])
    # The compute-optimal split with its range.
    opt = plan["compute_optimal"]
    assert f"{opt['params_interval'][0]:.3g} - {opt['params_interval'][1]:.3g}" in html
    # Downloads, figures and the prediction form with the target filled in.
    pk = finished_plan.pk
    assert {f"/plans/{pk}/plan.json", f"/plans/{pk}/plan.csv", f"/plans/{pk}/prediction-template.csv"} <= set(page.hrefs)
    assert {f"/plans/{pk}/{name}.png" for name in ("isoflop", "frontier", "sizes")} <= set(page.srcs)
    assert f"/predictions/new?plan={pk}&target_params=7e%2B09&target_tokens=1.4e%2B11" in page.hrefs


@pytest.mark.django_db(transaction=True)
def test_warnings_are_shown_by_code_and_message(logged_in, owner, error_model):
    job = Job.objects.create(kind=Job.Kind.PLAN, created_by=owner,
                             input={"target_params": 7e9, "target_tokens": 1.4e11, "budget_flops": 2e22})
    run_job.apply(args=[job.pk])
    job.refresh_from_db()
    [warning] = [w for w in job.result["warnings"] if w["code"] == "budget_exceeds_target"]
    html = logged_in.get(f"/plans/{job.pk}/").content.decode()
    assert '<code class="code">budget_exceeds_target</code>' in html
    assert "{&#x27;code&#x27;" not in html and "{'code'" not in html  # no raw dicts


@pytest.mark.django_db(transaction=True)
def test_the_plan_downloads_are_files_the_library_writes(logged_in, finished_plan):
    import json

    from fits import plan_csv, prediction_template_csv

    pk = finished_plan.pk
    response = logged_in.get(f"/plans/{pk}/plan.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="plan-{pk}-plan.json"'
    assert json.loads(response.content) == finished_plan.result
    response = logged_in.get(f"/plans/{pk}/plan.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="plan-{pk}-runs.csv"'
    assert response.content.decode() == plan_csv(finished_plan.result)
    response = logged_in.get(f"/plans/{pk}/prediction-template.csv")
    assert response.content.decode() == prediction_template_csv(finished_plan.result)
    assert response.content.decode().startswith("model,params,tokens,value\n")
    assert logged_in.get(f"/plans/{pk}/other.csv").status_code == 404


def test_an_unfinished_or_old_plan_has_no_csv_files(logged_in, owner):
    job = Job.objects.create(kind=Job.Kind.PLAN, created_by=owner, input={"target_params": 7e9})
    assert logged_in.get(f"/plans/{job.pk}/plan.csv").status_code == 404
    assert logged_in.get(f"/plans/{job.pk}/plan.json").status_code == 404
    Job.objects.filter(pk=job.pk).update(status="succeeded", result={"version": 1, "models": []})
    assert logged_in.get(f"/plans/{job.pk}/plan.csv").status_code == 404  # version 1: no per-run schedule
    assert logged_in.get(f"/plans/{job.pk}/plan.json").status_code == 200


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", ["isoflop", "frontier", "sizes"])
def test_the_plots_are_pngs(logged_in, finished_plan, name):
    response = logged_in.get(f"/plans/{finished_plan.pk}/{name}.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response.content[:8] == b"\x89PNG\r\n\x1a\n" and len(response.content) > 10_000


@pytest.mark.django_db(transaction=True)
def test_another_users_plan_is_a_404_like_a_missing_one(client, stranger, finished_plan):
    client.force_login(stranger)
    assert client.get(f"/plans/{finished_plan.pk}/").status_code == 404
    assert client.get(f"/plans/{finished_plan.pk}/frontier.png").status_code == 404
    assert client.get(f"/plans/{finished_plan.pk}/plan.json").status_code == 404
    assert client.get(f"/plans/{finished_plan.pk + 1000}/").status_code == 404


def test_an_unfinished_plan_has_no_plot_and_unknown_plots_are_404(logged_in, owner):
    job = Job.objects.create(kind=Job.Kind.PLAN, created_by=owner, input={"target_params": 7e9})
    assert logged_in.get(f"/plans/{job.pk}/frontier.png").status_code == 404
    Job.objects.filter(pk=job.pk).update(status="succeeded", result={"models": []})
    assert logged_in.get(f"/plans/{job.pk}/other.png").status_code == 404


def test_a_failed_plan_shows_its_error(logged_in, owner):
    job = Job.objects.create(kind=Job.Kind.PLAN, created_by=owner, input={"target_params": 7e9}, status="failed",
                             error="Cannot plan: no error model yet: POST /api/v1/sweeps/ first.")
    html = logged_in.get(f"/plans/{job.pk}/").content.decode()
    assert "no error model yet" in html and 'http-equiv="refresh"' not in html


def test_the_request_reads_as_numbers_and_capped_errors_say_so(logged_in, owner):
    from fits.errormodel import ARE_CAP
    from planner.plans.views import _pct

    job = Job.objects.create(kind=Job.Kind.PLAN, created_by=owner,
                             input={"target_params": 7e9, "target_tokens": 1.4e11, "max_models": 6})
    html = logged_in.get(f"/plans/{job.pk}/").content.decode()
    assert "<code>target_params</code> = 7e+09" in html and "<code>target_tokens</code> = 1.4e+11" in html
    assert "<code>max_models</code> = 6" in html and "7000000000.0" not in html
    assert (_pct(ARE_CAP), _pct(0.0123), _pct(None)) == ("\u22651000%", "1.23%", "unbounded")


def test_while_an_error_model_is_being_built_the_form_shows_its_progress(logged_in):
    Job.objects.create(kind=Job.Kind.SWEEP, status="running", progress=0.4, progress_message="16 of 40 families swept")
    html = logged_in.get(NEW).content.decode()
    assert "The error model is being rebuilt from the corpus" in html and "16 of 40 families swept" in html
    assert '<progress max="1" value="0.4">' in html and 'http-equiv="refresh"' in html
    assert "No error model has been built yet" not in html


def test_with_a_model_and_a_rebuild_running_plans_use_the_active_one(logged_in, error_model):
    Job.objects.create(kind=Job.Kind.SWEEP, status="queued")
    html = logged_in.get(NEW).content.decode()
    assert f"Plans use v{error_model.version} until it is done" in html and 'http-equiv="refresh"' not in html


@pytest.mark.django_db(transaction=True)
def test_a_version_1_plan_still_shows_what_it_holds(logged_in, finished_plan):
    old = {k: v for k, v in finished_plan.result.items()
           if k not in ("recommended", "alternatives", "choice", "version")}
    old["compute_optimal"] = {k: v for k, v in old["compute_optimal"].items() if k != "law"}
    old["warnings"] = ["a version-1 warning was a string"]
    Job.objects.filter(pk=finished_plan.pk).update(result=old)
    response = logged_in.get(f"/plans/{finished_plan.pk}/")
    html = response.content.decode()
    assert response.status_code == 200 and "Train these models" in html and "Runners-up" not in html
    assert "a version-1 warning was a string" in html
    assert f"/plans/{finished_plan.pk}/isoflop.png" not in html and f"/plans/{finished_plan.pk}/plan.csv" not in html
    assert logged_in.get(f"/plans/{finished_plan.pk}/isoflop.png").status_code == 404
    assert logged_in.get(f"/plans/{finished_plan.pk}/frontier.png").status_code == 200

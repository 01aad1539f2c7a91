"""Pages: a prediction from logs, a prediction as its runs advance and its update, next-run advice; the links."""
import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from planner.models import Job
from tests.planner.corpus.test_views import parse
from tests.planner.predictions.test_predictions import csv_of, synthetic_runs
from tests.planner.runs.conftest import in_progress
from tests.planner.runs.logs import LOSS, TOKENS_PER_STEP, curves, logs_zip, params_csv

pytestmark = pytest.mark.django_db

IMPORT = "/predictions/import"


def import_form(tmp_path, frame=None, **overrides):
    frame = curves() if frame is None else frame
    return {"logs": SimpleUploadedFile("logs.zip", logs_zip(tmp_path, frame)), "source": "auto", "metric": LOSS,
            "tokens_per_step": str(TOKENS_PER_STEP), "params": params_csv(frame), "target_params": "3e10",
            "target_tokens": "2e11", "coverage": "0.8", **overrides}


def errors_of(response, field):
    return response.context["form"].errors.get(field)


# --- logs for a prediction ----------------------------------------------------------------------


def test_the_import_page_needs_a_login_and_is_linked_from_the_prediction_form(client, logged_in):
    anonymous = type(client)()
    response = anonymous.get(IMPORT)
    assert response.status_code == 302 and response["Location"] == f"/accounts/login/?next={IMPORT}"
    assert IMPORT in parse(logged_in.get("/predictions/new")).hrefs
    page = logged_in.get(IMPORT)
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.content.decode()


def test_a_zip_of_event_files_queues_a_prediction_with_its_report_and_redirects_to_its_progress(logged_in, owner,
                                                                                                 tmp_path):
    response = logged_in.post(IMPORT, import_form(tmp_path))

    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/predictions/{job.pk}/progress/"
    assert (job.kind, job.status, job.created_by, job.input["filename"], job.input["metric"]) == (
        "prediction", "queued", owner, "logs.zip", LOSS)
    assert len(job.input["runs"]) == 160 and job.input["tracker"]["report"]["rows_kept"] == 160
    page = logged_in.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert "Import report: logs.zip" in html and "tensorboard: 4 of 4 runs imported, 160 rows" in html
    assert '<meta http-equiv="refresh" content="2">' in html


@pytest.mark.parametrize("overrides, field, message", [
    ({"metric": "val/loss"}, "metric", "no run logs the metric 'val/loss'"),
    ({"tokens_per_step": ""}, "tokens_per_step", "give tokens per step"),
    ({"params": "run,params\nrun-1e+08,big\n"}, "params", "'big' is not a parameter count"),
    ({"logs": None}, "logs", "Upload the logs."),
    ({"target_tokens": "2e11, lots"}, "target_tokens", "'lots' is not a number."),
])
def test_bad_input_shows_the_error_under_its_field_and_queues_nothing(logged_in, tmp_path, overrides, field,
                                                                      message):
    data = {k: v for k, v in import_form(tmp_path, **overrides).items() if v is not None}
    response = logged_in.post(IMPORT, data)
    assert response.status_code == 200
    assert any(message in e for e in errors_of(response, field)), response.context["form"].errors
    assert not Job.objects.exists()


# --- a prediction as its runs advance -----------------------------------------------------------


def test_the_progress_page_shows_the_prediction_its_histories_and_the_runs(logged_in, chain):
    job = chain[-1]
    response = logged_in.get(f"/predictions/{job.pk}/progress/")
    assert response.status_code == 200
    html = response.content.decode()
    links = parse(response)
    assert f"/predictions/{job.pk}/history.png" in links.srcs and f"/predictions/{job.pk}/uploads.png" in links.srcs
    for href in (f"/predictions/{job.pk}/update", f"/advice/new?prediction={job.pk}",
                 f"/predictions/{job.pk}/runs.csv", f"/predictions/{chain[1].pk}/progress/", f"/jobs/{job.pk}/"):
        assert href in links.hrefs, href
    assert f"{job.result['prediction']:.4g}" in html
    assert "As the runs advanced" in html and "Over the chain of updates" in html
    assert job.result["uploads_history"]["message"][1:] in html
    assert html.count('<tr class="in-progress">') == 0  # the last update has every run at its planned length
    earlier = logged_in.get(f"/predictions/{chain[0].pk}/progress/").content.decode()
    assert earlier.count('<tr class="in-progress">') == 4


@pytest.mark.parametrize("name", ["history", "uploads"])
def test_the_history_figures_are_pngs_drawn_from_the_stored_result(logged_in, chain, name, monkeypatch):
    import planner.runs.following as following

    monkeypatch.setattr(following, "prediction_history", None)  # never refitted on a request
    response = logged_in.get(f"/predictions/{chain[-1].pk}/{name}.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG") and "private" in response["Cache-Control"]


def test_a_figure_the_prediction_does_not_have_is_a_404(logged_in, chain):
    assert logged_in.get(f"/predictions/{chain[0].pk}/uploads.png").status_code == 404
    queued = Job.objects.create(kind=Job.Kind.PREDICTION, created_by=chain[0].created_by, input={"runs": []})
    assert logged_in.get(f"/predictions/{queued.pk}/history.png").status_code == 404


def test_the_runs_download_is_the_canonical_runs_table(logged_in, chain):
    response = logged_in.get(f"/predictions/{chain[0].pk}/runs.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0]) == ["model", "params", "tokens", "value", "run_tokens"]
    expected = in_progress(6e9)
    assert len(rows) == len(expected)
    assert [(r["model"], float(r["tokens"]), float(r["value"])) for r in rows] == [
        (r["model"], r["tokens"], r["value"]) for r in expected]


def test_another_users_prediction_pages_are_404s_like_missing_ones(client, stranger, chain):
    client.force_login(stranger)
    pk = chain[-1].pk
    for path in (f"/predictions/{pk}/progress/", f"/predictions/{pk}/update", f"/predictions/{pk}/history.png",
                 f"/predictions/{pk}/runs.csv", "/predictions/999999/progress/"):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/predictions/{pk}/update", {"csv_text": "x"}).status_code == 404
    assert Job.objects.count() == 3


# --- updating it -----------------------------------------------------------------------------------


def test_a_pasted_update_queues_a_linked_prediction(logged_in, chain):
    previous = chain[0]
    text = csv_of([r for r in in_progress(1.2e10)]).decode()
    response = logged_in.post(f"/predictions/{previous.pk}/update", {"csv_text": text, "source": "auto"})
    job = Job.objects.latest("pk")
    assert response.status_code == 302 and response["Location"] == f"/predictions/{job.pk}/progress/"
    assert job.input["follows"] == previous.pk and job.input["update"]["rows_added"] > 0


def test_an_update_with_nothing_new_says_so_under_its_field(logged_in, chain):
    text = csv_of(in_progress(6e9)).decode()
    response = logged_in.post(f"/predictions/{chain[0].pk}/update", {"csv_text": text, "source": "auto"})
    assert response.status_code == 200
    assert errors_of(response, "csv_text")[0].startswith("Nothing new:")
    assert Job.objects.count() == 3


def test_an_update_from_logs_starts_from_the_imports_options(logged_in, tmp_path):
    early = curves(planned_steps=8000)
    logged_in.post(IMPORT, import_form(tmp_path, early, params=params_csv(early, run_steps=20000)))
    first = Job.objects.get()

    form = logged_in.get(f"/predictions/{first.pk}/update").context["form"]
    assert form.initial["metric"] == LOSS and form.initial["tokens_per_step"] == TOKENS_PER_STEP
    assert form.initial["params"].splitlines()[:2] == ["run,params,tokens_per_step,run_tokens",
                                                      "run-1e+08,100000000,1000000,20000000000"]
    later = curves(planned_steps=14000)
    data = {**form.initial, "logs": SimpleUploadedFile("logs.zip", logs_zip(tmp_path, later, "later"))}
    response = logged_in.post(f"/predictions/{first.pk}/update", data)
    update = Job.objects.latest("pk")
    assert response.status_code == 302, response.context["form"].errors
    assert update.input["follows"] == first.pk and len(update.input["runs"]) == len(later)
    assert {r["run_tokens"] for r in update.input["runs"]} == {2e10}


def test_an_update_needs_exactly_one_source_of_runs(logged_in, chain):
    response = logged_in.post(f"/predictions/{chain[0].pk}/update", {"source": "auto"})
    assert response.status_code == 200 and response.context["form"].non_field_errors()


# --- advice ----------------------------------------------------------------------------------------


def test_the_plan_page_links_to_the_advice_form_with_the_plan(logged_in, owner):
    plan = Job.objects.create(kind=Job.Kind.PLAN, created_by=owner, input={"target_params": 3e10,
                                                                             "target_tokens": 2e11,
                                                                             "budget_flops": 2e21})
    assert f"/advice/new?plan={plan.pk}" in parse(logged_in.get(f"/plans/{plan.pk}/")).hrefs
    response = logged_in.get(f"/advice/new?plan={plan.pk}")
    form = response.context["form"]
    # The plan chosen and its target in the fields; the page says its budget.
    assert form.initial == {"plan": plan.pk, "target_params": 3e10, "target_tokens": 2e11}
    assert plan.pk in dict(form.fields["plan"].choices)
    text = " ".join(response.content.decode().split())
    assert "a target of 3e+10 parameters on 2e+11 tokens, 2e+21 FLOPs for the small models" in text


def test_the_advice_form_from_a_prediction_takes_its_target(logged_in, chain):
    form = logged_in.get(f"/advice/new?prediction={chain[-1].pk}").context["form"]
    assert form.initial == {"prediction": chain[-1].pk, "target_params": 3e10, "target_tokens": 2e11}


def test_advice_from_a_prediction_and_a_plan_queues_a_job(logged_in, owner, chain):
    plan = Job.objects.create(kind=Job.Kind.PLAN, created_by=owner, input={"target_params": 3e10,
                                                                             "target_tokens": 2e11,
                                                                             "budget_flops": 5e21})
    response = logged_in.post("/advice/new", {"prediction": chain[-1].pk, "plan": plan.pk, "max_runs": "2"})
    job = Job.objects.get(kind=Job.Kind.ADVICE)
    assert response.status_code == 302 and response["Location"] == f"/advice/{job.pk}/"
    assert (job.input["prediction"], job.input["plan"], job.input["max_runs"]) == (chain[-1].pk, plan.pk, 2)
    assert "runs" not in job.input and job.input["budget"]["from"] == f"plan {plan.pk}"
    page = logged_in.get(response["Location"]).content.decode()
    assert "Queued" in page and f"plan <a href=\"/plans/{plan.pk}/\">{plan.pk}</a>" in page


def test_advice_from_an_uploaded_runs_csv(logged_in):
    upload = SimpleUploadedFile("runs.csv", csv_of(synthetic_runs()))
    response = logged_in.post("/advice/new", {"file": upload, "target_params": "3e10", "target_tokens": "2e11",
                                              "budget_flops": "1e21", "max_runs": "1"})
    job = Job.objects.get(kind=Job.Kind.ADVICE)
    assert response.status_code == 302 and len(job.input["runs"]) == 48 and job.input["filename"] == "runs.csv"


@pytest.mark.parametrize("data, field, message", [
    ({"target_params": "1e9"}, "target_params", "must be larger than every run so far"),
    ({"budget_flops": ""}, "budget_flops", "Give the FLOPs left for new runs"),
    ({"budget_flops": "1e10"}, "budget_flops", "affords no run near the sizes trained"),
])
def test_bad_advice_input_shows_the_error_under_its_field(logged_in, chain, data, field, message):
    form = {"prediction": chain[-1].pk, "budget_flops": "1e21", "max_runs": "1", **data}
    response = logged_in.post("/advice/new", form)
    assert response.status_code == 200
    assert any(message in e for e in errors_of(response, field)), response.context["form"].errors
    assert not Job.objects.filter(kind=Job.Kind.ADVICE).exists()


def test_another_users_prediction_is_not_a_choice(client, stranger, chain):
    client.force_login(stranger)
    response = client.post("/advice/new", {"prediction": chain[-1].pk, "budget_flops": "1e21", "max_runs": "1"})
    assert response.status_code == 200 and errors_of(response, "prediction")
    assert not Job.objects.filter(kind=Job.Kind.ADVICE).exists()


def test_the_advice_page_shows_the_advised_run_the_expected_are_the_evidence_and_runner_ups(logged_in,
                                                                                            finished_advice):
    result = finished_advice.result
    html = logged_in.get(f"/advice/{finished_advice.pk}/").content.decode()
    run = result["runs"][0]
    assert f'<td class="params">{run["params"]:.4g}</td>' in html
    assert f'{run["evaluate_every_tokens"]:.4g}' in html
    assert f'{100 * result["expected_are"]["now"]["p50"]:.3g}%' in html
    assert f'{100 * result["expected_are"]["after"]["p50"]:.3g}%' in html
    assert "Ranked by the <strong>own fit</strong>" in html
    assert html.count("<tr>", html.index("Runner-ups")) == 1 + len(result["runner_ups"])


def test_another_users_advice_is_a_404(client, stranger, finished_advice):
    client.force_login(stranger)
    assert client.get(f"/advice/{finished_advice.pk}/").status_code == 404


def test_a_prediction_of_finished_runs_links_to_its_progress_page_which_says_it_has_no_history(logged_in, owner):
    from planner.predictions.services import prediction_enqueue
    from planner.runs.following import prediction_followed_run
    from tests.planner.runs.conftest import succeed

    job = succeed(prediction_enqueue(runs=synthetic_runs(), target_params=3e10, target_tokens=2e11, coverage=0.8,
                                     created_by=owner), prediction_followed_run)
    assert f"/predictions/{job.pk}/progress/" in parse(logged_in.get(f"/jobs/{job.pk}/")).hrefs
    html = logged_in.get(f"/predictions/{job.pk}/progress/").content.decode()
    assert "No history: every run had reached its planned length" in html and "history.png" not in html

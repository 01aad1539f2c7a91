"""/api/v1/predictions/imports/, /api/v1/predictions/<id>/updates/, /api/v1/advice/: uploads, errors, ownership."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from planner.models import Job
from tests.planner.predictions.test_predictions import csv_of, synthetic_runs
from tests.planner.runs.conftest import in_progress
from tests.planner.runs.logs import LOSS, TOKENS, TOKENS_PER_STEP, curves, logs_zip, params_csv

pytestmark = pytest.mark.django_db

IMPORTS = "/api/v1/predictions/imports/"
ADVICE = "/api/v1/advice/"


def logs_body(tmp_path, frame=None, **overrides):
    frame = curves() if frame is None else frame
    body = {"logs": SimpleUploadedFile("logs.zip", logs_zip(tmp_path, frame)), "metric": LOSS,
            "tokens_per_step": str(TOKENS_PER_STEP), "params": params_csv(frame), "target_params": "3e10",
            "target_tokens": "2e11"}
    return {k: v for k, v in {**body, **overrides}.items() if v is not None}


def error(response):
    return response.json()["error"]


# --- imports ------------------------------------------------------------------------------------


def test_logs_answer_202_with_the_prediction_and_its_import_report(client_for, owner, tmp_path):
    response = client_for(owner).post(IMPORTS, logs_body(tmp_path), format="multipart")

    assert response.status_code == 202, response.content
    data = response.json()
    assert response["Location"] == data["url"] == f"http://testserver/api/v1/predictions/{data['id']}/"
    assert (data["kind"], data["status"], data["created_by"]) == ("prediction", "queued", "owner")
    assert data["progress_url"] == f"http://testserver/predictions/{data['id']}/progress/"
    assert data["runs_csv_url"] == f"http://testserver/predictions/{data['id']}/runs.csv"
    tracker = data["input"]["tracker"]
    assert (tracker["filename"], tracker["options"]["metric"]) == ("logs.zip", LOSS)
    assert tracker["report"]["rows_kept"] == 160
    assert data["input"]["filename"] == "logs.zip" and data["input"]["n_rows"] == 160
    assert "params" not in tracker  # what is shown: the options and the report
    assert len(Job.objects.get().input["runs"]) == 160


def test_a_tokens_series_and_a_params_file_work_as_well(client_for, owner, tmp_path):
    frame = curves()
    body = logs_body(tmp_path, tokens_per_step=None, tokens_column=TOKENS, params=None,
                     params_file=SimpleUploadedFile("P.csv", params_csv(frame).encode()))
    response = client_for(owner).post(IMPORTS, body, format="multipart")
    assert response.status_code == 202, response.content
    assert response.json()["input"]["tracker"]["report"]["tokens"] == f"column {TOKENS!r}"


@pytest.mark.parametrize("overrides, field, message", [
    ({"metric": "val/loss"}, "metric", "logs.zip: field 'metric': no run logs the metric 'val/loss'"),
    ({"tokens_per_step": "-1"}, "tokens_per_step", "Must be a positive, finite number."),
    ({"params": None}, "params", "logs.zip: field 'params': no rows to import"),
    ({"params": None, "params_file": SimpleUploadedFile("P.csv", b"run,size\na,1\n")}, "params_file",
     "P.csv: field 'params': no params column"),
    ({"source": "neptune"}, "source", '"neptune" is not a valid choice.'),
    ({"logs": SimpleUploadedFile("logs.zip", b"")}, "logs", "The submitted file is empty."),
    ({"metric": None}, "metric", "Name the loss metric."),
])
def test_bad_logs_or_options_are_400s_naming_the_field(client_for, owner, tmp_path, overrides, field, message):
    response = client_for(owner).post(IMPORTS, logs_body(tmp_path, **overrides), format="multipart")
    assert response.status_code == 400, response.content
    details = error(response)["details"]
    assert set(details) == {field} and details[field][0].startswith(message), details
    assert not Job.objects.exists()


def test_imports_need_a_token_and_multipart(client_for, owner, tmp_path):
    assert client_for(None).post(IMPORTS, logs_body(tmp_path), format="multipart").status_code == 401
    response = client_for(owner).post(IMPORTS, {"metric": LOSS}, format="json")
    assert response.status_code == 415 and error(response)["code"] == "unsupported_media_type"


def test_an_archive_over_the_extraction_limit_is_a_400_naming_the_limit(client_for, owner, tmp_path, settings):
    settings.SCALEPLAN_MAX_DECOMPRESSED_BYTES = 20_000
    response = client_for(owner).post(IMPORTS, logs_body(tmp_path), format="multipart")
    assert response.status_code == 400 and "20000" in error(response)["details"]["logs"][0]
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_broker_down_is_a_503_and_nothing_is_created(client_for, owner, tmp_path, unreachable_broker):
    client = client_for(owner)
    response = client.post(IMPORTS, logs_body(tmp_path), format="multipart")
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert error(response)["code"] == "service_unavailable"
    assert "prediction was not started" in error(response)["message"]
    advice = client.post(ADVICE, {"runs": synthetic_runs(), "target_params": 3e10, "target_tokens": 2e11,
                                  "budget_flops": 1e21}, format="json")
    assert advice.status_code == 503 and "advice was not started" in error(advice)["message"]
    assert not Job.objects.exists()


def test_imports_count_against_the_predictions_throttle(client_for, owner, tmp_path, settings):
    from rest_framework.throttling import ScopedRateThrottle

    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "predictions": "2/hour"}
    ScopedRateThrottle.THROTTLE_RATES, saved = rates, ScopedRateThrottle.THROTTLE_RATES
    try:
        client = client_for(owner)
        assert client.post("/api/v1/predictions/", {"runs": synthetic_runs(), "target_params": 3e10,
                                                    "target_tokens": 2e11}, format="json").status_code == 202
        assert client.post(IMPORTS, logs_body(tmp_path), format="multipart").status_code == 202
        refused = client.post(IMPORTS, logs_body(tmp_path, frame=curves(seed=1)), format="multipart")
        assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
        assert client.post(ADVICE, {"runs": synthetic_runs(), "target_params": 3e10, "target_tokens": 2e11,
                                    "budget_flops": 1e21}, format="json").status_code == 429
    finally:
        ScopedRateThrottle.THROTTLE_RATES = saved
    assert Job.objects.count() == 2


# --- updates --------------------------------------------------------------------------------------


@pytest.fixture
def first(owner):
    from planner.predictions.services import prediction_enqueue

    return prediction_enqueue(runs=in_progress(6e9), target_params=3e10, target_tokens=2e11, coverage=0.8,
                              created_by=owner)


def test_an_update_as_json_answers_202_with_a_linked_prediction(client_for, owner, first):
    response = client_for(owner).post(f"/api/v1/predictions/{first.pk}/updates/", {"runs": in_progress(1.2e10)},
                                      format="json")
    assert response.status_code == 202, response.content
    data = response.json()
    assert data["input"]["follows"] == first.pk and data["input"]["snapshots"] == [first.pk]
    assert data["input"]["update"]["rows_added"] == len(in_progress(1.2e10)) - len(in_progress(6e9))
    assert (data["input"]["target_params"], data["input"]["target_tokens"]) == (3e10, 2e11)


def test_an_update_as_a_runs_csv(client_for, owner, first):
    upload = SimpleUploadedFile("runs.csv", csv_of(in_progress(1.2e10)))
    response = client_for(owner).post(f"/api/v1/predictions/{first.pk}/updates/", {"file": upload},
                                      format="multipart")
    assert response.status_code == 202, response.content
    assert response.json()["input"]["filename"] == "runs.csv"


def test_an_update_from_logs_reuses_the_imports_options_and_sizes(client_for, owner, tmp_path):
    early = curves(planned_steps=8000)
    client = client_for(owner)
    created = client.post(IMPORTS, logs_body(tmp_path, early, params=params_csv(early, run_steps=20000)),
                          format="multipart").json()
    later = curves(planned_steps=14000)
    upload = SimpleUploadedFile("logs.zip", logs_zip(tmp_path, later, "later"))
    response = client.post(f"/api/v1/predictions/{created['id']}/updates/", {"logs": upload}, format="multipart")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert len(job.input["runs"]) == len(later) and {r["run_tokens"] for r in job.input["runs"]} == {2e10}
    assert job.input["tracker"]["options"]["tokens_per_step"] == TOKENS_PER_STEP


def test_an_update_with_nothing_new_is_a_400(client_for, owner, first):
    response = client_for(owner).post(f"/api/v1/predictions/{first.pk}/updates/", {"runs": in_progress(4e9)},
                                      format="json")
    assert response.status_code == 400 and error(response)["details"]["runs"][0].startswith("Nothing new")


def test_another_users_prediction_cannot_be_updated_and_answers_like_a_missing_one(client_for, stranger, first):
    client = client_for(stranger)
    theirs = client.post(f"/api/v1/predictions/{first.pk}/updates/", {"runs": in_progress(1.2e10)}, format="json")
    missing = client.post("/api/v1/predictions/999999/updates/", {"runs": in_progress(1.2e10)}, format="json")
    assert theirs.status_code == missing.status_code == 404
    assert error(theirs)["code"] == error(missing)["code"] == "not_found"
    assert Job.objects.count() == 1


# --- advice -----------------------------------------------------------------------------------------


def test_advice_from_a_prediction_and_a_plan_answers_202(client_for, owner, first):
    plan = Job.objects.create(kind=Job.Kind.PLAN, created_by=owner, input={"target_params": 3e10,
                                                                             "target_tokens": 2e11,
                                                                             "budget_flops": 5e21})
    response = client_for(owner).post(ADVICE, {"prediction": first.pk, "plan": plan.pk}, format="json")
    assert response.status_code == 202, response.content
    data = response.json()
    assert response["Location"] == data["url"] == f"http://testserver{ADVICE}{data['id']}/"
    assert data["page_url"] == f"http://testserver/advice/{data['id']}/"
    assert (data["kind"], data["input"]["prediction"], data["input"]["plan"]) == ("advice", first.pk, plan.pk)
    assert data["input"]["budget"]["plan_budget_flops"] == 5e21 and data["input"]["budget_flops"] < 5e21
    assert data["input"]["target_from"]["target_params"] == f"plan {plan.pk}"


def test_advice_from_json_runs_and_from_a_csv(client_for, owner):
    client = client_for(owner)
    body = {"target_params": 3e10, "target_tokens": 2e11, "budget_flops": 1e21, "max_runs": 2}
    assert client.post(ADVICE, {**body, "runs": synthetic_runs()}, format="json").status_code == 202
    upload = SimpleUploadedFile("runs.csv", csv_of(synthetic_runs()))
    response = client.post(ADVICE, {**body, "file": upload}, format="multipart")
    assert response.status_code == 202, response.content
    assert response.json()["input"]["filename"] == "runs.csv"
    listed = client.get(ADVICE).json()
    assert listed["count"] == 2 and {j["kind"] for j in listed["results"]} == {"advice"}


@pytest.mark.parametrize("body, field, message", [
    ({"target_params": 3e10, "target_tokens": 2e11}, "runs", "Send the runs so far"),
    ({"runs": "RUNS", "target_tokens": 2e11, "budget_flops": 1e21}, "target_params", "Give the target's params"),
    ({"runs": "RUNS", "target_params": 3e10, "target_tokens": 2e11, "budget_flops": 1e10}, "budget_flops",
     "1e+10 FLOPs affords no run"),
    ({"runs": "RUNS", "target_params": 3e10, "target_tokens": 2e11, "budget_flops": 1e21, "max_runs": 9},
     "max_runs", "Ensure this value is less than or equal to 3."),
    ({"prediction": 999999, "budget_flops": 1e21}, "prediction", "No prediction 999999 of yours."),
    ({"runs": "RUNS", "plan": 999999}, "plan", "No plan 999999 of yours."),
])
def test_bad_advice_requests_are_400s_naming_the_field(client_for, owner, body, field, message):
    body = {k: synthetic_runs() if v == "RUNS" else v for k, v in body.items()}
    response = client_for(owner).post(ADVICE, body, format="json")
    assert response.status_code == 400, response.content
    assert error(response)["details"][field][0].startswith(message), error(response)
    assert not Job.objects.filter(kind=Job.Kind.ADVICE).exists()


def test_another_users_advice_is_a_404_and_not_listed(client_for, stranger, finished_advice):
    client = client_for(stranger)
    assert client.get(f"{ADVICE}{finished_advice.pk}/").status_code == 404
    assert client.get(ADVICE).json()["count"] == 0


def test_a_finished_advice_has_the_advice_in_its_result(client_for, owner, finished_advice):
    data = client_for(owner).get(f"{ADVICE}{finished_advice.pk}/").json()
    assert data["status"] == "succeeded" and data["result"]["ranked_by"] == "own fit"
    assert data["result"]["runs"][0]["evaluate_every_tokens"] > 0 and "runs" not in data["input"]


# --- request limits -------------------------------------------------------------------------------


def test_bodies_over_the_upload_limit_are_413s_from_their_length_alone(client_for, client, owner, first):
    api = client_for(owner)
    client.force_login(owner)
    for sender, url in ((api, IMPORTS), (api, f"/api/v1/predictions/{first.pk}/updates/"), (api, ADVICE),
                        (client, "/predictions/import"), (client, f"/predictions/{first.pk}/update"),
                        (client, "/advice/new")):
        response = sender.generic("POST", url, b"", content_type="multipart/form-data; boundary=xx",
                                  CONTENT_LENGTH=str(10 << 30))
        assert response.status_code == 413, url
    assert Job.objects.count() == 1


def test_logs_are_read_no_further_than_the_upload_limit(client_for, owner, tmp_path, settings):
    settings.SCALEPLAN_MAX_UPLOAD_BYTES = 1000  # the zip is ~20 kB: under the limit plus the multipart allowance
    response = client_for(owner).post(IMPORTS, logs_body(tmp_path), format="multipart")
    assert response.status_code == 413
    assert "over the upload limit of 1000 bytes" in error(response)["message"]
    assert not Job.objects.exists()

"""/api/v1/predictions/: JSON and CSV uploads, auth, errors in the one shape, a real worker, the schema."""
import gzip

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from planner.models import Job
from tests.conftest import wait_for_job
from tests.planner.predictions.test_predictions import HEADER, csv_of, synthetic_runs

pytestmark = pytest.mark.django_db

URL = "/api/v1/predictions/"


def body(**overrides):
    return {"runs": synthetic_runs(), "target_params": 1e10, "target_tokens": 2e11, **overrides}


def upload(data: bytes, name="runs.csv"):
    return SimpleUploadedFile(name, data, content_type="text/csv")


def test_a_json_body_answers_202_with_a_queued_prediction_job(client_for, owner):
    response = client_for(owner).post(URL, body(coverage=0.9), format="json")

    assert response.status_code == 202, response.content
    data = response.json()
    assert response["Location"] == data["url"] == f"http://testserver{URL}{data['id']}/"
    assert type(response.headers["Location"]) is str
    assert (data["kind"], data["status"], data["created_by"]) == ("prediction", "queued", "owner")
    assert data["input"] == {"target_params": 1e10, "target_tokens": 2e11, "coverage": 0.9, "n_rows": 48}
    assert data["page_url"] == f"http://testserver/jobs/{data['id']}/" and data["plot_url"] is None
    job = Job.objects.get(pk=data["id"])
    assert len(job.input["runs"]) == 48 and job.input["runs"][0]["seed"] == ""


def test_a_csv_upload_answers_202_naming_the_family_and_metric(client_for, owner):
    data = gzip.compress(csv_of(synthetic_runs()))
    response = client_for(owner).post(
        URL, {"file": upload(data, "runs.csv.gz"), "target_params": "1e10", "target_tokens": "1e11, 2e11"},
        format="multipart",
    )

    assert response.status_code == 202, response.content
    assert response.json()["input"] == {
        "target_params": 1e10, "target_tokens": [1e11, 2e11], "coverage": 0.8, "n_rows": 48,
        "family": "mine", "metric": "val_loss", "filename": "runs.csv.gz",
    }


def test_it_requires_a_token(client_for):
    response = client_for(None).post(URL, body(), format="json")
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"
    assert not Job.objects.exists()


def test_bad_runs_get_400_naming_the_run_and_field(client_for, owner):
    runs = synthetic_runs()
    runs[2]["value"] = -3
    del runs[4]["tokens"]

    response = client_for(owner).post(URL, body(runs=runs), format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    # Only the bad runs, by their index in the list.
    assert error["details"] == {"runs": {"2": {"value": ["Must be a positive, finite number."]},
                                         "4": {"tokens": ["This field is required."]}}}
    assert not Job.objects.exists()


@pytest.mark.parametrize("overrides, field, message", [
    ({"target_params": -1}, "target_params", "Must be a positive, finite number."),
    ({"target_tokens": [1e11, "x"]}, "target_tokens", "Expected a positive number or a list of positive numbers; got 'x'."),
    ({"coverage": 1.5}, "coverage", "Ensure this value is less than or equal to 0.99."),
    ({"runs": []}, "runs", "This list may not be empty."),
])
def test_bad_targets_get_400_naming_the_field(client_for, owner, overrides, field, message):
    response = client_for(owner).post(URL, body(**overrides), format="json")
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert details[field] == [message] or details[field] == {"non_field_errors": [message]}
    assert not Job.objects.exists()


def test_a_csv_with_several_families_gets_400_naming_them(client_for, owner):
    beta = [{**r, "model": "b-" + r["model"]} for r in synthetic_runs()[:3]]
    data = csv_of(synthetic_runs()[:3], family="alpha") + csv_of(beta, family="beta")[len(HEADER):]

    response = client_for(owner).post(URL, {"file": upload(data), "target_params": 1e10, "target_tokens": 1e11},
                                      format="multipart")

    assert response.status_code == 400
    [message] = response.json()["error"]["details"]["file"]
    assert "2 families (alpha, beta)" in message


def test_a_csv_breaking_the_format_gets_400_with_line_and_column(client_for, owner):
    data = csv_of(synthetic_runs()[:4]).replace(b"val_loss,", b"val_loss,oops,", 1)

    response = client_for(owner).post(URL, {"file": upload(data), "target_params": 1e10, "target_tokens": 1e11},
                                      format="multipart")

    assert response.status_code == 400
    problems = response.json()["error"]["details"]["problems"]
    assert problems[0]["line"] == 2 and problems[0]["column"]


def test_an_unknown_metric_gets_400_on_the_metric_field(client_for, owner):
    response = client_for(owner).post(
        URL, {"file": upload(csv_of(synthetic_runs())), "metric": "ppl", "target_params": 1e10, "target_tokens": 1e11},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"metric": ["The file has no rows of metric 'ppl'; it has val_loss."]}


def test_a_missing_file_in_a_multipart_request_gets_400(client_for, owner):
    response = client_for(owner).post(URL, {"target_params": 1e10, "target_tokens": 1e11}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"file": ["No file was submitted."]}


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_broker_answers_503_and_creates_nothing(client_for, owner, unreachable_broker):
    response = client_for(owner).post(URL, body(), format="json")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "service_unavailable" and "prediction was not started" in error["message"]
    assert not Job.objects.exists()


def test_detail_shows_the_result_to_its_owner_only(client_for, owner, stranger, staff):
    job = Job.objects.create(kind=Job.Kind.PREDICTION, status=Job.Status.SUCCEEDED, created_by=owner,
                             input={"runs": [], "target_params": 1e10}, result={"prediction": 2.5})
    url = f"{URL}{job.pk}/"

    mine = client_for(owner).get(url)
    assert mine.status_code == 200
    assert mine.json()["result"] == {"prediction": 2.5}
    assert mine.json()["plot_url"] == f"http://testserver/predictions/{job.pk}/plot.png"
    assert "runs" not in mine.json()["input"]
    assert client_for(staff).get(url).status_code == 200
    # Exactly like a missing one (issue 11 #13): its URL from Location answers another user 404.
    theirs, missing = client_for(stranger).get(url), client_for(stranger).get(f"{URL}{job.pk + 1000}/")
    assert theirs.status_code == missing.status_code == 404 and theirs.json() == missing.json()
    assert client_for(None).get(url).status_code == 401


def test_detail_is_404_for_a_job_of_another_kind(client_for, owner):
    job = Job.objects.create(kind=Job.Kind.CORPUS_STATS, created_by=owner)
    response = client_for(owner).get(f"{URL}{job.pk}/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_the_schema_documents_both_request_types_and_examples(api_client):
    schema = api_client.get("/api/v1/schema/?format=json").json()
    post = schema["paths"]["/api/v1/predictions/"]["post"]
    assert {"application/json", "multipart/form-data"} <= set(post["requestBody"]["content"])
    assert post["requestBody"]["content"]["application/json"]["examples"]
    assert {"202", "400", "401", "503"} <= set(post["responses"])
    assert "get" in schema["paths"]["/api/v1/predictions/{id}/"]


@pytest.mark.worker
def test_a_real_worker_takes_a_prediction_from_queued_to_succeeded(celery_worker_process, client_for, owner):
    response = client_for(owner).post(URL, body(target_tokens=[1e11, 2e11]), format="json")
    assert response.status_code == 202
    assert response.json()["status"] == "queued"

    job = wait_for_job(response.json()["id"], timeout=60)

    assert job.status == "succeeded", (job.error, celery_worker_process.log())
    assert job.progress == 1.0 and job.progress_message == "done"
    data = client_for(owner).get(f"{URL}{job.pk}/").json()
    result = data["result"]
    assert len(result["prediction"]) == 2 and result["diagnostics"] == []
    assert all(lo < p < hi for lo, p, hi in zip(result["lower"], result["prediction"], result["upper"]))
    assert data["plot_url"].endswith(f"/predictions/{job.pk}/plot.png")


def test_repeated_target_tokens_in_a_form_make_a_curve_and_other_repeated_fields_are_refused(client_for, owner):
    data = csv_of(synthetic_runs())
    response = client_for(owner).post(URL, {"file": upload(data), "target_params": 1e10,
                                            "target_tokens": [1e11, 3e11]}, format="multipart")
    assert response.status_code == 202, response.content
    assert Job.objects.get().input["target_tokens"] == [1e11, 3e11]  # both, not only the last

    response = client_for(owner).post(URL, {"file": upload(data), "target_params": [1e10, 2e10],
                                            "target_tokens": 1e11}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"target_params": ["Given more than once; send one value."]}


def test_json_runs_follow_the_importers_value_rules(client_for, owner):
    # Issue 11 #7: each of these was accepted by the prediction API while the importer refused it.
    base = {"model": "m1", "params": 1.25e8, "tokens": 2e10, "value": 3.05}
    cases = [
        ([{**base, "epochs": -5}], "runs[0].epochs: must be a finite number >= 0"),
        ([base, {**base, "params": 2.5e8, "tokens": 3e10}], "runs[1].params: model 'm1' has params"),
        ([base, {**base, "value": 3.2}], "runs[1].value: duplicate of runs[0]"),
        ([{**base, "params": 1e308, "tokens": 1e308}], "runs[0].params: is too large"),
    ]
    for runs, message in cases:
        response = client_for(owner).post(URL, body(runs=runs), format="json")
        assert response.status_code == 400, response.content
        details = response.json()["error"]["details"]["runs"]
        assert any(message in d for d in details), (message, details)
    assert not Job.objects.exists()


def test_a_runs_csv_needs_only_model_params_tokens_value(client_for, owner):
    lines = ["model,params,tokens,value,run_tokens"] + [
        f"{r['model']},{int(r['params'])},{r['tokens']},{r['value']}," for r in synthetic_runs()]
    response = client_for(owner).post(URL, {"file": upload("\n".join(lines).encode()), "target_params": "1e10",
                                            "target_tokens": "2e11"}, format="multipart")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert len(job.input["runs"]) == len(synthetic_runs()) and job.input["metric"] == ""

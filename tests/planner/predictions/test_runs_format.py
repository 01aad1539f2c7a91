"""The runs format of CORPUS_FORMAT.md "Runs for a prediction" over HTTP and in the job: 4 columns are enough,
the optional columns are kept, other metrics are counted not dropped, unknown keys are refused, one size is
said, and a prediction needs no error model."""
import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from planner.errormodels.models import ErrorModelArtifact
from planner.jobs.services import job_claim, job_succeed
from planner.models import Job
from planner.predictions.services import prediction_run
from tests.planner.predictions.test_predictions import synthetic_runs

pytestmark = pytest.mark.django_db

URL = "/api/v1/predictions/"


@pytest.fixture
def no_enqueue(monkeypatch):
    from planner.jobs import services as jobs

    monkeypatch.setattr(jobs, "_enqueue", lambda job_id: None)


def run_job(job_id):
    """The job's runner in this process (the worker's path: claim, run, store)."""
    job = job_claim(job_id=job_id, worker="test")
    assert job_succeed(job_id=job_id, result=prediction_run(job=job, progress=lambda *a: None))


def four_columns(runs) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["model", "params", "tokens", "value"])
    for r in runs:
        writer.writerow([r["model"], int(r["params"]), f"{r['tokens']:.6g}", f"{r['value']:.6f}"])
    return out.getvalue().encode()


def upload(data: bytes, name="runs.csv"):
    return SimpleUploadedFile(name, data, content_type="text/csv")


def test_a_four_column_csv_is_a_202_without_any_error_model(client_for, owner, no_enqueue):
    assert not ErrorModelArtifact.objects.exists()
    response = client_for(owner).post(URL, {"file": upload(four_columns(synthetic_runs())), "target_params": "1e10",
                                            "target_tokens": "2e11"}, format="multipart")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert len(job.input["runs"]) == 48 and set(job.input["runs"][0]) == {"model", "params", "tokens", "value", "seed"}

    run_job(job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    # Without an error model the interval says what it is made of, and what it lacks.
    assert "no error model built yet" in job.result["interval"]["from"]
    assert job.result["expected_are"] is None


def test_the_optional_columns_are_kept_run_tokens_included(client_for, owner, no_enqueue):
    runs = synthetic_runs(sizes=(1e8, 3e8, 1e9))
    for i, r in enumerate(runs):
        r.update(step=i + 1, run_tokens=4e10, family="mine", metric="val_loss", seed="1", epochs=1.0)
    response = client_for(owner).post(URL, {"runs": runs, "target_params": 1e10, "target_tokens": 2e11},
                                      format="json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    stored = job.input["runs"][0]
    assert stored["run_tokens"] == 4e10 and stored["step"] == 1 and stored["seed"] == "1" and stored["epochs"] == 1.0
    assert (job.input["family"], job.input["metric"]) == ("mine", "val_loss")

    run_job(job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error


@pytest.mark.parametrize("how", ["json", "csv"])
def test_rows_of_other_metrics_are_counted_in_the_result_not_dropped_silently(client_for, owner, no_enqueue, how):
    runs = [{**r, "metric": "val_loss"} for r in synthetic_runs()]
    runs += [{**r, "metric": "train_loss", "value": r["value"] * 0.98} for r in synthetic_runs()[:10]]
    runs += [{**r, "metric": "accuracy", "value": 0.5} for r in synthetic_runs()[:3]]
    if how == "json":
        request = {"runs": runs, "target_params": 1e10, "target_tokens": 2e11}
        response = client_for(owner).post(URL, request, format="json")
    else:
        out = io.StringIO()
        writer = csv.DictWriter(out, ["model", "params", "tokens", "value", "metric"], lineterminator="\n")
        writer.writeheader()
        writer.writerows({**r, "params": int(r["params"])} for r in runs)
        response = client_for(owner).post(URL, {"file": upload(out.getvalue().encode()), "target_params": "1e10",
                                                "target_tokens": "2e11"}, format="multipart")
    assert response.status_code == 202, response.content
    assert response.json()["input"]["other_metrics"] == {"accuracy": 3, "train_loss": 10}
    job = Job.objects.get(pk=response.json()["id"])
    assert job.input["metric"] == "val_loss" and len(job.input["runs"]) == 48

    run_job(job.pk)
    job.refresh_from_db()
    assert job.result["data"]["metric"] == "val_loss"
    assert job.result["data"]["other_metrics"] == {"accuracy": 3, "train_loss": 10}
    [note] = [d for d in job.result["diagnostics"] if d["code"] == "other_metrics"]
    assert "13 row(s) of other metrics" in note["message"] and "train_loss: 10" in note["message"]


def test_a_named_metric_is_fitted_and_the_loss_rows_counted(client_for, owner, no_enqueue):
    runs = [{**r, "metric": "val_loss"} for r in synthetic_runs()] + [
        {**r, "metric": "train_loss"} for r in synthetic_runs()]
    response = client_for(owner).post(URL, {"runs": runs, "metric": "train_loss", "target_params": 1e10,
                                            "target_tokens": 2e11}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["input"]["metric"] == "train_loss"
    assert response.json()["input"]["other_metrics"] == {"val_loss": 48}


@pytest.mark.parametrize("request_body, field, says", [
    ({"target_param": 1e10}, "target_param", "Unknown field 'target_param'"),
    ({"coverge": 0.9}, "coverge", "Unknown field 'coverge'"),
])
def test_an_unknown_key_is_a_400_naming_it(client_for, owner, no_enqueue, request_body, field, says):
    body = {"runs": synthetic_runs(), "target_params": 1e10, "target_tokens": 2e11, **request_body}
    response = client_for(owner).post(URL, body, format="json")
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert says in details[field][0], details
    assert not Job.objects.exists()


def test_an_unknown_key_in_a_run_is_a_400_naming_the_run_and_the_key(client_for, owner, no_enqueue):
    runs = synthetic_runs()
    runs[3]["lr"] = 3e-4
    runs[7]["lr"] = 3e-4
    response = client_for(owner).post(URL, {"runs": runs, "target_params": 1e10, "target_tokens": 2e11},
                                      format="json")
    assert response.status_code == 400
    [message] = response.json()["error"]["details"]["runs"]
    assert message.startswith("runs[3].lr: unknown field 'lr'; a run takes model, params, tokens, value"), message
    assert not Job.objects.exists()


def test_an_unknown_form_field_of_an_upload_is_a_400_naming_it(client_for, owner, no_enqueue):
    response = client_for(owner).post(URL, {"file": upload(four_columns(synthetic_runs())), "target_params": "1e10",
                                            "target_tokens": "2e11", "metrc": "val_loss"}, format="multipart")
    assert response.status_code == 400
    assert "metrc" in response.json()["error"]["details"]


def test_a_single_size_says_its_size_term_is_not_identified_and_shows_the_formula_used(client_for, owner,
                                                                                       no_enqueue):
    runs = synthetic_runs(sizes=(3e8,))
    response = client_for(owner).post(URL, {"runs": runs, "target_params": 1e10, "target_tokens": 2e11},
                                      format="json")
    assert response.status_code == 202
    job = Job.objects.get()
    run_job(job.pk)
    job.refresh_from_db()
    formula = job.result["law"]["formula"]
    assert "N" not in formula  # the law actually used has no size term
    [single] = [d for d in job.result["diagnostics"] if d["code"] == "single_size"]
    assert "size term is not identified" in single["message"] and formula in single["message"]
    assert "few_sizes" not in {d["code"] for d in job.result["diagnostics"]}

    client = client_for(owner)
    client.force_login(owner)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert f"L(N, D) = {formula}" not in page and f"= {formula}</code>" in page
    assert "size term is not identified" in page


def test_predictions_are_listed_for_their_owner_paginated_and_all_for_staff(client_for, owner, stranger, staff,
                                                                            no_enqueue):
    for user in (owner, owner, stranger):
        client_for(user).post(URL, {"runs": synthetic_runs(), "target_params": 1e10, "target_tokens": 2e11},
                              format="json")
    Job.objects.create(kind=Job.Kind.PLAN, created_by=owner, input={})  # not a prediction
    mine = client_for(owner).get(URL)
    assert mine.status_code == 200
    body = mine.json()
    assert body["count"] == 2 and {j["created_by"] for j in body["results"]} == {"owner"}
    assert all(j["kind"] == "prediction" and "runs" not in j["input"] for j in body["results"])
    assert client_for(owner).get(URL, {"page_size": 1}).json()["next"]
    assert client_for(staff).get(URL).json()["count"] == 3
    assert client_for(owner).get(URL, {"status": "queued"}).json()["count"] == 2
    assert client_for(None).get(URL).status_code == 401


def test_the_form_takes_a_pasted_four_column_csv(client, owner, no_enqueue):
    client.force_login(owner)
    response = client.post("/predictions/new", {"csv_text": four_columns(synthetic_runs()).decode(),
                                                "target_params": "1e10", "target_tokens": "2e11", "coverage": "0.8"})
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert len(job.input["runs"]) == 48

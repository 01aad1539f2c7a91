"""API: /api/v1/plans/, /api/v1/sweeps/, /api/v1/error-model/ - access, 202 + Location, 400 naming the field, 409."""
import pytest

from planner.models import Job
from tests.planner.plans.test_plans import REQUEST, error_model  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_enqueue(monkeypatch):
    """Jobs are created but no task is sent (these tests check the API, not the worker)."""
    from planner.jobs import services as jobs

    sent = []
    monkeypatch.setattr(jobs, "_enqueue", sent.append)
    return sent


def test_posting_a_plan_answers_202_with_the_job_and_its_location(client_for, owner, error_model, no_enqueue,
                                                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(owner).post("/api/v1/plans/", REQUEST, format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    job = Job.objects.get()
    assert (job.kind, job.created_by, job.input["target_params"]) == ("plan", owner, 7e9)
    assert response["Location"] == body["url"] == f"http://testserver/api/v1/plans/{job.pk}/"
    assert body["status"] == "queued" and body["page_url"].endswith(f"/plans/{job.pk}/")
    assert body["input"]["budget_fraction"] == 0.05
    assert no_enqueue == [job.pk]


def test_posting_a_plan_needs_a_token(client_for, error_model):
    response = client_for(None).post("/api/v1/plans/", REQUEST, format="json")
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("change, field", [
    ({"target_params": 0}, "target_params"),
    ({"target_params": "seven"}, "target_params"),
    ({"target_tokens": None}, "target_tokens"),
    ({"budget_fraction": 1.5}, "budget_fraction"),
    ({"max_size": 9e9}, "max_size"),
    ({"max_models": 0}, "max_models"),
    ({"budget_fraction": None, "budget_flops": 1e3}, "budget_flops"),
])
def test_an_impossible_plan_is_a_400_naming_the_field(client_for, owner, error_model, no_enqueue, change, field):
    response = client_for(owner).post("/api/v1/plans/", {**REQUEST, **change}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["details"], error
    assert not Job.objects.exists()


@pytest.mark.parametrize("change, field, says", [
    # Issue 11 #8: reported under min_size, a message ending mid-sentence, an unbounded max_epochs.
    ({"target_params": True}, "target_params", "A valid number is required."),
    ({"target_params": 5e-324}, "target_params", "is too small to plan for"),
    ({"target_params": 1e6}, "target_params", "is too small to plan for"),
    ({"target_params": 1e300}, "target_params", "must be at most 4.61e+18"),
    ({"target_params": 4e18, "target_tokens": 1e300}, "target_tokens",
     "beyond what a floating-point number can hold (about 1.8e308)"),
    ({"max_epochs": 1e308}, "max_epochs", "less than or equal to 10000"),
])
def test_odd_plan_inputs_are_reported_under_their_own_field_in_whole_sentences(
        client_for, owner, error_model, no_enqueue, change, field, says):  # noqa: F811
    response = client_for(owner).post("/api/v1/plans/", {**REQUEST, **change}, format="json")
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert list(details) == [field], details
    assert says in details[field][0] and not details[field][0].endswith(("with", "computed")), details


@pytest.mark.parametrize("change, fields", [
    ({"budget_flops": 1e20}, {"budget_flops", "budget_fraction"}),
    ({"target_compute": 6e21}, {"target_tokens", "target_compute"}),
])
def test_conflicting_fields_are_a_400_naming_both(client_for, owner, error_model, no_enqueue, change, fields):
    response = client_for(owner).post("/api/v1/plans/", {**REQUEST, **change}, format="json")
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert set(details) == fields, details
    for name in fields:
        assert "not both" in details[name][0] and all(f in details[name][0] for f in fields)
    assert not Job.objects.exists()


@pytest.mark.parametrize("change, key", [({"budget_fractoin": 0.05}, "budget_fractoin"), ({"max_model": 4}, "max_model")])
def test_an_unknown_key_is_a_400_naming_it(client_for, owner, error_model, no_enqueue, change, key):
    response = client_for(owner).post("/api/v1/plans/", {**REQUEST, **change}, format="json")
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert list(details) == [key] and f"Unknown field {key!r}" in details[key][0], details
    assert "target_params" in details[key][0]  # and what the request takes
    assert not Job.objects.exists()


@pytest.mark.parametrize("change, fields", [
    ({"budget_flops": 1e20}, {"budget_flops", "budget_fraction"}),
    ({"tagret_params": 7e9}, {"tagret_params"}),
])
def test_bad_input_is_a_400_before_the_error_model_is_looked_up(client_for, owner, no_enqueue, change, fields):
    # No error model: still a 400 naming the fields, not a 409.
    response = client_for(owner).post("/api/v1/plans/", {**REQUEST, **change}, format="json")
    assert response.status_code == 400 and set(response.json()["error"]["details"]) == fields


def test_planning_without_an_error_model_is_a_409_saying_what_to_do(client_for, owner, no_enqueue):
    response = client_for(owner).post("/api/v1/plans/", REQUEST, format="json")
    assert response.status_code == 409
    assert response.json()["error"] == {"code": "no_error_model", "message": "no error model yet: POST /api/v1/sweeps/ first",
                                        "details": {}}
    assert not Job.objects.exists()


def test_while_an_error_model_is_being_built_the_409_says_how_far_it_is(client_for, owner, no_enqueue):
    sweep = Job.objects.create(kind=Job.Kind.SWEEP, status="running", progress=0.4,
                               progress_message="16 of 40 families swept")
    response = client_for(owner).post("/api/v1/plans/", REQUEST, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["details"] == {"rebuild": {"job": sweep.pk, "status": "running", "progress": 0.4,
                                                               "message": "16 of 40 families swept"}}


def test_users_list_and_read_their_own_plans_only(client_for, owner, stranger, staff, error_model, no_enqueue):
    mine = client_for(owner).post("/api/v1/plans/", REQUEST, format="json").json()
    client_for(stranger).post("/api/v1/plans/", REQUEST, format="json")
    Job.objects.create(kind=Job.Kind.CORPUS_STATS, created_by=owner)
    listed = client_for(owner).get("/api/v1/plans/").json()
    assert [p["id"] for p in listed["results"]] == [mine["id"]]
    assert client_for(staff).get("/api/v1/plans/").json()["count"] == 2
    assert client_for(owner).get(f"/api/v1/plans/{mine['id']}/").status_code == 200
    assert client_for(stranger).get(f"/api/v1/plans/{mine['id']}/").status_code == 404  # like a missing one
    assert client_for(staff).get(f"/api/v1/plans/{mine['id']}/").status_code == 200


def test_a_non_plan_job_is_not_a_plan(client_for, owner):
    job = Job.objects.create(kind=Job.Kind.CORPUS_STATS, created_by=owner)
    assert client_for(owner).get(f"/api/v1/plans/{job.pk}/").status_code == 404


def test_staff_start_a_sweep_and_read_its_progress(client_for, staff, no_enqueue):
    from planner.models import Family

    for name in ("a", "b", "c"):
        Family.objects.create(name=name)
    response = client_for(staff).post("/api/v1/sweeps/", {"families": ["a", "b", "c"]}, format="json")
    assert response.status_code == 202
    job = Job.objects.get()
    assert (job.kind, job.input) == ("sweep", {"families": ["a", "b", "c"]})
    assert response["Location"].endswith(f"/api/v1/sweeps/{job.pk}/")
    Job.objects.filter(pk=job.pk).update(status="running", progress=0.3, progress_message="1 of 3 families swept")
    body = client_for(staff).get(f"/api/v1/sweeps/{job.pk}/").json()
    assert (body["status"], body["progress"], body["message"]) == ("running", 0.3, "1 of 3 families swept")
    assert client_for(staff).get("/api/v1/sweeps/").json()["count"] == 1


def test_a_sweep_over_all_families_needs_no_body(client_for, staff, no_enqueue):
    assert client_for(staff).post("/api/v1/sweeps/", {}, format="json").status_code == 202
    assert Job.objects.get().input == {"families": None}


def test_only_staff_start_sweeps(client_for, owner, no_enqueue):
    assert client_for(owner).post("/api/v1/sweeps/", {}, format="json").status_code == 403
    assert client_for(None).post("/api/v1/sweeps/", {}, format="json").status_code == 401
    assert not Job.objects.exists()


def test_a_sweep_over_unknown_or_too_few_families_is_a_400(client_for, staff, no_enqueue):
    response = client_for(staff).post("/api/v1/sweeps/", {"families": ["x", "y", "z"]}, format="json")
    assert response.status_code == 400 and "Unknown families: x, y, z." in response.json()["error"]["details"]["families"]
    response = client_for(staff).post("/api/v1/sweeps/", {"families": ["x"]}, format="json")
    assert response.status_code == 400 and "families" in response.json()["error"]["details"]
    assert not Job.objects.exists()


def test_the_error_model_endpoint_shows_the_active_version_and_its_validation(api_client, error_model):
    body = api_client.get("/api/v1/error-model/").json()
    assert body["version"] == error_model.version
    assert set(body["validation"]) >= {"coverage", "median_abs_log_ratio", "families", "cases"}
    assert body["trained_on"]["families"] == 3
    assert "created_at" in body


def test_the_error_model_endpoint_is_a_404_before_any_rebuild(api_client):
    response = api_client.get("/api/v1/error-model/")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "no error model yet: POST /api/v1/sweeps/ first"


def test_the_schema_documents_plans_with_examples(api_client):
    schema = api_client.get("/api/v1/schema/?format=json").json()
    post = schema["paths"]["/api/v1/plans/"]["post"]
    assert {"202", "400", "401", "409"} <= set(post["responses"])
    assert post["requestBody"]["content"]["application/json"]["examples"]
    assert schema["paths"]["/api/v1/plans/{id}/"]["get"]["responses"]["200"]["content"]["application/json"]["examples"]
    assert {"/api/v1/sweeps/", "/api/v1/sweeps/{id}/", "/api/v1/error-model/"} <= set(schema["paths"])


@pytest.mark.django_db(transaction=True)
def test_a_succeeded_plan_links_its_files_figures_and_prediction_form(client_for, owner, stranger, error_model):
    import json

    from fits import plan_csv, prediction_template_csv
    from planner.jobs.tasks import run_job

    job = Job.objects.create(kind=Job.Kind.PLAN, created_by=owner, input=REQUEST)
    queued = client_for(owner).get(f"/api/v1/plans/{job.pk}/").json()
    assert queued["downloads"] is None and queued["figures"] is None and queued["prediction_form_url"] is None
    assert queued["queue"] == {"ahead": 0, "running": 0, "message": queued["queue"]["message"]}
    assert client_for(owner).get(f"/api/v1/plans/{job.pk}/plan.csv").status_code == 404
    run_job.apply(args=[job.pk])
    job.refresh_from_db()

    body = client_for(owner).get(f"/api/v1/plans/{job.pk}/").json()
    base = f"http://testserver/api/v1/plans/{job.pk}"
    assert body["downloads"] == {"json": f"{base}/plan.json", "csv": f"{base}/plan.csv",
                                 "prediction_template": f"{base}/prediction-template.csv"}
    assert set(body["figures"]) == {"isoflop", "frontier", "sizes"} and body["queue"] is None
    assert body["prediction_form_url"].startswith("http://testserver/predictions/new?plan=")
    # The warnings carry stable codes.
    assert all(set(w) >= {"code", "message"} for w in body["result"]["warnings"])

    client = client_for(owner)
    response = client.get(body["downloads"]["csv"], HTTP_ACCEPT="text/csv")
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.content.decode() == plan_csv(job.result)
    response = client.get(body["downloads"]["prediction_template"])
    assert response.content.decode() == prediction_template_csv(job.result)
    assert json.loads(client.get(body["downloads"]["json"]).content) == job.result
    missing = client.get(f"{base}/other.csv")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert client_for(stranger).get(body["downloads"]["csv"]).status_code == 404
    assert client_for(None).get(body["downloads"]["csv"]).status_code == 401


def test_warnings_carry_stable_codes_in_the_api(client_for, owner, error_model):  # noqa: F811
    from planner.plans.services import plan_run

    job = Job.objects.create(kind=Job.Kind.PLAN, created_by=owner,
                             input={"target_params": 7e9, "target_tokens": 1.4e11, "budget_flops": 2e22})
    result = plan_run(job=job, progress=lambda *a: None)
    Job.objects.filter(pk=job.pk).update(status="succeeded", result=result)
    warnings = client_for(owner).get(f"/api/v1/plans/{job.pk}/").json()["result"]["warnings"]
    assert "budget_exceeds_target" in [w["code"] for w in warnings]

"""Jobs API and stats refresh: who sees which job, cancel, 202 + Location."""
import pytest

from planner.models import Job

pytestmark = pytest.mark.django_db


def job_of(user, **kw):
    return Job.objects.create(kind=Job.Kind.CORPUS_STATS, input={"families": None}, created_by=user, **kw)


def test_it_requires_authentication_for_jobs(client_for, owner):
    job = job_of(owner)
    for response in (
        client_for(None).get("/api/v1/jobs/"),
        client_for(None).get(f"/api/v1/jobs/{job.pk}/"),
        client_for(None).post(f"/api/v1/jobs/{job.pk}/cancel/"),
    ):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"
        assert response["WWW-Authenticate"] == "Token"


def test_it_rejects_a_wrong_token(api_client, owner):
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = api_client.get("/api/v1/jobs/")
    assert response.status_code == 401
    assert response.json()["error"] == {"code": "authentication_failed", "message": "Invalid token.", "details": {}}


def test_users_list_their_own_jobs_and_staff_list_all(client_for, owner, stranger, staff):
    mine, theirs = job_of(owner), job_of(stranger)
    ids = lambda user: [j["id"] for j in client_for(user).get("/api/v1/jobs/").json()["results"]]  # noqa: E731
    assert ids(owner) == [mine.pk]
    assert ids(stranger) == [theirs.pk]
    assert sorted(ids(staff)) == sorted([mine.pk, theirs.pk])


def test_jobs_list_filters_by_kind_and_status(client_for, staff, owner):
    job_of(owner, status="failed")
    done = job_of(owner, status="succeeded")
    body = client_for(staff).get("/api/v1/jobs/?status=succeeded&kind=corpus_stats").json()
    assert [j["id"] for j in body["results"]] == [done.pk]


def test_job_detail_shows_status_progress_message_result_and_error(client_for, owner):
    job = job_of(owner, status="running", progress=0.25, progress_message="family 1/4: tiny", attempts=1)
    body = client_for(owner).get(f"/api/v1/jobs/{job.pk}/").json()
    assert {k: body[k] for k in ("id", "kind", "status", "progress", "message", "result", "error", "created_by")} == {
        "id": job.pk, "kind": "corpus_stats", "status": "running", "progress": 0.25,
        "message": "family 1/4: tiny", "result": None, "error": "", "created_by": "owner",
    }
    assert body["cancel_url"].endswith(f"/api/v1/jobs/{job.pk}/cancel/")


def test_job_detail_hides_the_server_side_upload_path(client_for, staff):
    job = Job.objects.create(
        kind=Job.Kind.CORPUS_IMPORT, created_by=staff,
        input={"path": "/srv/data/uploads/abc.csv", "filename": "mine.csv", "size": 10, "skip_invalid": True,
               "replace": False},
    )
    body = client_for(staff).get(f"/api/v1/jobs/{job.pk}/").json()
    assert body["input"] == {"filename": "mine.csv", "size": 10, "skip_invalid": True, "replace": False}


def test_another_users_job_answers_exactly_like_a_missing_one_but_staff_may_see_it(client_for, owner, stranger, staff):
    # Issue 11 #13: a 403 told that the id exists, so ids were enumerable.
    job = job_of(owner)
    response = client_for(stranger).get(f"/api/v1/jobs/{job.pk}/")
    missing = client_for(stranger).get(f"/api/v1/jobs/{job.pk + 1000}/")
    assert response.status_code == missing.status_code == 404
    assert response.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
    assert response.json()["error"]["message"] == missing.json()["error"]["message"]
    assert client_for(stranger).post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 404
    assert client_for(staff).get(f"/api/v1/jobs/{job.pk}/").status_code == 200


def test_a_job_without_an_owner_is_staff_only(client_for, owner, staff):
    job = job_of(None)
    assert client_for(owner).get(f"/api/v1/jobs/{job.pk}/").status_code == 404
    assert client_for(staff).get(f"/api/v1/jobs/{job.pk}/").status_code == 200


def test_a_missing_job_is_404(client_for, owner):
    response = client_for(owner).get("/api/v1/jobs/424242/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_the_owner_cancels_a_queued_job(client_for, owner):
    job = job_of(owner)
    response = client_for(owner).post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled" and response.json()["cancel_url"] is None
    job.refresh_from_db()
    assert job.status == "cancelled"


def test_cancelling_a_finished_job_is_a_conflict(client_for, owner):
    job = job_of(owner, status="succeeded")
    response = client_for(owner).post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert "already succeeded" in response.json()["error"]["message"]


def test_stats_refresh_needs_a_token(client_for):
    assert client_for(None).post("/api/v1/stats/refresh/", {}, format="json").status_code == 401


def test_stats_refresh_answers_202_with_the_job_to_poll(client_for, owner, staff, corpus):
    response = client_for(staff).post("/api/v1/stats/refresh/", {"families": ["tiny"]}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert response["Location"] == body["url"]
    assert type(response.headers["Location"]) is str  # WSGI servers accept nothing else
    job = Job.objects.get(pk=body["id"])
    assert (job.kind, job.status, job.input, job.created_by) == ("corpus_stats", "queued", {"families": ["tiny"]}, staff)


def test_stats_refresh_of_all_families(client_for, owner, staff, corpus):
    response = client_for(staff).post("/api/v1/stats/refresh/", {}, format="json")
    assert response.status_code == 202
    assert Job.objects.get(pk=response.json()["id"]).input == {"families": None}


def test_it_rejects_a_stats_refresh_of_unknown_families(client_for, owner, staff, corpus):
    response = client_for(staff).post("/api/v1/stats/refresh/", {"families": ["tiny", "nope"]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"families": ["Unknown families: nope."]}
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_broker_answers_503_and_creates_nothing(client_for, owner, staff, unreachable_broker):
    response = client_for(staff).post("/api/v1/stats/refresh/", {}, format="json")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error == {"code": "service_unavailable", "details": {"retry_after_seconds": 30},
                     "message": "The task queue is unreachable, so the statistics refresh was not started and "
                                "nothing was saved; try again in a minute."}
    assert response["Retry-After"] == "30"
    assert not Job.objects.exists()


def test_a_normal_user_may_not_refresh_the_stats_and_is_told_why(client_for, owner, corpus):
    response = client_for(owner).post("/api/v1/stats/refresh/", {}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["message"].startswith("Only staff users may refresh the corpus statistics")
    assert not Job.objects.exists()


def test_twenty_rapid_stats_refreshes_by_a_normal_user_start_no_job(client_for, owner, corpus):
    # Issue 11 #4's bar: at most 5 refresh jobs (403/429 refused, or coalesced onto the job in flight).
    client = client_for(owner)
    codes = [client.post("/api/v1/stats/refresh/", {}, format="json").status_code for _ in range(20)]
    assert codes == [403] * 20
    assert Job.objects.filter(kind="corpus_stats").count() == 0


def test_stats_refreshes_of_the_same_families_coalesce_onto_the_job_in_flight(client_for, staff, corpus):
    client = client_for(staff)
    first = client.post("/api/v1/stats/refresh/", {}, format="json").json()
    again = [client.post("/api/v1/stats/refresh/", {}, format="json") for _ in range(19)]
    assert {r.status_code for r in again} == {202} and {r.json()["id"] for r in again} == {first["id"]}
    assert {r["Location"] for r in again} == {first["url"]}
    other = client.post("/api/v1/stats/refresh/", {"families": ["tiny"]}, format="json").json()
    assert other["id"] != first["id"]  # another scope, another job
    Job.objects.filter(pk=first["id"]).update(status="succeeded")
    after = client.post("/api/v1/stats/refresh/", {}, format="json").json()
    assert after["id"] not in (first["id"], other["id"])  # the first is done: a new refresh starts
    assert Job.objects.filter(kind="corpus_stats").count() == 3


def test_non_staff_on_sweeps_are_told_about_sweeps_not_imports(client_for, owner):
    for response in (client_for(owner).get("/api/v1/sweeps/"), client_for(owner).post("/api/v1/sweeps/", {},
                                                                                         format="json")):
        assert response.status_code == 403
        message = response.json()["error"]["message"]
        assert "error model (sweeps)" in message and "import" not in message

"""One JSON error shape for every API error, inside and outside DRF.

413, 415 and 429 are tested with the import endpoint (test_api_imports), 409 and 503 with jobs
(test_api_jobs).
"""
import pytest
from django.test import RequestFactory

from planner.corpus import api as views
from planner.api.exceptions import handler404, handler500

pytestmark = pytest.mark.django_db


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


def test_validation_errors_name_the_field(client_for, owner, staff):
    error = assert_error(
        client_for(staff).post("/api/v1/stats/refresh/", {"families": "tiny"}, format="json"), 400, "invalid"
    )
    assert list(error["details"]) == ["families"]


def test_malformed_json_is_a_parse_error(client_for, owner, staff):
    response = client_for(staff).generic(
        "POST", "/api/v1/stats/refresh/", "{not json", content_type="application/json"
    )
    assert "JSON parse error" in assert_error(response, 400, "parse_error")["message"]


def test_401(api_client):
    assert_error(api_client.get("/api/v1/jobs/"), 401, "not_authenticated")


def test_403(client_for, owner):
    assert_error(client_for(owner).post("/api/v1/imports/", {}, format="multipart"), 403, "permission_denied")


def test_404_for_a_missing_object(api_client):
    assert_error(api_client.get("/api/v1/families/12345/"), 404, "not_found")


def test_404_for_an_unknown_api_url(api_client):
    error = assert_error(api_client.get("/api/v1/no-such-thing/"), 404, "not_found")
    assert error["message"] == "No API endpoint at /api/v1/no-such-thing/."
    assert_error(api_client.get("/api/v2/families/"), 404, "not_found")


def test_404_for_an_unknown_api_url_without_a_trailing_slash(api_client):
    # APPEND_SLASH redirects first (as for every URL); the target answers in the API's shape.
    assert_error(api_client.get("/api/v1/no-such-thing", follow=True), 404, "not_found")


def test_a_known_url_without_its_slash_redirects(api_client):
    response = api_client.get("/api/v1/families")
    assert response.status_code == 301 and response["Location"] == "/api/v1/families/"


def test_pages_outside_the_api_keep_html_404s():
    request = RequestFactory().get("/nowhere/")
    response = handler404(request, None)
    assert response.status_code == 404 and "text/html" in response["Content-Type"]


def test_405(api_client, client_for, staff):
    error = assert_error(api_client.delete("/api/v1/families/"), 405, "method_not_allowed")
    assert "DELETE" in error["message"]
    assert_error(client_for(staff).get("/api/v1/imports/"), 405, "method_not_allowed")


def test_an_unexpected_exception_is_a_json_500_without_internals(api_client, corpus, monkeypatch):
    def explode(self):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(views.FamilyDetail, "get_object", explode)
    error = assert_error(api_client.get(f"/api/v1/families/{corpus['tiny'].pk}/"), 500, "server_error")
    assert "secret" not in error["message"]


def test_a_500_outside_drf_on_an_api_path_is_json():
    import json

    response = handler500(RequestFactory().get("/api/v1/families/"))
    assert response.status_code == 500
    assert json.loads(response.content) == {"error": {"code": "server_error", "message": "Internal server error.", "details": {}}}


@pytest.mark.parametrize("query, parameter", [
    ("excluded=maybe", "excluded"),
    ("page_size=abc", "page_size"),
    ("page_size=0", "page_size"),
    ("page_size=%C2%B9", "page_size"),  # a superscript one is a digit to str.isdigit, not to int()
    ("page=", "page"),
    ("page=1&page=2", "page"),
])
def test_a_query_parameter_that_does_not_parse_is_a_400_naming_it(api_client, corpus, query, parameter):
    error = assert_error(api_client.get(f"/api/v1/families/?{query}"), 400, "invalid")
    assert list(error["details"]) == [parameter]


def test_empty_filters_mean_any_as_html_filter_forms_send_them(api_client, corpus):
    response = api_client.get("/api/v1/families/?arch=&excluded=")
    assert response.status_code == 200 and response.json()["count"] == 2


def test_a_form_encoded_body_to_a_json_endpoint_is_a_415(client_for, owner, staff):
    response = client_for(staff).post("/api/v1/stats/refresh/", {"families": "tiny"}, format="multipart")
    assert_error(response, 415, "unsupported_media_type")


def test_a_post_to_an_unknown_api_url_is_a_json_404_not_a_csrf_page(client, owner):
    client.force_login(owner)  # a session cookie: Django's CSRF check would answer first with an HTML 403
    response = client.post("/api/v1/nowhere/-1/")
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("query", ["run=", "tokens_min=abc", "family_id=1e999x"])
def test_a_number_filter_that_is_empty_or_no_number_is_a_400(api_client, corpus, query):
    error = assert_error(api_client.get(f"/api/v1/observations/?{query}"), 400, "invalid")
    assert list(error["details"]) == [query.split("=")[0]]


def test_an_id_beyond_what_a_column_holds_is_a_400_not_a_database_error(api_client, corpus):
    # SQLite raised OverflowError (a 500) on such a value.
    error = assert_error(api_client.get("/api/v1/observations/?run=-1e154"), 400, "invalid")
    assert list(error["details"]) == ["run"]


@pytest.mark.parametrize("query, runs", [
    ("params_max=1e40", 4), ("params_min=-1e40", 4), ("params_min=1e40", 0),  # past int64: all or none
    ("params_min=10000000.5", 3), ("params_max=10000000.5", 1),  # whole numbers keep the same rows
])
def test_a_bound_on_parameters_keeps_the_rows_it_says(api_client, corpus, query, runs):
    response = api_client.get(f"/api/v1/runs/?{query}")
    assert response.status_code == 200 and response.json()["count"] == runs


def test_an_absurd_bound_is_refused_by_django_filters_own_limit(api_client, corpus):
    error = assert_error(api_client.get("/api/v1/runs/?params_max=1e300"), 400, "invalid")
    assert "less than or equal to 1e+50" in error["details"]["params_max"][0]

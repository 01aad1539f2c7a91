"""Laws API: the list of families with links, one family's law, 404s in the error shape, the schema."""
import pytest

from planner.models import Family
from planner.laws.services import family_law
from tests.planner.laws.test_services_laws import own_cache, synthetic  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

LIST = "/api/v1/laws/"


def test_it_lists_every_family_with_a_link_to_its_law_without_a_token(api_client, synthetic):
    response = api_client.get(LIST)

    assert response.status_code == 200
    items = {item["family"]: item for item in response.json()["results"]}
    assert set(items) == {"synthetic", "single", "pair"}
    assert items["synthetic"]["url"] == "http://testserver/api/v1/laws/synthetic/"
    assert items["synthetic"]["n_sizes"] == 5
    assert items["pair"]["arch"] == "ssm"


def test_the_list_shows_the_backtest_only_once_the_law_is_computed(api_client, synthetic):
    before = api_client.get(LIST).json()["results"][0]
    assert before["family"] == "pair"
    assert (before["cached"], before["law_available"], before["backtest_are"]) == (False, None, None)

    are = family_law(synthetic)["backtest"]["are"]
    after = {i["family"]: i for i in api_client.get(LIST).json()["results"]}

    assert after["synthetic"]["cached"] and after["synthetic"]["law_available"]
    assert after["synthetic"]["backtest_are"] == pytest.approx(are)
    assert not after["pair"]["cached"]


def test_the_list_filters_by_arch_and_name(api_client, synthetic):
    assert [i["family"] for i in api_client.get(LIST, {"arch": "ssm"}).json()["results"]] == ["pair"]
    assert [i["family"] for i in api_client.get(LIST, {"search": "sing"}).json()["results"]] == ["single"]


def test_it_rejects_an_unknown_arch_in_the_error_shape(api_client, synthetic):
    response = api_client.get(LIST, {"arch": "rnn"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "arch" in response.json()["error"]["details"]


def test_it_returns_a_family_law_backtest_and_interval(api_client, synthetic):
    response = api_client.get("/api/v1/laws/synthetic/")

    assert response.status_code == 200
    body = response.json()
    assert body["family"] == "synthetic" and body["primary_metric"] == "val_loss"
    # Curves: the schedule term joins the Chinchilla law.
    assert body["law"]["available"] and set(body["law"]["params"]) == {"E", "A", "alpha", "B", "beta", "C_schedule"}
    assert body["backtest"]["available"] and body["backtest"]["are"] < 0.01
    assert body["interval"]["available"] and body["interval"]["lower"] < body["interval"]["upper"]
    assert body["data"]["sizes"] == [2e7, 5e7, 1e8, 3e8, 1e9]
    assert body == family_law(Family.objects.get(name="synthetic"))


def test_a_family_with_one_size_answers_200_with_the_reasons(api_client, synthetic):
    body = api_client.get("/api/v1/laws/single/").json()

    assert body["law"]["available"]
    assert body["backtest"]["available"] is False and "at least 3 sizes" in body["backtest"]["reason"]
    assert body["interval"]["available"] is False and "at least 2 sizes" in body["interval"]["reason"]


def test_it_answers_404_in_the_error_shape_for_an_unknown_family(api_client, synthetic):
    response = api_client.get("/api/v1/laws/pythia/")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "No family named 'pythia'.", "details": {}}}


def test_the_schema_documents_the_laws_with_an_example(api_client):
    schema = api_client.get("/api/v1/schema/?format=json").json()

    detail = schema["paths"]["/api/v1/laws/{name}/"]["get"]
    assert set(detail["responses"]) == {"200", "401", "404"}  # 401: an invalid token, on any operation
    content = detail["responses"]["200"]["content"]["application/json"]
    assert content["schema"]["$ref"].endswith("/FamilyLaw")
    example = content["examples"]["OPT"]["value"]["backtest"]
    assert example["are"] < example["are_best_loss"]
    assert "search" in {p["name"] for p in schema["paths"]["/api/v1/laws/"]["get"]["parameters"]}

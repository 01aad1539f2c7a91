"""OpenAPI 3 schema and the docs page (no external assets: hosts may be offline)."""
from html.parser import HTMLParser

import pytest
from django.contrib.staticfiles import finders
from drf_spectacular.validation import validate_schema

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(api_client):
    response = api_client.get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_the_schema_is_valid_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)  # raises on an invalid document


def test_the_schema_lists_every_endpoint(schema):
    assert set(schema["paths"]) == {
        "/api/v1/families/", "/api/v1/families/{id}/", "/api/v1/runs/", "/api/v1/observations/",
        "/api/v1/imports/", "/api/v1/stats/refresh/", "/api/v1/jobs/", "/api/v1/jobs/{id}/",
        "/api/v1/jobs/{id}/cancel/", "/api/v1/predictions/", "/api/v1/predictions/{id}/",
        "/api/v1/plans/", "/api/v1/plans/{id}/", "/api/v1/plans/{id}/{name}", "/api/v1/sweeps/", "/api/v1/sweeps/{id}/", "/api/v1/error-model/",
        "/api/v1/laws/", "/api/v1/laws/{name}/",
        "/api/v1/predictions/imports/", "/api/v1/predictions/{id}/updates/", "/api/v1/advice/", "/api/v1/advice/{id}/",
    }


def test_the_schema_documents_filters_token_auth_and_the_error_shape(schema):
    params = {p["name"] for p in schema["paths"]["/api/v1/observations/"]["get"]["parameters"]}
    assert {"family", "run", "metric", "split", "tokens_min", "tokens_max", "page", "page_size"} <= params
    assert "tokenAuth" in schema["components"]["securitySchemes"]
    imports = schema["paths"]["/api/v1/imports/"]["post"]
    assert {"202", "400", "401", "403", "413", "415", "429", "503"} <= set(imports["responses"])
    assert imports["responses"]["413"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert "multipart/form-data" in imports["requestBody"]["content"]


class _Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if attrs.get(key) and tag in ("script", "link", "img"):
                self.urls.append(attrs[key])


def test_the_docs_page_loads_only_local_assets(api_client, settings):
    response = api_client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    # The init script comes from a URL, not inline (the Content-Security-Policy allows no inline script).
    assert "<style" not in html and "<script>" not in html
    init = api_client.get("/api/v1/docs/?script=")
    assert init.status_code == 200 and init["Content-Type"].startswith("application/javascript")
    assert "/api/v1/schema/" in init.content.decode()
    parser = _Assets()
    parser.feed(html)
    assert parser.urls, "the docs page should load Swagger UI"
    for url in parser.urls:
        if url.startswith("/api/v1/docs/?script"):
            continue
        assert url.startswith(settings.STATIC_URL) or url.startswith("/" + settings.STATIC_URL), url
        assert finders.find(url.split(settings.STATIC_URL, 1)[1]), f"{url} is not a local static file"
    for external in ("http://", "https://", "//cdn", "jsdelivr", "unpkg"):
        assert external not in html.replace("http://testserver", ""), external

"""The corpus browser: the families table and its filters, a family's page, its plot, 404s, the home link."""
import io

import pytest
from matplotlib.image import imread

from tests.planner.laws.test_services_laws import own_cache, synthetic  # noqa: F401 (fixtures)
from tests.planner.corpus.test_views import parse

pytestmark = pytest.mark.django_db


def names(response):
    return [row["family"].name for row in response.context["rows"]]


def test_the_home_page_links_to_the_corpus(client):
    assert "/families/" in parse(client.get("/")).hrefs


def test_it_lists_the_families_with_their_statistics(client, synthetic):
    response = client.get("/families/")

    assert response.status_code == 200
    assert names(response) == ["pair", "single", "synthetic"]
    row = next(r for r in response.context["rows"] if r["family"].name == "synthetic")
    assert (row["n_sizes"], row["n_runs"]) == (5, 5)
    assert row["params"] == "2e+07 – 1e+09"
    assert "/families/synthetic/" in parse(response).hrefs
    assert b"val_loss" in response.content


def test_it_filters_by_arch_and_name_with_a_plain_get_form(client, synthetic):
    assert names(client.get("/families/", {"arch": "ssm"})) == ["pair"]
    assert names(client.get("/families/", {"q": "SYNTH"})) == ["synthetic"]
    assert names(client.get("/families/", {"q": "s", "arch": "dec"})) == ["single", "synthetic"]
    assert b'<form method="get"' in client.get("/families/").content
    assert b"<script" not in client.get("/families/").content


def test_it_rejects_an_unknown_arch_with_the_reason(client, synthetic):
    response = client.get("/families/", {"arch": "rnn"})

    assert response.status_code == 400
    assert names(response) == []
    assert b"Select a valid choice" in response.content


def test_the_family_page_shows_the_law_backtest_interval_and_plot(client, synthetic):
    response = client.get("/families/synthetic/")

    assert response.status_code == 200
    html = response.content.decode()
    assert [p["name"] for p in response.context["law_params"]] == ["E", "A", "alpha", "B", "beta", "C_schedule"]
    assert all(p["stderr"] != "—" for p in response.context["law_params"])
    assert "best loss seen" in html and "most-compute" in html
    assert response.context["pct"]["are"].endswith("%")
    assert "80% interval for the largest size" in html
    assert "/families/synthetic/plot.png" in html


def test_the_family_page_explains_what_is_unavailable(client, synthetic):
    html = client.get("/families/single/").content.decode()

    assert "Unavailable: The backtest needs at least 3 sizes" in html
    assert "Unavailable: The interval needs at least 2 sizes" in html


def test_the_plot_is_a_png_of_the_curves(client, synthetic):
    response = client.get("/families/synthetic/plot.png")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    image = imread(io.BytesIO(response.content), format="png")
    assert image.shape[:2] == (500, 800)


def test_the_plot_revalidates_with_its_etag_until_the_data_changes(client, synthetic):
    etag = client.get("/families/synthetic/plot.png")["ETag"]

    assert client.get("/families/synthetic/plot.png", HTTP_IF_NONE_MATCH=etag).status_code == 304
    synthetic.primary_metric = "train_loss"
    synthetic.save()
    assert client.get("/families/synthetic/plot.png", HTTP_IF_NONE_MATCH=etag).status_code == 404  # no such metric


@pytest.mark.parametrize("url", ["/families/pythia/", "/families/pythia/plot.png"])
def test_an_unknown_family_is_404(client, synthetic, url):
    assert client.get(url).status_code == 404

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
    assert "The law misses its own data" not in response.content.decode()

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


def test_the_list_shows_the_backtest_are_of_the_laws_computed_so_far_never_computing_one(client, synthetic,
                                                                                        monkeypatch):
    from planner.laws import services
    from planner.laws.services import family_law

    response = client.get("/families/")
    assert [r["are_text"] for r in response.context["rows"]] == ["not computed yet"] * 3
    assert "3 not computed yet" in response.content.decode()
    law = family_law(synthetic)

    def no_fit(*args, **kwargs):
        raise AssertionError("the list must not fit a law")

    monkeypatch.setattr(services, "fit", no_fit)
    response = client.get("/families/")
    row = next(r for r in response.context["rows"] if r["family"].name == "synthetic")
    assert row["are"] == law["backtest"]["are"] and row["are_text"] == f"{law['backtest']['are']:.1%}"
    assert "2 not computed yet" in response.content.decode()


def test_the_list_sorts_by_name_sizes_runs_and_backtest_are(client, synthetic):
    from planner.laws.services import family_law
    from planner.models import Family

    for family in Family.objects.all():
        family_law(family)  # single and pair have no backtest (fewer than 3 sizes): they sort last
    assert names(client.get("/families/")) == ["pair", "single", "synthetic"]
    assert names(client.get("/families/", {"sort": "-name"})) == ["synthetic", "single", "pair"]
    assert names(client.get("/families/", {"sort": "sizes"})) == ["single", "pair", "synthetic"]
    assert names(client.get("/families/", {"sort": "-sizes"})) == ["synthetic", "pair", "single"]
    assert names(client.get("/families/", {"sort": "are"}))[0] == "synthetic"
    assert names(client.get("/families/", {"sort": "-are"}))[0] == "synthetic"
    assert names(client.get("/families/", {"sort": "bogus"})) == ["pair", "single", "synthetic"]
    # The column links keep the filters and reverse the current order.
    response = client.get("/families/", {"sort": "sizes", "arch": "dec"})
    assert response.context["sort_links"]["sizes"] == "?arch=dec&sort=-sizes"
    assert response.context["sort_links"]["are"] == "?arch=dec&sort=are"


def test_the_family_page_warns_when_the_law_misses_its_own_sizes(client, db):
    from tests.planner.laws.test_services_laws import canonical_rows, import_families

    bad = canonical_rows("bad", (2e7, 5e7, 1e8, 3e8, 1e9))
    smallest = bad["params"] == 20_000_000
    bad.loc[smallest, "value"] = bad.loc[smallest, "value"] * 1.3
    import_families(bad)
    html = client.get("/families/bad/").content.decode()
    assert "The law misses its own data" in html and "N = 2e+07" in html
    assert "Points = data" in html and "lines = the fitted law" in html

"""Corpus endpoints: public reads, filters, pagination, ordering."""
import pytest

pytestmark = pytest.mark.django_db


def names(response, key="name"):
    assert response.status_code == 200, response.content
    return [row[key] for row in response.json()["results"]]


def test_reads_are_public(api_client, corpus):
    for url in ("/api/v1/families/", "/api/v1/runs/", "/api/v1/observations/",
                f"/api/v1/families/{corpus['tiny'].pk}/"):
        assert api_client.get(url).status_code == 200, url


def test_family_list_shows_the_stored_summary_stats(api_client, corpus):
    from planner.corpus.stats import families_refresh_stats

    families_refresh_stats()
    row = next(r for r in api_client.get("/api/v1/families/").json()["results"] if r["name"] == "tiny")
    assert row["stats"]["n_runs"] == 3 and row["stats"]["sizes"] == [10_000_000, 50_000_000]
    assert row["stats_updated_at"] is not None
    assert row["url"].endswith(f"/api/v1/families/{corpus['tiny'].pk}/")


def test_family_detail(api_client, corpus):
    body = api_client.get(f"/api/v1/families/{corpus['tiny'].pk}/").json()
    assert (body["name"], body["arch"], body["primary_metric"], body["excluded_from_fitting"]) == (
        "tiny", "dec", "val_loss", False
    )


@pytest.mark.parametrize(
    "query, expected",
    [
        ("", ["other", "tiny"]),
        ("?arch=dec", ["tiny"]),
        ("?arch=enc-dec", ["other"]),
        ("?excluded=true", ["other"]),
        ("?excluded=false", ["tiny"]),
        ("?search=TIN", ["tiny"]),
        ("?search=zzz", []),
    ],
)
def test_families_filter_by_arch_exclusion_and_name(api_client, corpus, query, expected):
    assert names(api_client.get("/api/v1/families/" + query)) == expected


@pytest.mark.parametrize(
    "query, expected",
    [
        ("?family=tiny", ["tiny-10m", "tiny-50m", "tiny-50m"]),
        ("?params_min=20000000", ["other-1b", "tiny-50m", "tiny-50m"]),
        ("?params_max=50000000", ["tiny-10m", "tiny-50m", "tiny-50m"]),
        ("?params_min=2e7&params_max=6e7", ["tiny-50m", "tiny-50m"]),
        ("?arch=enc-dec", ["other-1b"]),
        ("?name=tiny-10m", ["tiny-10m"]),
    ],
)
def test_runs_filter_by_family_size_range_arch_and_name(api_client, corpus, query, expected):
    assert names(api_client.get("/api/v1/runs/" + query)) == expected


def test_runs_filter_by_family_id(api_client, corpus):
    assert names(api_client.get(f"/api/v1/runs/?family_id={corpus['other'].pk}")) == ["other-1b"]


def obs(response):
    assert response.status_code == 200, response.content
    return [(r["model"], r["seed"], r["metric"], r["tokens"]) for r in response.json()["results"]]


def test_observations_are_ordered_by_run_metric_and_tokens(api_client, corpus):
    rows = obs(api_client.get("/api/v1/observations/?family=tiny"))
    assert rows[:4] == [
        ("tiny-10m", "", "train_loss", 4e9),
        ("tiny-10m", "", "val_loss", 1e9),
        ("tiny-10m", "", "val_loss", 2e9),
        ("tiny-10m", "", "val_loss", 4e9),
    ]
    first = api_client.get("/api/v1/observations/?family=tiny").json()["results"][0]
    assert first == {
        "id": first["id"], "run": corpus["runs"]["tiny-10m"].pk, "family": "tiny", "model": "tiny-10m",
        "seed": "", "params": 10_000_000, "tokens": 4e9, "step": None, "epochs": None, "flops": None,
        "metric": "train_loss", "value": 3.1, "split": "train", "dataset": "", "source": "",
    }


@pytest.mark.parametrize(
    "query, count",
    [
        ("?family=tiny", 7),
        ("?family=other", 1),
        ("?metric=train_loss", 1),
        ("?split=validation", 7),
        ("?split=train", 1),
        ("?tokens_min=2e9", 6),
        ("?tokens_max=2e9", 3),
        ("?tokens_min=2e9&tokens_max=4e9&metric=val_loss&family=tiny", 4),
        ("?model=tiny-50m", 3),
    ],
)
def test_observations_filter(api_client, corpus, query, count):
    assert api_client.get("/api/v1/observations/" + query).json()["count"] == count


def test_observations_filter_by_run_and_family_id(api_client, corpus):
    run = corpus["runs"]["tiny-50m-s1"]
    assert obs(api_client.get(f"/api/v1/observations/?run={run.pk}")) == [("tiny-50m", "1", "val_loss", 4e9)]
    assert api_client.get(f"/api/v1/observations/?family_id={corpus['other'].pk}").json()["count"] == 1


def test_observations_are_paginated_with_a_capped_page_size(api_client, corpus):
    page1 = api_client.get("/api/v1/observations/?page_size=3").json()
    assert page1["count"] == 8 and len(page1["results"]) == 3 and page1["previous"] is None
    page2 = api_client.get(page1["next"]).json()
    page3 = api_client.get(page2["next"]).json()
    assert len(page3["results"]) == 2 and page3["next"] is None
    ids = [r["id"] for p in (page1, page2, page3) for r in p["results"]]
    assert len(set(ids)) == 8
    # An absurd page size is capped, not an error.
    assert len(api_client.get("/api/v1/observations/?page_size=100000").json()["results"]) == 8


def test_the_default_page_size_is_100(api_client, corpus):
    from planner.models import Observation

    run = corpus["runs"]["tiny-10m"]
    Observation.objects.bulk_create(Observation(run=run, metric="x", tokens=t + 1, value=1.0) for t in range(150))
    body = api_client.get("/api/v1/observations/").json()
    assert body["count"] == 158 and len(body["results"]) == 100 and body["next"]


@pytest.mark.parametrize(
    "url, field",
    [
        ("/api/v1/runs/?params_min=big", "params_min"),
        ("/api/v1/observations/?tokens_max=lots", "tokens_max"),
        ("/api/v1/observations/?split=holdout", "split"),
        ("/api/v1/families/?arch=rnn", "arch"),
    ],
)
def test_it_rejects_bad_filter_values_naming_the_parameter(api_client, corpus, url, field):
    response = api_client.get(url)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["details"]


def test_a_page_past_the_end_is_a_404_in_the_error_shape(api_client, corpus):
    response = api_client.get("/api/v1/observations/?page=99")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"

"""The home page at /."""
from html.parser import HTMLParser

import pytest

from planner.models import Family, Observation, Run

pytestmark = pytest.mark.django_db


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.srcs, self.scripts = [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if "href" in attrs:
            self.hrefs.append(attrs["href"])
        if "src" in attrs:
            self.srcs.append(attrs["src"])


def parse(response):
    links = _Links()
    links.feed(response.content.decode())
    return links


def make_corpus():
    family = Family.objects.create(name="pythia", arch="dec", primary_metric="val_loss")
    for params in (70_000_000, 160_000_000):
        run = Run.objects.create(family=family, name=f"pythia-{params}", arch="dec", params=params)
        for tokens in (1e9, 2e9, 4e9):
            Observation.objects.create(run=run, tokens=tokens, metric="val_loss", value=3.0)
    Family.objects.create(name="opt", arch="dec")


def test_it_says_what_scaleplan_is(client):
    response = client.get("/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"scaling law" in response.content


def test_it_counts_the_families_runs_and_observations_in_the_corpus(client):
    make_corpus()

    response = client.get("/")

    assert response.context["counts"] == {"families": 2, "runs": 2, "observations": 6}
    assert b"import_corpus" not in response.content


def test_it_tells_how_to_load_the_corpus_when_it_is_empty(client):
    response = client.get("/")

    assert response.context["counts"] == {"families": 0, "runs": 0, "observations": 0}
    assert b"manage.py import_corpus ../shared/corpus/colpret.csv.gz" in response.content


def test_it_links_to_the_families_api_the_api_docs_and_the_admin(client):
    hrefs = parse(client.get("/")).hrefs

    assert {"/api/v1/families/", "/api/v1/docs/", "/api/v1/schema/", "/admin/"} <= set(hrefs)


def test_every_link_on_it_leads_to_a_page(client):
    hrefs = set(parse(client.get("/")).hrefs)

    broken = {href: client.get(href).status_code for href in hrefs}
    # Admin answers anonymous users with a redirect to its login page.
    broken = {href: code for href, code in broken.items() if code not in (200, 302)}

    assert broken == {}


def test_it_loads_no_scripts_and_no_external_assets(client):
    links = parse(client.get("/"))

    assert links.scripts == 0
    assert [url for url in links.hrefs + links.srcs if "//" in url] == []


def test_it_groups_the_digits_of_large_counts(client):
    family = Family.objects.create(name="big", arch="dec")
    run = Run.objects.create(family=family, name="big-1b", arch="dec", params=10**9)
    Observation.objects.bulk_create(
        Observation(run=run, tokens=1e9 * (i + 1), metric="val_loss", value=2.5) for i in range(1234)
    )

    response = client.get("/")

    assert b'<span class="n">1,234</span>' in response.content


def test_the_site_has_a_favicon(client):
    # Browsers ask every site for /favicon.ico (the admin's pages too); a 404 is a console error on each page.
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"  # ICO header


def test_a_wrong_password_shows_why_on_the_login_form(client, owner):
    response = client.post("/accounts/login/", {"username": "owner", "password": "wrong"})
    html = response.content.decode()
    assert response.status_code == 200 and '<form method="post" class="form">' in html
    assert '<ul class="errors"><li>Please enter a correct username and password.' in html

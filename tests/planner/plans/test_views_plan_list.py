"""/plans/: a user's plans and predictions (staff: all) with status and links; the prediction form opened from a
plan; login lands on the home page; the navigation shows the user and a logout."""
import re

import pytest

from planner.models import Job
from tests.planner.corpus.test_views import parse

pytestmark = pytest.mark.django_db


def plan(user, **extra):
    return Job.objects.create(kind=Job.Kind.PLAN, created_by=user, input={
        "target_params": 7e9, "target_tokens": 1.4e11, "budget_fraction": 0.05}, **extra)


def prediction(user, **extra):
    return Job.objects.create(kind=Job.Kind.PREDICTION, created_by=user, input={
        "target_params": 1e10, "target_tokens": 2e11, "filename": "runs.csv", "n_rows": 48}, **extra)


def test_it_needs_a_login(client):
    response = client.get("/plans/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/plans/"


def test_it_lists_my_plans_and_predictions_with_status_and_links(client, owner, stranger):
    mine = [plan(owner), prediction(owner, status="succeeded", result={"prediction": 2.345}),
            plan(owner, status="failed", error="x")]
    theirs = plan(stranger)
    Job.objects.create(kind=Job.Kind.CORPUS_STATS, created_by=owner)  # not a plan or prediction
    client.force_login(owner)
    response = client.get("/plans/")
    html = response.content.decode()
    assert response.status_code == 200
    hrefs = set(parse(response).hrefs)
    assert {f"/plans/{mine[0].pk}/", f"/jobs/{mine[1].pk}/", f"/plans/{mine[2].pk}/"} <= hrefs
    assert f"/plans/{theirs.pk}/" not in hrefs
    assert html.count('<tr class="status-') == 3
    assert "Succeeded" in html and "Failed" in html and "Queued" in html and "loss 2.345" in html
    assert "runs.csv (48 rows)" in html and "budget 5% of its compute" in html
    # A queued job says where it stands in the queue; the list refreshes while any job is unfinished.
    assert "Queued: " in html and 'http-equiv="refresh"' in html


def test_staff_see_everyones_with_who_made_them(client, owner, stranger, staff):
    plan(owner), plan(stranger)
    client.force_login(staff)
    html = client.get("/plans/").content.decode()
    assert "All plans and predictions" in html and html.count('<tr class="status-') == 2
    assert "<td class=\"name\">owner</td>" in html and "<td class=\"name\">stranger</td>" in html


def test_it_is_paginated(client, owner):
    for _ in range(51):
        plan(owner, status="succeeded", result={})
    client.force_login(owner)
    first = client.get("/plans/").content.decode()
    assert first.count('<tr class="status-') == 50 and "page 1 of 2" in first and "?page=2" in first
    assert client.get("/plans/?page=2").content.decode().count('<tr class="status-') == 1
    assert 'http-equiv="refresh"' not in first


def test_an_empty_list_says_so(client, owner):
    client.force_login(owner)
    assert "No plans or predictions yet." in client.get("/plans/").content.decode()


def test_a_queued_job_says_how_many_are_ahead_of_it(client, owner, stranger):
    plan(stranger), plan(stranger)
    Job.objects.create(kind=Job.Kind.SWEEP, status="running")
    job = plan(owner)
    client.force_login(owner)
    html = client.get(f"/plans/{job.pk}/").content.decode()
    assert "Queued: 2 jobs ahead of it (1 running)" in html
    job = prediction(owner)
    assert "Queued: 3 jobs ahead of it (1 running)" in client.get(f"/jobs/{job.pk}/").content.decode()


def test_the_prediction_form_opened_from_a_plan_has_its_target_and_template(client, owner, stranger):
    job = plan(owner, status="succeeded", result={})
    client.force_login(owner)
    response = client.get(f"/predictions/new?plan={job.pk}&target_params=7e%2B09&target_tokens=1.4e%2B11")
    html = response.content.decode()
    assert 'name="target_params" value="7e+09"' in html and 'name="target_tokens" value="1.4e+11"' in html
    assert f"/plans/{job.pk}/prediction-template.csv" in parse(response).hrefs
    client.force_login(stranger)  # another user's plan: no link to it
    html = client.get(f"/predictions/new?plan={job.pk}").content.decode()
    assert "prediction-template.csv" not in html


def test_logging_in_without_next_lands_on_the_home_page(client, owner):
    response = client.post("/accounts/login/", {"username": "owner", "password": "pw-owner"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get(response["Location"]).status_code == 200


def test_the_navigation_shows_the_user_and_a_logout_form(client, owner):
    anonymous = client.get("/").content.decode()
    assert "/accounts/login/" in anonymous and "Log out" not in anonymous
    client.force_login(owner)
    html = client.get("/").content.decode()
    assert '<span class="user">owner</span>' in html and "/plans/" in html
    form = re.search(r'<form method="post" action="/accounts/logout/" class="logout">(.*?)</form>', html, re.S)
    assert form and 'name="csrfmiddlewaretoken"' in form.group(1)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/"
    assert '<span class="user">' not in client.get("/").content.decode()

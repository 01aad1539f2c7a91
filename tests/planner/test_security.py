"""Security guarantees: writes need a token, admin is staff-only, CSRF on every form, headers, no pickle.

Routes are walked from the URL conf and the OpenAPI schema, so a route added later
is covered without anyone remembering to add it here.
"""
import pickle
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from planner.corpus.colpret import safe_pickle
from planner.models import Job

pytestmark = pytest.mark.django_db

BASE_DIR = Path(settings.BASE_DIR)
UNSAFE = ("post", "put", "patch", "delete")
# Pages an anonymous visitor is meant to POST to: logging in (CSRF-protected, tested below).
ANONYMOUS_FORMS = {"/accounts/login/", "/admin/login/"}


@pytest.fixture
def world(corpus, owner, staff):
    job = Job.objects.create(kind=Job.Kind.PLAN, created_by=owner, input={"target_params": 7e9})
    return {"pk": job.pk, "id": job.pk, "job_id": job.pk, "name": "tiny", "object_id": corpus["tiny"].pk,
            "app_label": "planner", "model_name": "family"}


def _routes(resolver=None, prefix=""):
    """Every URL pattern as (route text, pattern), depth first (admin's own URLs included)."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _routes(entry, route)
        elif isinstance(entry, URLPattern):
            yield route, entry


def _concrete(route, values):
    """A route with its converters filled from `values`; None for regex routes we cannot fill."""
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values.get(m.group(1), "x")), route)
    if any(c in path for c in "^$()[]*+?\\"):
        return None
    return "/" + path


def _all_paths(values):
    paths = {_concrete(route, values) for route, _ in _routes()}
    return sorted(p for p in paths if p)


def test_the_walk_covers_the_api_the_pages_and_the_admin(world):
    paths = _all_paths(world)
    for expected in ("/api/v1/plans/", "/api/v1/imports/", "/plans/new", "/predictions/new",
                     "/admin/planner/job/import/", "/families/tiny/plot.png", f"/jobs/{world['pk']}/"):
        assert expected in paths
    assert len(paths) > 60


def test_anonymous_writes_are_refused_everywhere(world):
    client = Client()  # no CSRF enforcement: the view itself must refuse
    accepted = {}
    for path in _all_paths(world):
        for method in UNSAFE:
            response = getattr(client, method)(path)
            code = response.status_code
            if path.startswith("/api/"):
                ok = code in (401, 403, 404, 405) and (code != 404 or "No API endpoint" in response.content.decode())
            elif path in ANONYMOUS_FORMS:
                # The login form again, with its errors (Django's admin login treats PUT as POST).
                ok = code == 405 or (code == 200 and method in ("post", "put"))
            elif path.endswith("/logout/"):
                ok = code in (302, 405)  # logging out changes nothing for an anonymous visitor
            else:
                # Pages: 405 for read-only pages, else a redirect to a login page.
                ok = code in (401, 403, 405) or (code == 302 and "login" in response["Location"])
            if not ok:
                accepted[f"{method.upper()} {path}"] = code
    assert accepted == {}


def test_api_writes_in_the_schema_need_a_token(world, client_for):
    schema = client_for(None).get("/api/v1/schema/?format=json").json()
    anonymous = client_for(None)
    checked = 0
    for template, operations in schema["paths"].items():
        path = re.sub(r"{(\w+)}", lambda m: str(world[m.group(1)]), template)
        for method in operations:
            if method in UNSAFE:
                assert any("tokenAuth" in s for s in operations[method].get("security", [])), (method, template)
                response = getattr(anonymous, method)(path, {}, format="json")
                assert response.status_code == 401, (method, path, response.content)
                assert response.json()["error"]["code"] == "not_authenticated"
                checked += 1
    assert checked >= 6


def test_staff_only_api_writes_refuse_a_normal_user(client_for, owner, corpus):
    client = client_for(owner)
    for path in ("/api/v1/imports/", "/api/v1/sweeps/"):
        response = client.post(path, {}, format="json")
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "permission_denied"


def test_admin_pages_are_for_staff_only(world, owner):
    client = Client()
    client.force_login(owner)  # a user, not staff
    paths = [p for p in _all_paths(world) if p.startswith("/admin/") and p not in ANONYMOUS_FORMS
             and not p.startswith("/admin/logout/")]
    for model in admin.site._registry:
        paths.append(f"/admin/{model._meta.app_label}/{model._meta.model_name}/")
    assert "/admin/planner/job/import/" in paths and f"/admin/planner/job/{world['pk']}/import-status/" in paths
    for path in sorted(set(paths)):
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            assert response.status_code in (302, 404), (method, path, response.status_code)
            if response.status_code == 302:
                assert response["Location"].startswith("/admin/login/"), (method, path)
    assert Job.objects.count() == 1  # the import page created nothing


# --- CSRF ------------------------------------------------------------------------------------------


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms = []  # [method, has a csrfmiddlewaretoken input]

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append([(attrs.get("method") or "get").lower(), False])
        elif tag == "input" and attrs.get("name") == "csrfmiddlewaretoken" and self.forms:
            self.forms[-1][1] = True


def test_every_template_form_that_posts_carries_the_csrf_token():
    templates = list((BASE_DIR / "templates").rglob("*.html"))
    assert len(templates) > 8
    for template in templates:
        text = template.read_text()
        for form in re.findall(r"<form\b.*?</form>", text, flags=re.S | re.I):
            if re.search(r'method="?post', form, flags=re.I):
                assert "{% csrf_token %}" in form, template


FORM_PAGES = {
    "/accounts/login/": None, "/plans/new": "owner", "/predictions/new": "owner", "/predictions/import": "owner",
    "/advice/new": "owner",
    "/admin/planner/job/import/": "staff", "/admin/planner/family/{family}/change/": "staff",
    "/admin/planner/family/add/": "staff", "/admin/password_change/": "staff",
}


@pytest.mark.parametrize("page, user", FORM_PAGES.items())
def test_each_form_posts_only_with_its_csrf_token(request, corpus, page, user):
    path = page.format(family=corpus["tiny"].pk)
    client = Client(enforce_csrf_checks=True)
    if user:
        client.force_login(request.getfixturevalue(user))
    shown = client.get(path)
    assert shown.status_code == 200, path
    forms = _Forms()
    forms.feed(shown.content.decode())
    posting = [has_token for method, has_token in forms.forms if method == "post"]
    assert posting and all(posting), (path, forms.forms)
    token = client.cookies["csrftoken"].value

    refused = client.post(path, {"x": "1"})
    assert refused.status_code == 403, path
    assert b"CSRF" in refused.content
    allowed = client.post(path, {"csrfmiddlewaretoken": token})
    assert allowed.status_code != 403, path  # past the CSRF check (the form itself may still say no)


def test_an_api_request_with_a_session_but_no_csrf_token_is_refused_in_the_api_shape(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post("/api/v1/stats/refresh/", {}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]


# --- headers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/families/", "/api/v1/docs/", "/api/v1/families/", "/accounts/login/"])
def test_pages_and_the_api_send_the_security_headers(client, corpus, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"


def test_only_the_browsable_api_may_use_inline_styles(client, corpus):
    html = client.get("/api/v1/families/", HTTP_ACCEPT="text/html")
    assert "'unsafe-inline'" in html["Content-Security-Policy"]
    assert "script-src 'self';" in html["Content-Security-Policy"] + ";"  # never inline script
    as_json = client.get("/api/v1/families/")
    assert "unsafe-inline" not in as_json["Content-Security-Policy"]


def test_templates_have_no_inline_script_or_style():
    for template in (BASE_DIR / "templates").rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template
        assert "<style" not in text and " style=" not in text, template
        assert not re.search(r"\son[a-z]+=", text) and "javascript:" not in text, template


# --- no pickle ---------------------------------------------------------------------------------------


def test_celery_speaks_json_only():
    from planner.celery import app

    assert app.conf.accept_content == ["json"]
    assert app.conf.task_serializer == "json"
    assert app.conf.result_serializer == "json"
    assert app.conf.event_serializer == "json"
    assert set(app.conf.result_accept_content or app.conf.accept_content) == {"json"}


def test_sessions_are_json_and_error_reports_filter_secrets():
    assert settings.SESSION_SERIALIZER == "django.contrib.sessions.serializers.JSONSerializer"
    assert settings.DEFAULT_EXCEPTION_REPORTER_FILTER == "django.views.debug.SafeExceptionReporterFilter"


def test_nothing_but_the_restricted_loader_unpickles():
    allowed = BASE_DIR / "planner" / "corpus" / "colpret" / "safe_pickle.py"
    offenders = []
    for root in ("planner", "fits"):
        for path in (BASE_DIR / root).rglob("*.py"):
            if path == allowed:
                continue
            text = path.read_text()
            for pattern in (r"\bimport pickle\b", r"\bfrom pickle\b", r"(?<!safe_)pickle\.loads?\(", r"\bcPickle\b",
                            r"\bdill\b", r"\bjoblib\.load\b", r"pd\.read_pickle|read_pickle\(", r"\bshelve\b",
                            r"allow_pickle\s*=\s*True"):
                if re.search(pattern, text):
                    offenders.append(f"{path.relative_to(BASE_DIR)}: {pattern}")
    assert offenders == []


class _RunsAShell:
    def __reduce__(self):
        import os

        return os.system, ("touch PWNED",)


def test_the_restricted_loader_refuses_a_pickle_that_runs_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    payload = pickle.dumps(_RunsAShell())
    with pytest.raises(safe_pickle.UnsafePickleError, match=r"refuses to load global posix\.system"):
        safe_pickle.loads(payload, origin="evil.pkl")
    (tmp_path / "evil.pkl").write_bytes(payload)
    with pytest.raises(safe_pickle.UnsafePickleError, match="evil.pkl: refuses to load global"):
        safe_pickle.load(tmp_path / "evil.pkl")
    assert not (tmp_path / "PWNED").exists()


def test_the_restricted_loader_reads_colprets_own_pickles_as_plain_data():
    files = sorted((Path(settings.SCALEPLAN_SHARED_DIR) / "colpret").rglob("*.pkl"))
    if not files:
        pytest.skip("no ColPret checkout with .pkl files under SCALEPLAN_SHARED_DIR")
    import pandas as pd

    for path in files:
        data = safe_pickle.load(path)
        assert isinstance(data, (pd.DataFrame, pd.Series, dict, list)), path
    with pytest.raises(safe_pickle.UnsafePickleError):
        safe_pickle.loads(pickle.dumps({"f": print}))  # a builtin function is not data


@pytest.mark.subprocess
def test_production_sends_hsts_and_secure_httponly_cookies(tmp_path):
    from tests.planner.test_settings import PRODUCTION, boot

    code = """
import json
from django.conf import settings
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
response = Client().get("/accounts/login/", secure=True, HTTP_HOST="scaleplan.example.org")
cookie = response.cookies["csrftoken"]
print(json.dumps({
    "status": response.status_code, "headers": dict(response.headers),
    "csrf_cookie": {"secure": bool(cookie["secure"]), "httponly": bool(cookie["httponly"])},
    "session_cookie": {"secure": settings.SESSION_COOKIE_SECURE, "httponly": settings.SESSION_COOKIE_HTTPONLY},
    "redirect": Client().get("/", HTTP_HOST="scaleplan.example.org").status_code,
}))
"""
    done = boot(tmp_path, code, **PRODUCTION)
    assert done.returncode == 0, done.stderr
    import json

    seen = json.loads(done.stdout.strip().splitlines()[-1])
    headers = seen["headers"]
    assert seen["status"] == 200
    assert headers["Strict-Transport-Security"] == "max-age=3600; includeSubDomains; preload"
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin" and headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert seen["csrf_cookie"] == {"secure": True, "httponly": True}
    assert seen["session_cookie"] == {"secure": True, "httponly": True}
    assert seen["redirect"] == 301  # plain HTTP goes to HTTPS

"""Login attempts are limited per user and per address (django-axes; issue 11 #6).

Over HTTP on a fresh SQLite database with no Redis configured (Django test client), as the issue's bar asks.
"""
from datetime import timedelta

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def log_in(client, username, password, **extra):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def test_after_20_failed_logins_the_right_password_does_not_log_in_until_the_cool_off_ends(owner, settings):
    client = Client()
    for _ in range(20):
        assert log_in(client, "owner", "wrong").status_code in (200, 429)
    refused = log_in(client, "owner", "pw-owner")
    assert refused.status_code == 429 and "_auth_user_id" not in client.session
    page = refused.content.decode()
    assert "Too many failed logins" in page and str(settings.AXES_FAILURE_LIMIT) in page
    # The lock holds for the cool-off, then the right password works again.
    from axes.models import AccessAttempt

    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.first().attempt_time - settings.AXES_COOLOFF_TIME
                                 - timedelta(seconds=1))
    assert log_in(client, "owner", "pw-owner").status_code == 302 and "_auth_user_id" in client.session


def test_the_limit_is_per_user_whatever_the_address(owner, stranger, settings):
    for i in range(settings.AXES_FAILURE_LIMIT):
        log_in(Client(REMOTE_ADDR=f"10.0.0.{i + 1}"), "owner", "wrong")
    assert log_in(Client(REMOTE_ADDR="10.0.1.1"), "owner", "pw-owner").status_code == 429
    assert log_in(Client(REMOTE_ADDR="10.0.1.1"), "stranger", "pw-stranger").status_code == 302  # others unaffected


def test_the_limit_is_per_address_whatever_the_user(owner, stranger, settings):
    attacker = Client(REMOTE_ADDR="10.9.9.9")
    for i in range(settings.AXES_FAILURE_LIMIT):
        log_in(attacker, f"guess{i}", "wrong")
    assert log_in(attacker, "stranger", "pw-stranger").status_code == 429
    assert log_in(Client(REMOTE_ADDR="10.0.0.2"), "stranger", "pw-stranger").status_code == 302


def test_a_forwarded_for_header_does_not_change_the_address_without_a_proxy(owner, settings):
    assert settings.SCALEPLAN_PROXY_COUNT == 0
    for i in range(settings.AXES_FAILURE_LIMIT):
        log_in(Client(REMOTE_ADDR="10.9.9.8"), f"guess{i}", "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
    assert log_in(Client(REMOTE_ADDR="10.9.9.8"), "owner", "pw-owner").status_code == 429


def test_a_success_clears_the_users_count(owner, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "owner", "wrong")
    assert log_in(client, "owner", "pw-owner").status_code == 302
    client.post("/accounts/logout/")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "owner", "wrong")
    assert log_in(client, "owner", "pw-owner").status_code == 302


def test_the_admin_login_is_limited_too(staff, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "staff", "password": "wrong"})
    response = client.post("/admin/login/?next=/admin/", {"username": "staff", "password": "pw-staff"})
    assert response.status_code == 429


def test_api_tokens_are_not_passwords_and_are_not_locked_out(client_for, owner, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(Client(), "owner", "wrong")
    assert client_for(owner).get("/api/v1/jobs/").status_code == 200

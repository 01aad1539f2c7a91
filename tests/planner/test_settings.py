"""Settings come only from the environment; production refuses unsafe defaults.

Each test boots Django in a fresh subprocess with a controlled environment,
because settings are read once per process.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
SETTINGS_SOURCE = (BASE_DIR / "planner" / "settings.py").read_text(encoding="utf-8")
# Every variable planner/settings.py reads, e.g. env.str("SECRET_KEY", ...).
SETTINGS_VARIABLES = sorted(set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]*)"', SETTINGS_SOURCE)))

PRODUCTION = {
    "SCALEPLAN_ENV": "production",
    "SECRET_KEY": "a-test-secret-" + "x" * 50,
    "ALLOWED_HOSTS": "scaleplan.example.org",
}


def boot(tmp_path, code="", argv=None, **env):
    """Run Python with Django set up under exactly ``env`` (plus a private data dir)."""
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    clean.update(
        DJANGO_SETTINGS_MODULE="planner.settings",
        SCALEPLAN_DATA_DIR=str(tmp_path / "data"),
        STATIC_ROOT=str(tmp_path / "static"),
    )
    clean.update(env)
    args = argv or ["-c", "import django\ndjango.setup()\n" + code]
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env=clean, capture_output=True, text=True, timeout=120
    )


def setting_values(tmp_path, names, **env):
    code = (
        "import json\nfrom django.conf import settings\n"
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}, default=str))"
    )
    done = boot(tmp_path, code, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_it_finds_the_variables_settings_reads():
    # Guards the regex the documentation tests below rely on.
    assert {"SECRET_KEY", "ALLOWED_HOSTS", "DEBUG", "DATABASE_URL", "REDIS_URL"} <= set(SETTINGS_VARIABLES)


@pytest.mark.subprocess
@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS"])
def test_it_refuses_to_boot_in_production_without_a_required_variable(tmp_path, missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}

    done = boot(tmp_path, **env)

    assert done.returncode != 0
    assert "ImproperlyConfigured: production mode" in done.stderr
    assert missing in done.stderr


@pytest.mark.subprocess
def test_it_refuses_to_boot_in_production_with_empty_allowed_hosts(tmp_path):
    done = boot(tmp_path, **{**PRODUCTION, "ALLOWED_HOSTS": ""})

    assert done.returncode != 0
    assert "ALLOWED_HOSTS" in done.stderr


@pytest.mark.subprocess
def test_debug_is_off_by_default_in_production(tmp_path):
    values = setting_values(tmp_path, ["DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"], **PRODUCTION)

    assert values == {
        "DEBUG": False,
        "SECRET_KEY": PRODUCTION["SECRET_KEY"],
        "ALLOWED_HOSTS": ["scaleplan.example.org"],
    }


@pytest.mark.subprocess
def test_debug_is_on_only_when_asked_in_production(tmp_path):
    assert setting_values(tmp_path, ["DEBUG"], **PRODUCTION, DEBUG="true") == {"DEBUG": True}


@pytest.mark.subprocess
def test_development_boots_with_no_configuration_at_all(tmp_path):
    values = setting_values(tmp_path, ["DEBUG", "DATA_DIR"])

    assert values == {"DEBUG": True, "DATA_DIR": str(tmp_path / "data")}


@pytest.mark.subprocess
def test_database_defaults_to_sqlite_in_the_data_dir(tmp_path):
    db = setting_values(tmp_path, ["DATABASES"])["DATABASES"]["default"]

    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["NAME"] == str(tmp_path / "data" / "scaleplan.sqlite3")


@pytest.mark.subprocess
def test_database_url_picks_the_engine(tmp_path):
    url = "postgres://scaleplan:pw@db.internal:5433/scaleplan"

    db = setting_values(tmp_path, ["DATABASES"], DATABASE_URL=url)["DATABASES"]["default"]

    assert (db["ENGINE"], db["HOST"], db["PORT"], db["NAME"], db["USER"]) == (
        "django.db.backends.postgresql",
        "db.internal",
        5433,
        "scaleplan",
        "scaleplan",
    )


@pytest.mark.subprocess
def test_the_broker_defaults_to_the_filesystem_under_the_data_dir(tmp_path):
    code = (
        "import json\nfrom planner.celery import app\n"
        "print(json.dumps([app.conf.broker_url, app.conf.broker_transport_options]))"
    )
    done = boot(tmp_path, code)
    assert done.returncode == 0, done.stderr
    url, options = json.loads(done.stdout.strip().splitlines()[-1])

    assert url == "filesystem://"
    assert options["data_folder_in"] == str(tmp_path / "data" / "broker" / "queue")
    assert (tmp_path / "data" / "broker" / "queue").is_dir()


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"REDIS_URL": "redis://cache.internal:6379/2"}, "redis://cache.internal:6379/2"),
        (
            {"REDIS_URL": "redis://cache.internal:6379/2", "CELERY_BROKER_URL": "redis://other:6379/0"},
            "redis://other:6379/0",
        ),
    ],
)
def test_redis_url_switches_the_broker_to_redis(tmp_path, env, expected):
    code = (
        "import json\nfrom planner.celery import app\n"
        "print(json.dumps([app.conf.broker_url, app.conf.broker_transport_options, app.conf.task_time_limit]))"
    )
    done = boot(tmp_path, code, **env)
    assert done.returncode == 0, done.stderr
    url, options, hard_limit = json.loads(done.stdout.strip().splitlines()[-1])

    assert url == expected
    # acks_late: Redis must not redeliver a task that is still running.
    assert options["visibility_timeout"] > hard_limit


@pytest.mark.subprocess
def test_check_deploy_is_clean_in_production(tmp_path):
    done = boot(
        tmp_path, argv=["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


@pytest.mark.parametrize("document", ["deploy/env.example", "README.md"])
def test_every_variable_settings_reads_is_documented(document):
    text = (BASE_DIR / document).read_text(encoding="utf-8")

    undocumented = [name for name in SETTINGS_VARIABLES if not re.search(rf"\b{name}\b", text)]

    assert undocumented == []

"""deploy/: the start scripts, systemd units and compose file agree with each other and with the env template.

Docker is not run here (CI has no engine): the compose file is checked as data.
"""
import re
from pathlib import Path

import pytest
import yaml

BASE_DIR = Path(__file__).resolve().parents[2]
DEPLOY = BASE_DIR / "deploy"
START_SCRIPTS = sorted(p.name for p in (DEPLOY / "bin").iterdir())
UNITS = {p.name: p.read_text() for p in (DEPLOY / "systemd").glob("*.service")}
COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
ENV_EXAMPLE = (DEPLOY / "env.example").read_text()
# Read by the shell, not the service: never for the template.
SHELL_OWN = {"BASH_SOURCE", "PATH"}


def shell_variables(text):
    return set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text)) - SHELL_OWN


def python_variables(text):
    return set(re.findall(r"""os\.environ(?:\.get\(|\[)\s*["']([A-Z][A-Z0-9_]*)["']""", text))


def test_there_is_a_start_script_for_every_process():
    assert START_SCRIPTS == ["beat", "migrate", "web", "worker"]


@pytest.mark.parametrize("name", START_SCRIPTS)
def test_each_start_script_is_strict_and_execs_one_process(name):
    path = DEPLOY / "bin" / name
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert path.stat().st_mode & 0o111, f"{name} is not executable"
    assert lines[0] == "set -euo pipefail"
    execs = [i for i, line in enumerate(lines) if line.startswith("exec ")]
    # One exec, and it is the last command (continuation lines of it aside).
    assert len(execs) == 1 and all(line.startswith("    ") for line in lines[execs[0] + 1:]), name


def test_every_variable_the_deploy_files_read_is_in_the_env_template():
    read = python_variables((DEPLOY / "gunicorn.conf.py").read_text())
    for name in START_SCRIPTS:
        read |= shell_variables((DEPLOY / "bin" / name).read_text())
    read |= shell_variables((DEPLOY / "docker-compose.yml").read_text())
    assert {"WEB_CONCURRENCY", "WORKER_CONCURRENCY", "POSTGRES_PASSWORD"} <= read  # the patterns find them

    missing = sorted(name for name in read if not re.search(rf"^#? ?{name}=", ENV_EXAMPLE, re.MULTILINE))

    assert missing == []


def test_every_variable_scripts_serve_reads_is_in_the_readme():
    read = shell_variables((BASE_DIR / "scripts" / "serve").read_text())
    read |= shell_variables((BASE_DIR / "scripts" / "lib.sh").read_text())
    readme = (BASE_DIR / "README.md").read_text()

    missing = sorted(name for name in read - {"SCALEPLAN_ROOT"} if not re.search(rf"\b{name}\b", readme))

    assert missing == []


def test_compose_runs_every_process_from_one_image_after_the_release_step():
    services = COMPOSE["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "worker", "beat"}
    for name in ("migrate", "web", "worker", "beat"):
        service = services[name]
        assert service["command"] == [f"deploy/bin/{name}"]
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert service["env_file"] == ".env"
        assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert "postgres:5432" in service["environment"]["DATABASE_URL"]
        if name != "migrate":
            assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    # Queued tasks survive a Redis restart.
    assert "--appendonly" in services["redis"]["command"]


def test_every_systemd_unit_starts_a_start_script_with_the_env_file():
    assert set(UNITS) == {"scaleplan-migrate.service", "scaleplan-web.service", "scaleplan-worker@.service",
                          "scaleplan-beat.service"}
    for unit, text in UNITS.items():
        script = re.search(r"^ExecStart=/opt/scaleplan/(deploy/bin/\w+)$", text, re.MULTILINE).group(1)
        assert (BASE_DIR / script).is_file(), unit
        assert "EnvironmentFile=/etc/scaleplan/env" in text and "User=scaleplan" in text, unit
    assert "Requires=scaleplan-migrate.service" in UNITS["scaleplan-web.service"]

"""What the service benchmarks share: the database made ready, bench users, and the service started.

`prepare()` checks for PostgreSQL and Redis (web and worker are separate
processes), migrates, loads the reference corpus if the database has none and
builds the error model if none is active (`rebuild_error_model --sync`, about a
minute on 2 CPUs), so a fresh bench database needs no manual step.
`running_service()` starts one Celery worker and gunicorn with 2 workers on
127.0.0.1, waits until the API answers, yields its base URL and stops both.
Used by bench/plan_latency.py and bench/load.py.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planner.settings")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, log, ready, env):
    out = open(log, "wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while ready not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{cmd[0]} did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.2)
    return proc


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def plan_bodies(n, seed=0):
    """Plan requests: targets from 1e8 to 7e10 parameters, budgets from 0.5% to 30% of the target's compute."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        params = float(10 ** rng.uniform(8, np.log10(7e10)))
        yield {
            "target_params": params,
            "target_tokens": float(params * rng.uniform(10, 100)),  # 10-100 tokens per parameter
            "budget_fraction": float(10 ** rng.uniform(np.log10(0.005), np.log10(0.3))),
        }


def prepare(exit):
    """Django set up, the database migrated, with a corpus and an active error model. Returns the artifact.

    ``exit(status, message)`` reports a missing service (argparse's parser.exit).
    """
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from planner.models import Family
    from planner.errormodels.services import error_model_active

    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("redis"):
        exit(2, "needs DATABASE_URL (PostgreSQL) and REDIS_URL: web and worker are separate processes\n")
    call_command("migrate", verbosity=0)
    if not Family.objects.exists():
        corpus = settings.SCALEPLAN_SHARED_DIR / "corpus"
        print(f"bench database is empty: importing {corpus / 'colpret.csv.gz'}", flush=True)
        call_command("import_corpus", str(corpus / "colpret.csv.gz"), "--families", str(corpus / "families.csv"))
    if error_model_active() is None:
        print("no error model yet: building one from the corpus (rebuild_error_model --sync)", flush=True)
        call_command("rebuild_error_model", "--sync")
    return error_model_active()


def bench_tokens(prefix: str, n: int) -> list[str]:
    """API tokens of n users named prefix-0 .. prefix-(n-1), made if missing."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    tokens = []
    for i in range(n):
        user, _ = get_user_model().objects.get_or_create(username=f"{prefix}-{i}")
        tokens.append(Token.objects.get_or_create(user=user)[0].key)
    return tokens


@contextlib.contextmanager
def running_service(*, port: int, worker_concurrency: int = 1, web_args=(), env=None, logs_name="bench"):
    """One Celery worker and gunicorn (2 workers) on 127.0.0.1:port; yields the base URL."""
    import requests
    from django.conf import settings

    from planner.celery import app

    # Tasks left by an interrupted run would be taken first.
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(app.conf.task_default_queue)
    logdir = Path(settings.DATA_DIR) / "bench-logs"
    logdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DEBUG": "false", **(env or {})}
    worker = start([sys.executable, "-m", "celery", "-A", "planner", "worker", "--loglevel", "INFO",
                    "--concurrency", str(worker_concurrency), "--pool", "prefork",
                    "--without-gossip", "--without-mingle", "--without-heartbeat"],
                   logdir / f"{logs_name}-worker.log", " ready.", env)
    web = None
    try:
        web = start([sys.executable, "-m", "gunicorn", "planner.wsgi", *web_args, "--bind", f"127.0.0.1:{port}",
                     "--workers", "2"], logdir / f"{logs_name}-web.log", "Booting worker", env)
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):  # gunicorn's workers take a moment after "Booting worker"
            try:
                requests.get(f"{base}/api/v1/error-model/", timeout=10)
                break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        yield base
    finally:
        if web is not None:
            stop(web)
        stop(worker)

"""Benchmark: plan latency end to end through the API - POST /api/v1/plans/, poll until succeeded.

Usage:
  DATABASE_URL=postgres://... REDIS_URL=redis://127.0.0.1:6379/N \\
      .venv/bin/python bench/plan_latency.py [--requests 200] [--warmup 3]

Needs the corpus's error model in the database (manage.py rebuild_error_model,
or POST /api/v1/sweeps/). Starts gunicorn (2 workers) on a free local port and
one Celery worker, makes a user with a token, then sends the requests one after
another - targets from 1e8 to 7e10 parameters, budgets from 0.5% to 30% of the
target's compute, from a seeded generator - each timed from the POST until a
GET of its Location says succeeded (polled every 5 ms). Prints p50/p95/max;
the bar (issue 4) is p95 <= 300 ms. The broker's default queue is used (as the
web process sends there), so use a Redis database no other worker consumes.
"""
import argparse
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
BAR_P95_MS = 300.0


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


def requests_to_send(n, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        params = float(10 ** rng.uniform(8, np.log10(7e10)))
        yield {
            "target_params": params,
            "target_tokens": float(params * rng.uniform(10, 100)),  # 10-100 tokens per parameter
            "budget_fraction": float(10 ** rng.uniform(np.log10(0.005), np.log10(0.3))),
        }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=3, help="requests sent first and not counted")
    args = parser.parse_args(argv)

    import django

    django.setup()
    import requests
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from planner.celery import app
    from planner.services_sweeps import error_model_active

    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("redis"):
        parser.exit(2, "needs DATABASE_URL (PostgreSQL) and REDIS_URL: web and worker are separate processes\n")
    artifact = error_model_active()
    if artifact is None:
        parser.exit(2, "no error model yet: run manage.py rebuild_error_model (or POST /api/v1/sweeps/)\n")
    user, _ = get_user_model().objects.get_or_create(username="plan-latency-bench")
    token, _ = Token.objects.get_or_create(user=user)
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(app.conf.task_default_queue)

    logdir = Path(settings.DATA_DIR) / "bench-logs"
    logdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "DEBUG": "false"}
    worker = start([sys.executable, "-m", "celery", "-A", "planner", "worker", "--loglevel", "INFO", "--concurrency", "1",
                    "--pool", "prefork", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                   logdir / "plan-worker.log", " ready.", env)
    web = start([sys.executable, "-m", "gunicorn", "planner.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
                 "--access-logfile", "-"], logdir / "plan-web.log", "Booting worker", env)
    base = f"http://127.0.0.1:{port}"
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token.key}"
    print(f"error model v{artifact.version}; database {connection.settings_dict['NAME']}; {base}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")

    def one(body) -> float:
        started = time.perf_counter()
        response = session.post(f"{base}/api/v1/plans/", json=body, timeout=30)
        if response.status_code != 202:
            raise SystemExit(f"POST answered {response.status_code}: {response.text}")
        location = response.headers["Location"]
        while True:
            job = session.get(location, timeout=30).json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.005)
        if job["status"] != "succeeded":
            raise SystemExit(f"plan {job['id']} {job['status']}: {job['error']}")
        return (time.perf_counter() - started) * 1000

    try:
        for _ in range(60):  # gunicorn's workers take a moment after "Booting worker"
            try:
                session.get(f"{base}/api/v1/error-model/", timeout=10)
                break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        bodies = list(requests_to_send(args.warmup + args.requests))
        warm = [one(b) for b in bodies[: args.warmup]]
        times = np.array([one(b) for b in bodies[args.warmup:]])
    finally:
        stop(web)
        stop(worker)
    p50, p95 = np.percentile(times, [50, 95])
    print(f"warm-up (not counted): {', '.join(f'{t:.0f}' for t in warm)} ms")
    print(f"{len(times)} plans end to end: p50 {p50:.0f} ms  p95 {p95:.0f} ms  max {times.max():.0f} ms  "
          f"(bar p95 <= {BAR_P95_MS:.0f} ms: {'met' if p95 <= BAR_P95_MS else 'NOT met'}); "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

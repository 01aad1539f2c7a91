"""Benchmark: many users at once creating plans and polling them, through gunicorn, Redis and a Celery worker.

Usage (locust is in the "bench" extra: .venv/bin/pip install -e '.[dev,bench]'):
  DATABASE_URL=postgres://... REDIS_URL=redis://127.0.0.1:6379/N \\
      .venv/bin/python bench/load.py [--users 50] [--seconds 60] [--port 8720] [--poll 0.25]

Prepares the database if needed (bench/service.py: migrations, the reference
corpus, an error model built from it), then starts gunicorn with 2 workers
(deploy/gunicorn.conf.py, as deployed) and one Celery worker (concurrency 2, as
deploy/bin/worker) on this machine, and runs locust as a library: each of the
--users users, with a token of its own, POSTs /api/v1/plans/ (seeded random
targets and budgets, as bench/plan_latency.py), polls the job's Location every
--poll seconds until it succeeds, and starts the next plan at once. Prints
requests/s, the error count (any answer but 202/200, or a plan that did not
succeed; must be 0) and p50/p95 latency overall and per endpoint, then how many
plans were made and their time from POST to succeeded.

Per-user throttling of plan creation would measure the throttle, not the
service: every user has its own token, and the server gets SCALEPLAN_PLAN_RATE
and SCALEPLAN_PREDICTION_RATE of 1000000/minute. The broker's default queue is
used (as the web process sends there), so use a Redis database no other worker
consumes. Not run by CI.
"""
# locust patches the standard library for gevent when imported: first.
import gevent  # noqa: I001
from locust import HttpUser, constant, task
from locust.env import Environment

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service import bench_tokens, free_port, plan_bodies, prepare, running_service  # noqa: E402

UNTHROTTLED = "1000000/minute"
POST_NAME, GET_NAME = "POST /api/v1/plans/", "GET /api/v1/plans/<id>/"


class PlanUser(HttpUser):
    """Creates a plan, polls it until it succeeds, and again, with no pause in between."""

    wait_time = constant(0)
    tokens: list[str] = []
    bodies = None
    poll = 0.25
    plans_made: list[float] = []  # seconds from POST to succeeded
    _next_token = itertools.count()

    def on_start(self):
        token = self.tokens[next(self._next_token) % len(self.tokens)]
        self.client.headers["Authorization"] = f"Token {token}"

    @task
    def plan(self):
        started = time.perf_counter()
        with self.client.post("/api/v1/plans/", json=next(self.bodies), name=POST_NAME, catch_response=True) as r:
            if r.status_code != 202:
                r.failure(f"{r.status_code}: {r.text[:200]}")
                return
            location = r.headers["Location"]
        while True:
            gevent.sleep(self.poll)
            with self.client.get(location, name=GET_NAME, catch_response=True) as r:
                if r.status_code != 200:
                    r.failure(f"{r.status_code}: {r.text[:200]}")
                    return
                job = r.json()
                if job["status"] in ("failed", "cancelled"):
                    r.failure(f"plan {job['id']} {job['status']}: {job.get('error')}")
                    return
            if job["status"] == "succeeded":
                self.plans_made.append(time.perf_counter() - started)
                return


def line(name, entry, seconds):
    return (f"  {name:<26} {entry.num_requests:>6} requests  {entry.num_requests / seconds:6.1f}/s  "
            f"p50 {entry.get_response_time_percentile(0.5):5.0f} ms  p95 {entry.get_response_time_percentile(0.95):5.0f} ms  "
            f"max {entry.max_response_time:5.0f} ms  errors {entry.num_failures}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--port", type=int, default=0, help="gunicorn's port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--poll", type=float, default=0.25, help="seconds between a user's polls of its plan")
    parser.add_argument("--worker-concurrency", type=int, default=2)
    args = parser.parse_args(argv)

    artifact = prepare(parser.exit)
    from django.db import connection

    from planner.models import Job

    PlanUser.tokens = bench_tokens("load-bench", args.users)
    PlanUser.bodies = itertools.cycle(list(plan_bodies(5000, seed=1)))
    PlanUser.poll = args.poll
    server_env = {"SCALEPLAN_PLAN_RATE": UNTHROTTLED, "SCALEPLAN_PREDICTION_RATE": UNTHROTTLED}
    first_job = (Job.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    with running_service(port=args.port or free_port(), worker_concurrency=args.worker_concurrency, env=server_env,
                         web_args=["--config", str(Path(__file__).resolve().parent.parent / "deploy/gunicorn.conf.py")],
                         logs_name="load") as base:
        print(f"error model v{artifact.version}; database {connection.settings_dict['NAME']}; {base}; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        print(f"{args.users} users (a token each; server rates {UNTHROTTLED}) for {args.seconds:g} s: "
              f"gunicorn 2 workers, 1 Celery worker (concurrency {args.worker_concurrency}), polls every {args.poll:g} s",
              flush=True)
        env = Environment(user_classes=[PlanUser], host=base)
        runner = env.create_local_runner()
        started = time.monotonic()
        runner.start(args.users, spawn_rate=args.users)
        gevent.spawn_later(args.seconds, runner.quit)
        runner.greenlet.join()
        seconds = time.monotonic() - started
        load_after = os.getloadavg()[0]
        # Let the worker finish the plans still queued when the users stopped, so none is left behind.
        deadline = time.monotonic() + 120
        while Job.objects.filter(pk__gte=first_job, status__in=["queued", "running"]).exists():
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)

    stats = env.stats
    total = stats.total
    made = np.array(PlanUser.plans_made) * 1000
    created = Job.objects.filter(pk__gte=first_job, kind=Job.Kind.PLAN)
    print(f"\n{total.num_requests} requests in {seconds:.1f} s: {total.num_requests / seconds:.1f} requests/s; "
          f"errors: {total.num_failures}")
    print(line("overall", total, seconds))
    for name in (POST_NAME, GET_NAME):
        entry = stats.entries.get((name, name.split()[0]))
        if entry is not None:
            print(line(name, entry, seconds))
    for error in stats.errors.values():
        print(f"  error x{error.occurrences}: {error.method} {error.name}: {error.error}")
    if len(made):
        p50, p95 = np.percentile(made, [50, 95])
        print(f"plans: {len(made)} made during the run ({len(made) / seconds:.1f}/s), POST to succeeded "
              f"p50 {p50:.0f} ms  p95 {p95:.0f} ms  max {made.max():.0f} ms")
    left = created.exclude(status=Job.Status.SUCCEEDED).count()
    print(f"plan jobs created: {created.count()}, not succeeded after the drain: {left}; "
          f"load average {load_after:.1f}")
    if total.num_failures or left:
        sys.exit(1)


if __name__ == "__main__":
    main()

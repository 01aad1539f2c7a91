"""Benchmark: plan latency end to end through the API - POST /api/v1/plans/, poll until succeeded.

Usage:
  DATABASE_URL=postgres://... REDIS_URL=redis://127.0.0.1:6379/N \\
      .venv/bin/python bench/plan_latency.py [--requests 200] [--warmup 3]

Prepares the database if needed (bench/service.py: corpus, error model). Starts
gunicorn (2 workers) on a free local port and one Celery worker, makes a user
with a token, then sends the requests one after
another - targets from 1e8 to 7e10 parameters, budgets from 0.5% to 30% of the
target's compute, from a seeded generator - each timed from the POST until a
GET of its Location says succeeded (polled every 5 ms). Prints p50/p95/max;
the bar (issue 4) is p95 <= 300 ms. The broker's default queue is used (as the
web process sends there), so use a Redis database no other worker consumes.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service import bench_tokens, free_port, plan_bodies, prepare, running_service  # noqa: E402

BAR_P95_MS = 300.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=3, help="requests sent first and not counted")
    args = parser.parse_args(argv)

    artifact = prepare(parser.exit)
    import requests
    from django.db import connection

    session = requests.Session()
    session.headers["Authorization"] = f"Token {bench_tokens('plan-latency-bench', 1)[0]}"

    def one(base, body) -> float:
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

    with running_service(port=free_port(), logs_name="plan", web_args=["--access-logfile", "-"]) as base:
        print(f"error model v{artifact.version}; database {connection.settings_dict['NAME']}; {base}; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        bodies = list(plan_bodies(args.warmup + args.requests))
        warm = [one(base, b) for b in bodies[: args.warmup]]
        times = np.array([one(base, b) for b in bodies[args.warmup:]])
    p50, p95 = np.percentile(times, [50, 95])
    print(f"warm-up (not counted): {', '.join(f'{t:.0f}' for t in warm)} ms")
    print(f"{len(times)} plans end to end: p50 {p50:.0f} ms  p95 {p95:.0f} ms  max {times.max():.0f} ms  "
          f"(bar p95 <= {BAR_P95_MS:.0f} ms: {'met' if p95 <= BAR_P95_MS else 'NOT met'}); "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

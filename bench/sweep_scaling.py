"""Benchmark: the error-model rebuild (a `sweep` job) on 1 and then 2 real Celery workers; laws/s for each.

Usage:
  DATABASE_URL=postgres://... REDIS_URL=redis://127.0.0.1:6379/N \\
      .venv/bin/python bench/sweep_scaling.py [--workers 1 2] [--family NAME ...]

The database must hold the corpus (manage.py import_corpus ...). For each worker
count it starts that many `celery -A planner worker --concurrency 1` processes on
a queue of its own, queues a sweep job, waits for it to succeed and prints:
laws (backtested designs), the sweep stage's wall seconds (dispatch to the last
family written) and laws/s over it, and the whole job's seconds (with the error
model's leave-one-family-out fit, which is one task and does not scale). Each
run activates a new error-model version, as a rebuild does.
"""
import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planner.settings")


def start_workers(n, queue, logdir):
    procs = []
    for i in range(n):
        log = open(logdir / f"worker{i}.log", "wb")
        cmd = [sys.executable, "-m", "celery", "-A", "planner", "worker", "--loglevel", "INFO", "--concurrency", "1",
               "--pool", "prefork", "--hostname", f"bench{i}-{queue}@%h", "--queues", queue,
               "--without-gossip", "--without-mingle", "--without-heartbeat"]
        procs.append((subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True),
                      logdir / f"worker{i}.log"))
    deadline = time.monotonic() + 60
    for proc, log in procs:
        while " ready." not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)
    return [p for p, _ in procs]


def stop_workers(procs):
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--family", action="append", dest="families", help="only this family (repeatable)")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from planner.celery import app
    from planner.models import Family, Job
    from planner.errormodels.services import sweep_enqueue

    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("redis"):
        parser.exit(2, "needs DATABASE_URL (PostgreSQL) and REDIS_URL: the workers are separate processes\n")
    call_command("migrate", verbosity=0)
    if not Family.objects.exists():
        parser.exit(2, "the corpus is empty: manage.py import_corpus ../shared/corpus/colpret.csv.gz "
                       "--families ../shared/corpus/families.csv\n")
    queue = f"scaleplan-bench-{uuid.uuid4().hex[:8]}"
    app.conf.task_default_queue = queue
    logdir = Path(settings.DATA_DIR) / "bench-logs"
    logdir.mkdir(parents=True, exist_ok=True)
    print(f"database {connection.settings_dict['NAME']}; broker {settings.CELERY_BROKER_URL}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    try:
        for n in args.workers:
            procs = start_workers(n, queue, logdir)
            try:
                started = time.perf_counter()
                job = sweep_enqueue(families=args.families)
                last_row_at = None
                while True:
                    job.refresh_from_db()
                    if job.is_finished:
                        break
                    if last_row_at is None and (job.result or {}).get("stage") == "finalising":
                        last_row_at = time.perf_counter()
                    if time.perf_counter() - started > args.timeout:
                        raise SystemExit(f"sweep job {job.pk} still {job.status} after {args.timeout} s")
                    time.sleep(0.2)
                total = time.perf_counter() - started
            finally:
                stop_workers(procs)
            if job.status != Job.Status.SUCCEEDED:
                raise SystemExit(f"sweep job {job.pk} {job.status}: {job.error}")
            laws = job.result["laws"]
            sweep_seconds = (last_row_at or time.perf_counter()) - started
            print(f"{n} worker(s): {laws} laws from {len(job.result['families'])} families; sweep stage "
                  f"{sweep_seconds:.1f} s -> {laws / sweep_seconds:.1f} laws/s; whole job {total:.1f} s "
                  f"({laws / total:.1f} laws/s; error model v{job.result['artifact_version']}, fitted in "
                  f"{job.result['error_model_seconds']:.1f} s); fit CPU in rows {job.result['fit_seconds_total']:.1f} s; "
                  f"load average {os.getloadavg()[0]:.1f}")
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)
            conn.default_channel.client.delete(f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")


if __name__ == "__main__":
    main()

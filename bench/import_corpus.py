"""Benchmark: import ../shared/corpus/colpret.csv.gz into the database of DATABASE_URL.

Usage: DATABASE_URL=postgres://... .venv/bin/python bench/import_corpus.py [--force] [--file F]

Measures one full import_canonical (read, validate, write, commit) into an
empty corpus and prints rows, seconds and rows/s. With --force it first
DELETES EVERY FAMILY, RUN AND OBSERVATION in that database; without it, it
refuses to run against a database that holds corpus rows.
"""
import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planner.settings")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true",
                        help="delete all families, runs and observations in the target database first")
    parser.add_argument("--file", type=Path, help="corpus file (default: SCALEPLAN_SHARED_DIR/corpus/colpret.csv.gz)")
    parser.add_argument("--repeat", type=int, default=1, help="import this many times (emptied between runs)")
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from planner.corpus.importing import import_canonical
    from planner.models import Family, Observation

    path = args.file or Path(settings.SCALEPLAN_SHARED_DIR) / "corpus" / "colpret.csv.gz"
    call_command("migrate", verbosity=0)
    if Observation.objects.exists() or Family.objects.exists():
        if not args.force:
            parser.exit(2, f"{connection.settings_dict['NAME']} already holds corpus rows; "
                           "rerun with --force to delete them first\n")
    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}; file: {path}")
    for _ in range(args.repeat):
        _empty_corpus(connection, Family)
        start, cpu = time.perf_counter(), time.process_time()
        phases = []
        report = import_canonical(path, progress=lambda f, m: phases.append((time.perf_counter(), m)))
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
        # Load average for context: on a shared machine the wall time tracks it.
        print(f"rows {report.rows_inserted}  seconds {seconds:.2f}  rows/s {report.rows_inserted / seconds:,.0f}  "
              f"(client CPU {cpu:.2f}s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
        print("  phases: " + "; ".join(f"{t - start:.2f}s {m.split(';')[0]}" for t, m in phases))


def _empty_corpus(connection, Family):
    if connection.vendor == "postgresql":
        # TRUNCATE, not DELETE: leaves no dead rows to slow the next import.
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE planner_observation, planner_run, planner_family")
    else:
        Family.objects.all().delete()  # cascades to runs and observations


if __name__ == "__main__":
    main()

"""Gunicorn settings for the web process (deploy/bin/web, scripts/serve).

Values come from the environment so one file serves systemd, Docker and the
embedded mode; command-line flags still override them.
"""
import os

bind = os.environ.get("GUNICORN_BIND", f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}")
# Requests are short (long work goes to Celery), so a few sync workers suffice.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# Corpus uploads (up to SCALEPLAN_MAX_UPLOAD_BYTES) must finish within this.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so a slow leak (pandas, matplotlib) cannot grow forever, each after between
# max_requests and twice that many requests (the jitter): spread that wide, workers serving the same load
# do not reach their limits together, so one is always serving while another is replaced.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "1000"))
max_requests_jitter = max_requests
# Load the app once in the master and fork workers from it: a recycled worker is
# back at once instead of re-importing Django, numpy, pandas and matplotlib for
# seconds while the other worker takes all the load (bench/load.py: the slowest
# requests were those waiting for a recycled worker). New code therefore needs a
# restart of the web process, not a HUP.
preload_app = True
# Logs to stdout/stderr: journald or Docker collect them.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Trust X-Forwarded-* only from the reverse proxy in front of us.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# Heartbeat files on tmpfs: a disk-backed /tmp can stall workers under Docker.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"
# gunicorn >= 25.1 opens a control socket at one per-user path, so a second
# instance on the host (another checkout, a benchmark) would fight over it;
# nothing here uses gunicornc. Older versions ignore the unknown name.
control_socket_disable = True


def worker_exit(server, worker):
    """A recycled worker leaves at once, so the master replaces it at once.

    Left to Python's own shutdown, a worker forked from the preloaded master (Django, numpy, pandas,
    matplotlib) spends a second or more tearing its modules down, touching every page it shares with the
    master; meanwhile the master has not replaced it, and a second worker recycling then left nobody
    serving (issue 11: 6 s without a response). Its requests are done and its logs flushed: nothing is lost.
    """
    import sys

    from django.db import connections

    connections.close_all()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)

"""Web restarts never leave the service without a worker (issue 11 #11): a load test through gunicorn.

gunicorn recycles each worker after max_requests (plus jitter). Under load both workers of the issue's run
restarted together and nothing was served for 6 s. Here gunicorn runs as deployed (deploy/gunicorn.conf.py,
2 workers, preloaded app) with max_requests lowered so that workers recycle many times in a few seconds,
while clients keep requesting a page that reads the database; every request must succeed and no client may
wait long for an answer.
"""
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
MAX_REQUESTS = 40
CLIENTS = 4
SECONDS = 12


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.subprocess
def test_recycled_web_workers_leave_no_gap_in_service(tmp_path):
    import requests

    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'web.sqlite3'}", "SCALEPLAN_DATA_DIR": str(tmp_path),
           "DEBUG": "false", "GUNICORN_MAX_REQUESTS": str(MAX_REQUESTS), "WEB_CONCURRENCY": "2",
           "REDIS_URL": "", "CELERY_BROKER_URL": "filesystem://", "LOG_LEVEL": "INFO"}
    migrated = subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=BASE_DIR, env=env,
                              capture_output=True, text=True)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    port = _free_port()
    log = open(tmp_path / "web.log", "wb")
    web = subprocess.Popen([sys.executable, "-m", "gunicorn", "planner.wsgi:application", "--config",
                            "deploy/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"], cwd=BASE_DIR, env=env,
                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api/v1/families/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(url, timeout=5).raise_for_status()
                break
            except requests.RequestException:
                assert time.monotonic() < deadline and web.poll() is None, (tmp_path / "web.log").read_text()
                time.sleep(0.2)
        latencies, failures = [], []
        stop_at = time.monotonic() + SECONDS

        def client():
            session = requests.Session()
            while time.monotonic() < stop_at:
                started = time.monotonic()
                try:
                    response = session.get(url, timeout=30)
                    if response.status_code != 200:
                        failures.append(response.status_code)
                except requests.RequestException as exc:
                    failures.append(repr(exc))
                latencies.append(time.monotonic() - started)

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        os.killpg(web.pid, 15)
        web.wait(timeout=30)
        log.close()
    text = (tmp_path / "web.log").read_text()
    restarts = len(re.findall(r"Autorestarting worker", text))
    latencies.sort()
    worst = latencies[-1]
    print(f"{len(latencies)} requests, {restarts} worker restarts, p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, "
          f"worst {worst * 1000:.0f} ms, failures {len(failures)}")
    assert failures == []
    assert restarts >= 4, text[-2000:]  # the workers did recycle, several times each
    # No gap: even a request that arrived while a worker recycled was answered at once by the other one.
    assert worst < 1.0, (worst, [round(x, 2) for x in latencies[-10:]], text[-3000:])

"""README command 1: scripts/serve runs the whole service with no configuration."""
import gzip
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.subprocess

BASE_DIR = Path(__file__).resolve().parents[2]
# Variables that would take the service out of its embedded default.
CONFIG = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SCALEPLAN_ENV", "SECRET_KEY", "ALLOWED_HOSTS",
          "DEBUG", "DJANGO_SETTINGS_MODULE", "CELERY_TASK_ALWAYS_EAGER")

CORPUS = """family,model,arch,params,tokens,step,seed,dataset,epochs,flops,metric,value,split,source
tiny-a,tiny-a-10m,dec,10000000,1e9,,,web,,,val_loss,4.1,validation,test
tiny-a,tiny-a-10m,dec,10000000,2e9,,,web,,,val_loss,3.9,validation,test
tiny-a,tiny-a-40m,dec,40000000,1e9,,,web,,,val_loss,3.7,validation,test
tiny-a,tiny-a-40m,dec,40000000,2e9,,,web,,,val_loss,3.5,validation,test
tiny-b,tiny-b-20m,dec,20000000,1e9,,,web,,,val_loss,3.8,validation,test
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def get(url, headers=None):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return None, ""


def post_json(url, body, headers):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def serve_env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if k not in CONFIG}
    env.update(
        PORT=str(free_port()),
        SCALEPLAN_DATA_DIR=str(tmp_path / "data"),
        STATIC_ROOT=str(tmp_path / "static"),
        # Use the interpreter running the tests rather than making another venv.
        SCALEPLAN_VENV=sys.prefix,
        **extra,
    )
    return env


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_it_serves_the_corpus_runs_jobs_and_stops_both_processes_on_term(tmp_path):
    shared = tmp_path / "shared"
    (shared / "corpus").mkdir(parents=True)
    with gzip.open(shared / "corpus" / "colpret.csv.gz", "wt") as f:
        f.write(CORPUS)
    data, port = tmp_path / "data", free_port()
    env = {k: v for k, v in os.environ.items() if k not in CONFIG}
    env.update(
        PORT=str(port),
        SCALEPLAN_DATA_DIR=str(data),
        STATIC_ROOT=str(tmp_path / "static"),
        SCALEPLAN_SHARED_DIR=str(shared),
        # Use the interpreter running the tests rather than making another venv.
        SCALEPLAN_VENV=sys.prefix,
    )
    log = open(tmp_path / "serve.log", "w+")
    serve = subprocess.Popen(
        ["bash", "scripts/serve"], cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        home = f"http://127.0.0.1:{port}/"
        wait_until(lambda: get(home)[0] == 200 or serve.poll() is not None, 120, "the home page")
        status, page = get(home)
        output = (tmp_path / "serve.log").read_text()
        assert status == 200, output
        assert "loading the reference corpus" in output
        # The script says so once its own probe connects (every 0.2 s): maybe just after this test's did.
        wait_until(lambda: f"serving on http://127.0.0.1:{port}/" in (tmp_path / "serve.log").read_text(), 10,
                   "serve to say it is serving")
        wait_until(lambda: "beat: Starting..." in (tmp_path / "serve.log").read_text(), 30, "beat in the worker")
        assert '<span class="n">2</span> <span class="label">families' in page
        assert '<span class="n">5</span> <span class="label">observations' in page

        # A job queued from another process is run by serve's worker over the
        # filesystem broker.
        queued = subprocess.run(
            [sys.executable, "manage.py", "refresh_stats", "--async"], cwd=BASE_DIR, env=env,
            capture_output=True, text=True, timeout=60,
        )
        assert queued.returncode == 0, queued.stderr
        db = data / "scaleplan.sqlite3"

        def job_status():
            with sqlite3.connect(db, timeout=30) as conn:
                return conn.execute("SELECT status FROM planner_job").fetchone()[0]

        wait_until(lambda: job_status() in ("succeeded", "failed"), 60, "the job to finish")
        assert job_status() == "succeeded"

        serve.send_signal(signal.SIGTERM)
        # 128 + SIGTERM: it stopped through its signal handler, which waits
        # for both children, so none is left behind.
        assert serve.wait(timeout=90) == 128 + signal.SIGTERM
        wait_until(lambda: not group_alive(serve.pid), 3, "web and worker to exit")
        assert get(home)[0] is None
    finally:
        if serve.poll() is None or group_alive(serve.pid):
            os.killpg(serve.pid, signal.SIGKILL)
        log.close()


@pytest.mark.slow
def test_a_fresh_server_on_the_shipped_corpus_makes_a_plan_within_two_minutes_of_answering(tmp_path):
    """Issue 10's first-run bar: a fresh clone's scripts/serve loads the shipped corpus, finds it is the one the
    shipped error model was built from and loads that model, so a plan can be made at once (no sweep)."""
    from django.conf import settings

    shared = Path(settings.SCALEPLAN_SHARED_DIR)
    if not (shared / "corpus" / "colpret.csv.gz").exists():
        pytest.skip(f"the shipped corpus is not at {shared / 'corpus'}")
    env = serve_env(tmp_path, SCALEPLAN_SHARED_DIR=str(shared), SCALEPLAN_ADMIN_PASSWORD="first-run-pw")
    log = open(tmp_path / "serve.log", "w+")
    serve = subprocess.Popen(["bash", "scripts/serve"], cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{env['PORT']}"
        wait_until(lambda: get(base + "/")[0] == 200 or serve.poll() is not None, 300, "the home page")
        answering = time.monotonic()
        output = (tmp_path / "serve.log").read_text()
        assert get(base + "/")[0] == 200, output
        assert "error model: loaded the shipped one as v1" in output, output

        token = subprocess.run([sys.executable, "manage.py", "drf_create_token", "admin"], cwd=BASE_DIR, env=env,
                               capture_output=True, text=True, timeout=60)
        assert token.returncode == 0, token.stderr
        headers = {"Authorization": "Token " + token.stdout.split()[2]}
        status, job = post_json(base + "/api/v1/plans/", {"target_params": 7e9, "target_tokens": 1.4e11,
                                                          "budget_fraction": 0.05}, headers)
        assert status == 202, job

        def finished():
            return json.loads(get(job["url"], headers)[1])["status"] in ("succeeded", "failed")

        wait_until(finished, 120 - (time.monotonic() - answering), "the first plan")
        plan = json.loads(get(job["url"], headers)[1])
        assert plan["status"] == "succeeded", plan
        assert plan["result"]["recommended"]["models"] and plan["result"]["error_model_version"] == 1
        assert time.monotonic() - answering < 120
        # The shipped model is recorded with the corpus it was built from; no rebuild was queued.
        assert json.loads(get(base + "/api/v1/error-model/")[1])["version"] == 1
        db = tmp_path / "data" / "scaleplan.sqlite3"
        with sqlite3.connect(db, timeout=30) as conn:
            assert conn.execute("SELECT count(*) FROM planner_job WHERE kind = 'sweep'").fetchone()[0] == 0

        # A restart finds the model active and built from this corpus: nothing to do.
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=90)
        again = subprocess.run([sys.executable, "manage.py", "ensure_error_model"], cwd=BASE_DIR, env=env,
                               capture_output=True, text=True, timeout=120)
        assert again.stdout.strip() == "error model: v1 is active, built from this corpus", again
    finally:
        if serve.poll() is None or group_alive(serve.pid):
            os.killpg(serve.pid, signal.SIGKILL)
        log.close()

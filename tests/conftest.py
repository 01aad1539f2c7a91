"""Shared fixtures: a fixed cast of users with tokens, API clients, a small corpus,
and real Celery worker processes over Redis.

Worker tests need Redis (REDIS_URL) and a database another process can open
(PostgreSQL through DATABASE_URL). Without them they are skipped with the
reason, except under CI=true, where a missing service is a failure.
"""
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
# Each test session (and each xdist process) gets its own Celery queue, so
# sessions sharing a Redis database never take each other's tasks.
TEST_QUEUE = f"scaleplan-test-{uuid.uuid4().hex[:12]}"


def pytest_configure(config):
    from planner.celery import app

    app.conf.task_default_queue = TEST_QUEUE


@pytest.fixture(autouse=True)
def _fast_password_hasher(request, settings):
    """Users are made in most tests: hash their passwords quickly (Django's advice for tests).

    Not for browser tests: their server process checks the passwords with the project's own hashers.
    """
    if request.node.get_closest_marker("browser") is None:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path):
    """Uploads and other files go to a per-test directory; throttle counts and laws to per-test caches."""
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()
    # Throttle counts start from zero in every test (the real cache is a shared directory); so do the laws
    # (the stats job computes them, and the real cache is a directory under the project's data).
    settings.CACHES = {**settings.CACHES, **{alias: {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"{alias}-{uuid.uuid4().hex}"}
        for alias in ("throttle", "laws")}}
    return settings.DATA_DIR


# --- users -------------------------------------------------------------------


def _user(django_user_model, username, **extra):
    from rest_framework.authtoken.models import Token

    user = django_user_model.objects.create_user(username=username, password="pw-" + username, **extra)
    user.token = Token.objects.create(user=user).key
    return user


@pytest.fixture
def owner(db, django_user_model):
    return _user(django_user_model, "owner")


@pytest.fixture
def stranger(db, django_user_model):
    return _user(django_user_model, "stranger")


@pytest.fixture
def staff(db, django_user_model):
    return _user(django_user_model, "staff", is_staff=True, is_superuser=True)


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def client_for():
    """client_for(user) -> an APIClient sending that user's token (None: anonymous)."""
    from rest_framework.test import APIClient

    def make(user):
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Token {user.token}")
        return client

    return make


# --- a small corpus ------------------------------------------------------------

SMALL_CORPUS = """\
family,model,arch,params,tokens,step,seed,dataset,epochs,flops,metric,value,split,source
tiny,tiny-10m,dec,10000000,1e9,100,,pile,,,val_loss,4.0,validation,test
tiny,tiny-10m,dec,10000000,2e9,200,,pile,,,val_loss,3.5,validation,test
tiny,tiny-10m,dec,10000000,4e9,400,,pile,,,val_loss,3.2,validation,test
tiny,tiny-10m,dec,10000000,4e9,400,,pile,,,train_loss,3.1,train,test
tiny,tiny-50m,dec,50000000,1e9,100,,pile,,,val_loss,3.6,validation,test
tiny,tiny-50m,dec,50000000,4e9,400,,pile,,,val_loss,2.9,validation,test
tiny,tiny-50m,dec,50000000,4e9,400,1,pile,,,val_loss,2.95,validation,test
other,other-1b,enc-dec,1000000000,2e10,,,c4,,,val_loss,2.5,validation,test
"""


@pytest.fixture
def small_corpus_csv(tmp_path):
    path = tmp_path / "small.csv"
    path.write_text(SMALL_CORPUS)
    return path


@pytest.fixture
def corpus(db):
    """Two families built directly with the ORM (independent of the importer)."""
    from planner.models import Family, Observation, Run

    tiny = Family.objects.create(name="tiny", arch="dec", primary_metric="val_loss", dataset="pile")
    other = Family.objects.create(name="other", arch="enc-dec", primary_metric="val_loss", excluded_from_fitting=True)
    runs = {
        "tiny-10m": Run.objects.create(family=tiny, name="tiny-10m", arch="dec", params=10_000_000),
        "tiny-50m": Run.objects.create(family=tiny, name="tiny-50m", arch="dec", params=50_000_000),
        "tiny-50m-s1": Run.objects.create(family=tiny, name="tiny-50m", seed="1", arch="dec", params=50_000_000),
        "other-1b": Run.objects.create(family=other, name="other-1b", arch="enc-dec", params=1_000_000_000),
    }
    rows = [
        ("tiny-10m", 1e9, "val_loss", 4.0, "validation"),
        ("tiny-10m", 2e9, "val_loss", 3.5, "validation"),
        ("tiny-10m", 4e9, "val_loss", 3.2, "validation"),
        ("tiny-10m", 4e9, "train_loss", 3.1, "train"),
        ("tiny-50m", 1e9, "val_loss", 3.6, "validation"),
        ("tiny-50m", 4e9, "val_loss", 2.9, "validation"),
        ("tiny-50m-s1", 4e9, "val_loss", 2.95, "validation"),
        ("other-1b", 2e10, "val_loss", 2.5, "validation"),
    ]
    Observation.objects.bulk_create(
        Observation(run=runs[r], tokens=t, metric=m, value=v, split=sp) for r, t, m, v, sp in rows
    )
    return {"tiny": tiny, "other": other, "runs": runs}


@contextlib.contextmanager
def broker_at(url):
    """Point this process's Celery app at another broker URL, then back."""
    from planner.celery import app

    saved = app.conf.broker_url

    def reset_pools():
        # The app caches pools built from the old URL (kombu keeps them per URL, so they are not closed).
        app._pool = None
        app.amqp._producer_pool = None

    reset_pools()
    app.conf.broker_url = url
    try:
        yield
    finally:
        reset_pools()
        app.conf.broker_url = saved


@pytest.fixture
def unreachable_broker():
    """Point the Celery app at a closed port (as when Redis is down), then restore it."""
    with broker_at("redis://127.0.0.1:1/0"):
        yield


class ThrowawayRedis:
    """A redis-server of the test's own (no persistence), to kill and start again; the shared one is never touched."""

    def __init__(self, port, workdir):
        self.port, self.workdir = port, workdir
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server on port {self.port} did not start")
                time.sleep(0.05)

    def kill(self):
        """As if the Redis host died: SIGKILL, its data gone with it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def queue_length(self, queue=None):
        import redis

        return redis.Redis(port=self.port).llen(queue or TEST_QUEUE)


def _free_port(preferred):
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            probe.bind(("127.0.0.1", 0))  # taken (a second run on this machine): any free port
        return probe.getsockname()[1]


@pytest.fixture
def throwaway_redis(tmp_path):
    """A running ThrowawayRedis that this process's Celery app sends to; killed at teardown."""
    _require(shutil.which("redis-server") is not None, "these tests start their own redis-server (apt install redis-server)")
    server = ThrowawayRedis(_free_port(6391), tmp_path)
    server.start()
    try:
        with broker_at(server.url):
            yield server
    finally:
        server.kill()


# --- real Celery workers ------------------------------------------------------


def _require(condition, reason):
    if condition:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI: {reason}")
    pytest.skip(reason)


def _broker_url():
    url = settings.CELERY_BROKER_URL
    _require(url.startswith("redis"), "worker tests need Redis: set REDIS_URL (e.g. redis://127.0.0.1:6379/3)")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.exceptions.RedisError as exc:
        _require(False, f"Redis at {url} is unreachable: {exc}")
    return url


def _database_url():
    from django.db import connection

    sd = connection.settings_dict
    _require(
        connection.vendor == "postgresql",
        "worker tests need a database a second process can open: set DATABASE_URL to PostgreSQL",
    )
    auth = sd["USER"] or ""
    if sd["PASSWORD"]:
        auth += f":{sd['PASSWORD']}"
    host = f"{sd['HOST'] or '127.0.0.1'}:{sd['PORT'] or 5432}"
    return f"postgres://{auth}@{host}/{sd['NAME']}"


class WorkerProcess:
    def __init__(self, name, env, logfile):
        self.name = name
        self.env = env
        self.logfile = logfile
        self._log = open(logfile, "wb")
        cmd = [
            sys.executable, "-m", "celery", "-A", "planner", "worker",
            "--loglevel", "INFO", "--concurrency", "1", "--pool", "prefork",
            "--hostname", f"{name}@%h", "--queues", TEST_QUEUE,
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=BASE_DIR, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def log(self):
        return Path(self.logfile).read_text(errors="replace")

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited ({self.proc.returncode}):\n{self.log()}")
            time.sleep(0.1)
        raise RuntimeError(f"worker {self.name} not ready after {timeout} s:\n{self.log()}")

    def stop(self):
        # Warm shutdown first: unacknowledged tasks go back to the broker.
        stop_process_group(self.proc)
        self._log.close()


def stop_process_group(proc, timeout=15):
    """SIGTERM a process started with start_new_session=True and its children; SIGKILL after `timeout` s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.fixture
def celery_workers(transactional_db, tmp_path, settings):
    """start(name) -> a running `celery -A planner worker` on the test database; stopped at teardown."""
    broker = _broker_url()
    database = _database_url()
    from planner.celery import app

    # Leftovers of an earlier, interrupted session must not reach these workers.
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(TEST_QUEUE)
    started = []

    def start(name="worker1", **extra_env):
        env = {
            **os.environ,
            "DATABASE_URL": database,
            "CELERY_BROKER_URL": broker,
            "REDIS_URL": broker,
            "SCALEPLAN_DATA_DIR": str(settings.DATA_DIR),
            "CELERY_TASK_SOFT_TIME_LIMIT": "20",
            "CELERY_TASK_TIME_LIMIT": "30",
            "DEBUG": "false",
            **extra_env,
        }
        worker = WorkerProcess(f"{name}-{uuid.uuid4().hex[:6]}", env, tmp_path / f"{name}.log")
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        channel.queue_purge(TEST_QUEUE)
        # kombu's routing keys for this session's queue: leave the Redis database as found.
        channel.client.delete(f"_kombu.binding.{TEST_QUEUE}", f"_kombu.binding_permanent.{TEST_QUEUE}")


@pytest.fixture
def celery_worker_process(celery_workers):
    return celery_workers("worker1")


def wait_for_job(job_id, *, statuses=("succeeded", "failed", "cancelled"), timeout=30):
    """Poll the job row (the truth) until it reaches one of `statuses`."""
    from planner.models import Job

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.status in statuses:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job.status} after {timeout} s")

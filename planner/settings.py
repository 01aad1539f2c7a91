"""scaleplan settings: read only from the environment.

Defaults give the embedded mode (SQLite under ./data, a filesystem broker, DEBUG
on for local use). ``SCALEPLAN_ENV=production`` turns defaults off: SECRET_KEY and
ALLOWED_HOSTS must then be set, or the process refuses to start.
"""
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

PRODUCTION = env.str("SCALEPLAN_ENV", default="development") == "production"
DATA_DIR = Path(env.str("SCALEPLAN_DATA_DIR", default=str(BASE_DIR / "data")))

if PRODUCTION:
    # No default: a production process without a secret must not boot.
    try:
        SECRET_KEY = env.str("SECRET_KEY")
        ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(f"production mode: {exc}") from None
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("production mode: ALLOWED_HOSTS is empty")
    DEBUG = env.bool("DEBUG", default=False)
else:
    SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-dev-only-key")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
    DEBUG = env.bool("DEBUG", default=True)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "csp",
    "axes",
    "planner",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # 413 from Content-Length before anything reads the body (planner.corpus.uploads).
    "planner.corpus.uploads.UploadLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its lockout page.
    "axes.middleware.AxesMiddleware",
]

# --- Login attempts (django-axes) --------------------------------------------------
# Every password login (/accounts/login/, the admin's) is counted per username and per client address, each on
# its own: SCALEPLAN_LOGIN_FAILURE_LIMIT failures lock that user, or that address, out for
# SCALEPLAN_LOGIN_COOLOFF_MINUTES (429 and a page saying so; the right password does not log in meanwhile).
# A successful login clears the user's count. Counts live in the database (axes' AccessAttempt, visible and
# resettable in the admin; `manage.py axes_reset`). API tokens are not passwords and are not counted.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("SCALEPLAN_LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("SCALEPLAN_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# A lockout lasts its cool-off from the failure that caused it: attempts during it do not extend it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The client's address: the socket's, unless SCALEPLAN_PROXY_COUNT proxies in front of gunicorn set
# X-Forwarded-For (then the address that many hops back); a client cannot choose its address by a header.
SCALEPLAN_PROXY_COUNT = env.int("SCALEPLAN_PROXY_COUNT", default=0)
if SCALEPLAN_PROXY_COUNT:
    AXES_IPWARE_PROXY_COUNT = SCALEPLAN_PROXY_COUNT
    AXES_IPWARE_PROXY_ORDER = "right-most"
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

ROOT_URLCONF = "planner.urls"
# Logging in without a `next` and logging out (a POST) land on the home page (Django's default after a
# login, /accounts/profile/, is a page this service does not have).
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
# JSON in the API's error shape under /api/, Django's page elsewhere.
CSRF_FAILURE_VIEW = "planner.api.exceptions.csrf_failure"
WSGI_APPLICATION = "planner.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'scaleplan.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and worker processes share the file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
# Files browsers ask for at the site's root (favicon.ico), served by WhiteNoise as they are.
WHITENOISE_ROOT = BASE_DIR / "planner" / "root"
# Outside production WhiteNoise also serves straight from the apps' static folders, so pages have
# their stylesheets without a collectstatic (tests, a fresh checkout); production serves STATIC_ROOT.
WHITENOISE_USE_FINDERS = not PRODUCTION
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Redis, when set: the Celery broker (below) and the throttle counts' store.
REDIS_URL = env.str("REDIS_URL", default="")
CACHES = {
    # Per process, as Django's default (nothing shared is kept here: throttles use "throttle").
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Throttle counts (planner.api.throttling), shared by every web process, so a user's limit does not grow
    # with WEB_CONCURRENCY. Redis (set below) when REDIS_URL is set: atomic increments across processes and
    # hosts. Without Redis, files under DATA_DIR, shared by the processes of a host (and other hosts through a
    # shared DATA_DIR), whose increments are not atomic: under concurrency a few requests may pass the limit.
    "throttle": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                 "LOCATION": str(DATA_DIR / "throttle")},
    # Fitted laws of the corpus browser (planner.laws.services), shared by the web processes of one host;
    # keys change when a family's data does, so entries never go stale.
    "laws": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(DATA_DIR / "cache")},
}

if REDIS_URL:
    CACHES["throttle"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "scaleplan-throttle",
        # A Redis that stops answering must not hang a request: the throttle then lets it through (logged).
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }

# Uploads (corpus CSVs) are streamed to disk above this size.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# The first handler stops a streamed upload at SCALEPLAN_MAX_UPLOAD_BYTES (planner.corpus.uploads).
FILE_UPLOAD_HANDLERS = [
    "planner.corpus.uploads.LimitedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# Largest corpus upload accepted through the API or admin (bytes, compressed as sent).
SCALEPLAN_MAX_UPLOAD_BYTES = env.int("SCALEPLAN_MAX_UPLOAD_BYTES", default=100 * 1024 * 1024)
# Largest request body that is not a file upload (JSON, form fields), refused with 413 naming the limit
# (planner.corpus.uploads.UploadLimitMiddleware from Content-Length, Django's RequestDataTooBig otherwise).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("SCALEPLAN_MAX_BODY_BYTES", default=10 * 1024 * 1024)
# Limits on a corpus file from a user (API, admin, prediction form), checked before it is parsed:
# its rows, and its size once decompressed (a gzip bomb is refused in constant memory). The
# reference corpus is 199,500 rows and 42 MB; the defaults leave five times that.
SCALEPLAN_MAX_IMPORT_ROWS = env.int("SCALEPLAN_MAX_IMPORT_ROWS", default=1_000_000)
SCALEPLAN_MAX_DECOMPRESSED_BYTES = env.int("SCALEPLAN_MAX_DECOMPRESSED_BYTES", default=256 * 1024 * 1024)

# --- Celery -----------------------------------------------------------------
# Explicit limits: a soft limit lets the task mark its job failed cleanly.
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=50 * 60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=60 * 60)
# A running job whose worker died is taken over once it started longer ago than the
# hard limit plus this margin (planner.jobs.services): by then the first run cannot be alive.
# The margin covers clock differences between hosts and the time a kill takes.
SCALEPLAN_STALE_MARGIN = env.int("SCALEPLAN_STALE_MARGIN", default=60)
# A running task records a heartbeat on its job row this often (planner.jobs.heartbeat); a job without one
# for SCALEPLAN_STALLED_AFTER seconds is shown as stalled and taken over by the recovery. A task that cannot
# record one for SCALEPLAN_STALLED_AFTER - SCALEPLAN_HEARTBEAT_SECONDS stops itself first, so a job never
# runs twice at once.
SCALEPLAN_HEARTBEAT_SECONDS = env.int("SCALEPLAN_HEARTBEAT_SECONDS", default=15)
SCALEPLAN_STALLED_AFTER = env.int("SCALEPLAN_STALLED_AFTER", default=60)
if SCALEPLAN_STALLED_AFTER < 3 * SCALEPLAN_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured("SCALEPLAN_STALLED_AFTER must be at least 3 x SCALEPLAN_HEARTBEAT_SECONDS")

# Embedded default: no Redis needed; kombu's filesystem transport under DATA_DIR.
# With REDIS_URL (or CELERY_BROKER_URL) set, Redis is the broker.
_fs_broker = DATA_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_fs_broker / "queue"),
        "data_folder_out": str(_fs_broker / "queue"),
        "processed_folder": str(_fs_broker / "processed"),
        "store_processed": False,
        # Broadcast/control messages (worker pings, remote control); without this
        # kombu writes them to ./control in whatever directory the process runs.
        "control_folder": str(_fs_broker / "control"),
    }
    for _d in ("queue", "processed", "control"):
        (_fs_broker / _d).mkdir(parents=True, exist_ok=True)
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # acks_late: a delivered message waits in Redis's unacked set until its task
        # ends. If the whole worker dies (SIGKILL, lost host), Redis hands the message
        # to another worker once it is this old. It must exceed the longest a live
        # worker holds a message - a task's hard limit, or a retry's countdown (at
        # most the limit plus the margin, planner.jobs.tasks) - or Redis would redeliver
        # running tasks; and no more, or a dead worker's task waits for nothing.
        "visibility_timeout": CELERY_TASK_TIME_LIMIT + 2 * SCALEPLAN_STALE_MARGIN,
        # Look for such messages every few seconds (kombu's default: every 100 s).
        "unacked_restore_interval": max(1, min(10, SCALEPLAN_STALE_MARGIN)),
        "unacked_restore_throttle": 1,
        # A Redis that accepts connections but never answers (stuck, or behind a dead
        # proxy) must fail a web request's enqueue in seconds (a 503), not hang it.
        "socket_connect_timeout": 5,
        "socket_timeout": 5,
    }
# The job row is the truth: results are not kept by Celery.
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# JSON only: nothing pickled crosses the broker.
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
# Tasks are idempotent (they claim a job row), so a task lost with its worker
# is safely redelivered.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# The queue the web processes send tasks to and workers consume (Celery's default "celery"). Deployments
# sharing one Redis database each need their own; the browser tests give their server and workers one per session.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# Recovery (planner.jobs.recovery): a job whose message may be lost is sent again once
# untouched this long; beat looks five times per period. Tasks are idempotent, so
# sending one that was not lost only costs a delivery that does nothing.
SCALEPLAN_RESEND_AFTER = env.int("SCALEPLAN_RESEND_AFTER", default=5 * 60)
_recover_every = max(1.0, SCALEPLAN_RESEND_AFTER / 5)
CELERY_BEAT_SCHEDULE = {
    "recover-jobs": {
        "task": "planner.recover_jobs",
        "schedule": _recover_every,
        # Not queued up while no worker reads (the next one comes soon enough).
        "options": {"expires": _recover_every},
    },
}
# Beat keeps no state worth saving (one interval task): the in-memory scheduler,
# not the default PersistentScheduler, whose schedule file in the working
# directory is written with pickle.
CELERY_BEAT_SCHEDULER = "celery.beat:Scheduler"

# --- REST framework ----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer", "planner.api.renderers.BrowsableAPIRenderer"],
    # JSON bodies; the upload endpoints (imports, predictions) add multipart themselves.
    "DEFAULT_PARSER_CLASSES": ["planner.api.parsers.JSONParser"],
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "planner.api.schema.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "planner.api.exceptions.exception_handler",
    # Per user, on creation only (planner.api.throttling): the API's POSTs and the HTML forms share
    # one count. A plan costs a worker ~0.1 s, a prediction seconds: 300 plans an hour lets a script
    # sweep budgets; 120 predictions an hour is two a minute, more than a person uploads.
    "DEFAULT_THROTTLE_RATES": {
        "uploads": env.str("SCALEPLAN_UPLOAD_RATE", default="60/hour"),
        "plans": env.str("SCALEPLAN_PLAN_RATE", default="300/hour"),
        "predictions": env.str("SCALEPLAN_PREDICTION_RATE", default="120/hour"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "scaleplan API",
    "DESCRIPTION": "Corpus of published scaling families, jobs, and (later) plans.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies get their own components, so uploads are documented as files (format: binary).
    "COMPONENT_SPLIT_REQUEST": True,
    # Docs UI assets served from our own static files (no CDN: offline hosts).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Where the corpus lives for tests/benchmarks/auto-load (never copied into the repo).
SCALEPLAN_SHARED_DIR = Path(env.str("SCALEPLAN_SHARED_DIR", default=str(BASE_DIR.parent / "shared")))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# --- Browser security headers (every mode: pages must work under them in development too) -----
# Content-Security-Policy (django-csp): everything from this origin only; no inline script or
# style (templates link static files; the API docs load their init script from a URL). Swagger
# UI's stylesheet draws its icons from data: URIs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # forms carry the token in a hidden field; no script reads the cookie
# JSON (Django's default), never pickle: a leaked SECRET_KEY must not become code execution.
SESSION_SERIALIZER = "django.contrib.sessions.serializers.JSONSerializer"

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

DATA_DIR.mkdir(parents=True, exist_ok=True)

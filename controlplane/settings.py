"""Signalbox settings: one module, read from the environment (12-factor).

Every variable is listed in the README's configuration table. Defaults exist only where the
embedded demo needs them (SQLite, in-process Celery, a local-memory cache).
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured

from controlplane.ratelimit import rate_parse
from metrics.stats.budgets import DEFAULT_THRESHOLDS  # Django-free: the thresholds' one definition
from metrics.stats.fdr import DEFAULT_FALSE_DISCOVERY_RATE

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
env.read_env(BASE_DIR / ".env", overwrite=False)  # optional; the environment always wins

DEBUG = env.bool("DEBUG", default=False)
# Required when DEBUG is off: left empty, Django refuses anything that signs (sessions, CSRF, the
# admin) with ImproperlyConfigured, while commands that sign nothing (migrate, check) still run.
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = "signalbox-insecure-local-demo-key-never-use-in-production"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "routing",
    "metrics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "controlplane.ratelimit.UnknownKeyThrottleMiddleware",  # before anything touches the session
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into its answer
]

ROOT_URLCONF = "controlplane.urls"
WSGI_APPLICATION = "controlplane.wsgi.application"
ASGI_APPLICATION = "controlplane.asgi.application"

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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'signalbox.sqlite3'}")}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo serves pages while Celery tasks write in-process: wait for the lock, don't fail.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("timeout", 20)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The shared cache holds the live-policy generation counters and rate-limit buckets; every web
# node must see the same one in production (redis://...). The demo's local memory is enough for
# one process.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://signalbox")}

# Login lockout (django-axes): after LOGIN_FAILURE_LIMIT wrong passwords for one username from one
# address, that pair is refused (429) for LOGIN_COOLOFF_MINUTES, even with the right password; a
# successful login resets the count. Attempts are kept in the database (shared by every web node);
# `manage.py axes_reset_username NAME` or `axes_reset` lifts a lockout early.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env.bool("LOGIN_LOCKOUT_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_COOLOFF_MINUTES", default=15.0))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "controlplane.clientip.client_ip"
AXES_ENABLE_ADMIN = False  # unlock with the commands above; the admin lists only Signalbox's models
AXES_VERBOSE = False

# Trusted reverse proxies in front of the web nodes (the TLS proxy: 1). Per-address limits read the
# client address from X-Forwarded-For only through this many proxies (controlplane/clientip.py).
NUM_PROXIES = env.int("NUM_PROXIES", default=0)

# Content-Security-Policy on every response (django-csp): scripts, styles, images and fonts from
# this origin only, no inline script (except one carrying the response's nonce), never framed.
# Plotly figures travel as json_script data (type application/json, never executed); the JSON
# editor and Plotly set style attributes, which style-src 'unsafe-inline' allows (styles cannot
# run code); the policy page adds 'unsafe-eval' for the editor's schema validator
# (controlplane/csp.py). CSP_REPORT_ONLY=true only reports violations.
_CSP = {
    # The client protocol answers JSON to SDKs, never a page a browser renders: its hot path skips
    # building the header.
    "EXCLUDE_URL_PREFIXES": ["/api/v1/client/"],
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],  # a nonce only on pages that ask for one (the API docs)
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],  # the JSON editor's and the API docs' workers are blob: URLs
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
if env.bool("CSP_REPORT_ONLY", default=False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _CSP
else:
    CONTENT_SECURITY_POLICY = _CSP

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
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "var" / "static")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

LOGIN_URL = "admin:login"

# Request bodies: the policy document limit is 1 MB (413 above); decision batches have their own
# 5 MB limit enforced by the ingestion endpoint.
DATA_UPLOAD_MAX_MEMORY_SIZE = 6 * 1024 * 1024
POLICY_DOCUMENT_MAX_BYTES = env.int("POLICY_DOCUMENT_MAX_BYTES", default=1_000_000)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "routing.authentication.HashedTokenAuthentication",  # "Token <key>", stored hashed
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: form encodings cannot carry the nested documents, and read an empty field as absent.
    "DEFAULT_PARSER_CLASSES": ["controlplane.parsers.JsonBodyParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "controlplane.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "NUM_PROXIES": NUM_PROXIES,  # the anonymous throttle counts per address (controlplane/clientip.py)
    # Rates per user / per address: API_RATE_LIMIT_USER and API_RATE_LIMIT_ANON below.
    "DEFAULT_THROTTLE_CLASSES": ["controlplane.throttles.AnonRateThrottle", "controlplane.throttles.UserRateThrottle"],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Signalbox API",
    "DESCRIPTION": "Management and client APIs of the Signalbox routing control plane.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Served from our own static files, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "controlplane.openapi.client_protocol",
        "controlplane.openapi.error_responses",
    ],
}

# How long a web process trusts its in-memory copy of a live policy or an SDK key before it asks
# the shared cache again. A publish is seen at once by the process that made it and within this
# many seconds by every other process; a revoked key stops working within SDK_KEY_CACHE_SECONDS.
# /metrics (controlplane/prometheus.py): the bearer token a scrape sends; unset, /metrics answers 403
# unless DEBUG is on.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
LIVE_POLICY_CHECK_SECONDS = env.float("LIVE_POLICY_CHECK_SECONDS", default=1.0)
SDK_KEY_CACHE_SECONDS = env.float("SDK_KEY_CACHE_SECONDS", default=30.0)

# Request rates, "<requests>/<second|minute|hour|day>" or "off", counted in the shared cache;
# above them the answer is 429 with Retry-After. Client endpoints count per SDK key, the
# management API per user (per address when anonymous).
CLIENT_RATE_LIMIT_POLICY_FETCH = env.str("CLIENT_RATE_LIMIT_POLICY_FETCH", default="6000/minute")
CLIENT_RATE_LIMIT_DECISIONS = env.str("CLIENT_RATE_LIMIT_DECISIONS", default="1200/minute")
# Refused SDK keys (401) per client address on the client API; above it every client-API request
# from that address answers 429 until the window ends, without looking the key up.
CLIENT_RATE_LIMIT_UNKNOWN_KEY = env.str("CLIENT_RATE_LIMIT_UNKNOWN_KEY", default="30/minute")
API_RATE_LIMIT_USER = env.str("API_RATE_LIMIT_USER", default="1200/minute")
API_RATE_LIMIT_ANON = env.str("API_RATE_LIMIT_ANON", default="60/minute")
# Preview, validate and what-if run the engine or a replay per request: their own budget per user.
API_RATE_LIMIT_COMPUTE = env.str("API_RATE_LIMIT_COMPUTE", default="120/minute")
# And their bounds (controlplane/compute.py): at most this many compute at once on the installation
# (the rest answer 429 at once; keep it below the web workers, so client fetches always find one
# free), each within a time budget (past it, 422).
API_COMPUTE_CONCURRENCY = env.int("API_COMPUTE_CONCURRENCY", default=1)
API_COMPUTE_TIME_BUDGET_MS = env.int("API_COMPUTE_TIME_BUDGET_MS", default=3000)
for _setting in ("API_COMPUTE_CONCURRENCY", "API_COMPUTE_TIME_BUDGET_MS"):
    if globals()[_setting] < 1:
        raise ImproperlyConfigured(f"{_setting} must be at least 1, not {globals()[_setting]}")
for _setting in (
    "CLIENT_RATE_LIMIT_POLICY_FETCH",
    "CLIENT_RATE_LIMIT_DECISIONS",
    "CLIENT_RATE_LIMIT_UNKNOWN_KEY",
    "API_RATE_LIMIT_USER",
    "API_RATE_LIMIT_ANON",
    "API_RATE_LIMIT_COMPUTE",
):
    rate_parse(globals()[_setting], setting=_setting)  # a malformed rate stops start-up, named

# Celery: with no broker configured, tasks run in-process (the embedded demo).
_BROKER = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not _BROKER
CELERY_BROKER_URL = _BROKER or "memory://localhost/"  # never contacted while tasks run eagerly
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}

# Decision logs (metrics): raw rows older than DECISION_RETENTION_DAYS are rejected at ingest and
# their daily partitions dropped; partitions exist DECISION_PARTITIONS_AHEAD_DAYS ahead of today.
DECISION_RETENTION_DAYS = env.int("DECISION_RETENTION_DAYS", default=90)
DECISION_PARTITIONS_AHEAD_DAYS = env.int("DECISION_PARTITIONS_AHEAD_DAYS", default=7)
# How long a process trusts its in-memory copy of the catalog's price history.
DECISION_PRICE_CACHE_SECONDS = env.float("DECISION_PRICE_CACHE_SECONDS", default=60.0)
# An ingest queues rollups_update at most once per this many seconds (per shared cache).
ROLLUPS_DEBOUNCE_SECONDS = env.float("ROLLUPS_DEBOUNCE_SECONDS", default=1.0)
# SQLite (the demo) ignores the INCLUDE columns of the rollups' covering index; PostgreSQL uses them.
SILENCED_SYSTEM_CHECKS = ["models.W040"]
CELERY_BEAT_SCHEDULE["metrics-rollups-update"] = {"task": "metrics.rollups_update", "schedule": 60.0}
CELERY_BEAT_SCHEDULE["metrics-partitions-maintain"] = {"task": "metrics.partitions_maintain", "schedule": 3600.0}

# Budget state fed back to clients (docs/protocol.md, Signalbox-Budget): recomputed after each
# rollup update that changed a policy and by beat every BUDGET_STATE_SECONDS; a state not
# refreshed for BUDGET_STATE_MAX_AGE_SECONDS is no longer served.
BUDGET_STATE_SECONDS = env.float("BUDGET_STATE_SECONDS", default=60.0)
BUDGET_STATE_MAX_AGE_SECONDS = env.float("BUDGET_STATE_MAX_AGE_SECONDS", default=600.0)
CELERY_BEAT_SCHEDULE["metrics-budget-state-refresh"] = {
    "task": "metrics.budget_state_refresh",
    "schedule": BUDGET_STATE_SECONDS,
}

# Alerts (metrics.alerts, docs/alerts.md): evaluated by beat every ALERTS_EVALUATE_SECONDS; spend
# thresholds of daily and monthly budgets as fractions; a resolved alert firing again within
# ALERTS_REOPEN_HOURS is reopened instead of opened anew. Deliveries: ALERTS_DELIVERY_MAX_ATTEMPTS
# tries, backoff ALERTS_DELIVERY_BACKOFF_SECONDS × 2^(try−1); a channel is disabled after
# ALERTS_CHANNEL_MAX_FAILURES failed tries in a row. Email goes through EMAIL_URL (console by default).
ALERTS_EVALUATE_SECONDS = env.float("ALERTS_EVALUATE_SECONDS", default=300.0)
ALERTS_BUDGET_THRESHOLDS = env.list("ALERTS_BUDGET_THRESHOLDS", cast=float, default=list(DEFAULT_THRESHOLDS))
ALERTS_REOPEN_HOURS = env.float("ALERTS_REOPEN_HOURS", default=24.0)
# Benjamini–Hochberg across every p-valued check of one policy's evaluation (docs/alerts.md); 0 = off
# (each test at its own level).
ALERTS_FALSE_DISCOVERY_RATE = env.float("ALERTS_FALSE_DISCOVERY_RATE", default=DEFAULT_FALSE_DISCOVERY_RATE)
if not 0.0 <= ALERTS_FALSE_DISCOVERY_RATE < 1.0:  # at start-up, not at the first evaluation
    raise ImproperlyConfigured(f"ALERTS_FALSE_DISCOVERY_RATE must be in [0, 1), got {ALERTS_FALSE_DISCOVERY_RATE!r}")
ALERTS_DELIVERY_MAX_ATTEMPTS = env.int("ALERTS_DELIVERY_MAX_ATTEMPTS", default=5)
ALERTS_DELIVERY_BACKOFF_SECONDS = env.float("ALERTS_DELIVERY_BACKOFF_SECONDS", default=30.0)
ALERTS_CHANNEL_MAX_FAILURES = env.int("ALERTS_CHANNEL_MAX_FAILURES", default=10)
ALERTS_WEBHOOK_TIMEOUT_SECONDS = env.float("ALERTS_WEBHOOK_TIMEOUT_SECONDS", default=5.0)
# Outbound requests made for users (webhooks, "send test": controlplane.outbound) may reach only
# public addresses unless this allows the server's own and private networks too.
OUTBOUND_ALLOW_PRIVATE_NETWORKS = env.bool("OUTBOUND_ALLOW_PRIVATE_NETWORKS", default=False)
ALERTS_SITE_URL = env.str("ALERTS_SITE_URL", default="http://127.0.0.1:8000")
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="signalbox@localhost")
CELERY_BEAT_SCHEDULE["metrics-alerts-evaluate"] = {
    "task": "metrics.alerts_evaluate",
    "schedule": ALERTS_EVALUATE_SECONDS,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # axes logs every login at INFO; lockouts and failures it logs at WARNING.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# Production (DEBUG off) is HTTPS-only by default; each setting can be relaxed from the environment
# (docs/deployment.md). The demo (DEBUG on) serves plain HTTP on localhost and sets none of them.
if not DEBUG:
    # The header the TLS-terminating proxy sets ("off" when Signalbox terminates TLS itself: a
    # client could otherwise claim HTTPS with a header of its own).
    _PROXY_SSL_HEADER = env.str("SECURE_PROXY_SSL_HEADER", default="HTTP_X_FORWARDED_PROTO")
    if _PROXY_SSL_HEADER.lower() not in {"", "off"}:
        SECURE_PROXY_SSL_HEADER = (_PROXY_SSL_HEADER, "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SECURE_CONTENT_TYPE_NOSNIFF = True

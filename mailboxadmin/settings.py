"""Settings for Mailbox Admin: one module, read from the environment (and `.env`)."""

import ipaddress
import json
import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# ENV_FILE="" reads no file (the test settings do that, so a developer's .env never
# leaks into a test run).
ENV_FILE = os.environ.get("ENV_FILE", str(BASE_DIR / ".env"))
if ENV_FILE and Path(ENV_FILE).is_file():
    environ.Env.read_env(ENV_FILE, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# Missing keys are reported by the `mailboxadmin.E001`/`E002` system checks with a
# message that says how to make them; an empty value here lets those checks run.
SECRET_KEY = env.str("SECRET_KEY", default="")
SECRET_KEY_MISSING = not SECRET_KEY
if SECRET_KEY_MISSING:
    # Django refuses an empty key outright; this placeholder lets our own check explain
    # what to do. It is never accepted with DEBUG off (mailboxadmin.checks, wsgi.py).
    SECRET_KEY = "insecure-placeholder-set-SECRET_KEY"
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Extra CA certificates (PEM) trusted by connection tests, for private CAs.
MAIL_CA_BUNDLE = env.str("MAIL_CA_BUNDLE", default="")


def networks_env(name: str) -> list[str]:
    """A comma-separated list of CIDR networks; a value that is not one stops the start."""
    networks = []
    for value in filter(None, (value.strip() for value in env.list(name, default=[]))):
        try:
            networks.append(str(ipaddress.ip_network(value)))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"{name}: {value!r} is not a network in CIDR notation such as 10.0.0.0/8 or fd00::/8 ({exc})."
            ) from None
    return networks


# The outbound policy of connection tests (serverprofiles/connectors/outbound.py):
# loopback, link-local and cloud metadata addresses are refused unless allowed here;
# blocked networks are refused whatever else says.
# Mail processing (SPEC 8): a message larger than this many bytes is recorded with its
# headers only (and a warning alert); its body is never fetched.
MAIL_MAX_MESSAGE_SIZE = env.int("MAIL_MAX_MESSAGE_SIZE", default=25 * 1024 * 1024)
MAIL_ALLOWED_NETWORKS = networks_env("MAIL_ALLOWED_NETWORKS")
MAIL_BLOCKED_NETWORKS = networks_env("MAIL_BLOCKED_NETWORKS")

# Mail processing's workers (mailboxes/processing/scheduler.py; README "Mail processing:
# workers"). A worker holds each mailbox it processes by a lease of this many seconds,
# renewed while the pass lasts: a killed worker's mailboxes are taken over once it ends.
MAIL_PROCESSING_LEASE_SECONDS = env.float("MAIL_PROCESSING_LEASE_SECONDS", default=120)
# How often an idle worker looks for due mailboxes (Process Now waits at most this long).
MAIL_PROCESSING_IDLE_SECONDS = env.float("MAIL_PROCESSING_IDLE_SECONDS", default=2)
# The shortest time between two passes over one mailbox, whatever its profile's Minimum
# Polling Interval (0 there means "as often as the workers allow", not continuously).
MAIL_PROCESSING_MIN_INTERVAL_SECONDS = env.float("MAIL_PROCESSING_MIN_INTERVAL_SECONDS", default=60)
# After a failed pass the next one waits the polling interval plus a back-off: this many
# seconds after the first failure in a row, doubling with each further one, at most the max.
MAIL_PROCESSING_BACKOFF_SECONDS = env.float("MAIL_PROCESSING_BACKOFF_SECONDS", default=60)
MAIL_PROCESSING_BACKOFF_MAX_SECONDS = env.float("MAIL_PROCESSING_BACKOFF_MAX_SECONDS", default=3600)
# Mailboxes one worker process processes at once (one thread and one connection each;
# every profile's Maximum Concurrent Connections still holds across all workers).
MAIL_PROCESSING_THREADS = env.int("MAIL_PROCESSING_THREADS", default=4)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_tasks",
    "django_tasks_db",
    "mailboxadmin",
    "serverprofiles",
    "mailboxes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "mailboxes.middleware.OrganizationTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "mailboxadmin.urls"
WSGI_APPLICATION = "mailboxadmin.wsgi.application"

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
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so concurrent writers wait (up to the
    # timeout) instead of failing with "database is locked" half-way through.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "mailboxes.User"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/mailboxes/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
FORMAT_MODULE_PATH = ["mailboxadmin.formats"]

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"


def email_storage_env() -> dict:
    """The storage of raw email messages (SPEC 8): files under var/emails unless
    EMAIL_STORAGE_BACKEND (a Django storage class) and EMAIL_STORAGE_OPTIONS (a JSON
    object of its options) say otherwise. Keys belong in the environment the storage's
    own library reads (boto3: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), not here."""
    backend = env.str("EMAIL_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage")
    text = env.str("EMAIL_STORAGE_OPTIONS", default="")
    if not text.strip():
        options = {"location": BASE_DIR / "var" / "emails"} if backend.endswith(".FileSystemStorage") else {}
        return {"BACKEND": backend, "OPTIONS": options}
    try:
        options = json.loads(text)
    except ValueError as exc:
        raise ImproperlyConfigured(f"EMAIL_STORAGE_OPTIONS: not JSON ({exc}).") from None
    if not isinstance(options, dict):
        raise ImproperlyConfigured(
            'EMAIL_STORAGE_OPTIONS: must be a JSON object, such as {"location": "/srv/mail"}.'
        )
    return {"BACKEND": backend, "OPTIONS": options}


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "emails": email_storage_env(),
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

TASKS = {
    "default": {
        "BACKEND": env.str("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}

# How long a finished bulk action's page (progress and per-record result) is kept: each
# new bulk action deletes the finished ones older than this (mailboxes/services/bulk_jobs.py).
BULK_JOB_RETENTION_DAYS = env.int("BULK_JOB_RETENTION_DAYS", default=30)
if BULK_JOB_RETENTION_DAYS < 1:
    raise ImproperlyConfigured(
        f"BULK_JOB_RETENTION_DAYS: {BULK_JOB_RETENTION_DAYS} is not a number of days of 1 or more."
    )

# Error reports (the DEBUG page, emails to ADMINS) never show a posted password or a key.
DEFAULT_EXCEPTION_REPORTER_FILTER = "mailboxadmin.error_reports.SecretsHiddenReporterFilter"

# Security headers. The production values follow from DEBUG being off; behind a TLS
# proxy set SECURE_PROXY_SSL_HEADER through the environment.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}

# Failed sign-ins (mailboxadmin/ratelimit.py), counted within a window: from one client
# address, across user names, up to a limit and then refused until the window has passed;
# for one user name, across addresses, up to a limit and then delayed (1, 2, 4 … seconds,
# never more than the maximum).
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=15 * 60)
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=20)
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_MAX_DELAY_SECONDS = env.int("LOGIN_MAX_DELAY_SECONDS", default=60)
# Reverse proxies in front of the app that append the client's address to
# X-Forwarded-For (0: clients connect directly and REMOTE_ADDR is theirs).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Email this app sends itself (password reset links). Without EMAIL_HOST nothing is sent
# and the password-reset pages do not exist (mailboxadmin/urls.py): each request to them
# would otherwise try an SMTP server on localhost:25.
EMAIL_HOST = env.str("EMAIL_HOST", default="")
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="webmaster@localhost")
PASSWORD_RESET_ENABLED = bool(EMAIL_HOST)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "mailboxadmin_cache",
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "mailboxadmin.logging.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["redact_secrets"],
            "formatter": "plain",
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
    },
}

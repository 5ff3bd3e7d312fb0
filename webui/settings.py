"""Settings of the Moorage dashboard, read from the environment.

| variable              | default                                  |
|-----------------------|------------------------------------------|
| DJANGO_SECRET_KEY     | generated once into ``var/secret_key``   |
| DATABASE_URL          | SQLite at ``var/db.sqlite3``             |
| REDIS_URL             | ``redis://127.0.0.1:6390/0`` (private)   |
|                       | (the cache: the next database, ``/1``)   |
| MOORAGE_DEBUG         | off                                      |
| MOORAGE_ALLOWED_HOSTS | none beyond localhost and 127.0.0.1      |
| MOORAGE_HTTPS         | off; on marks cookies Secure             |

``var/`` (git-ignored, beside this package) holds what one host keeps for the web side.
There is no hard-coded secret key: a leaked default would sign every session.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    from_env = os.environ.get("DJANGO_SECRET_KEY")
    if from_env:
        return from_env
    path = VAR_DIR / "secret_key"
    if not path.exists():
        # Write a private temp file, then link it into place: link(2) fails if the key
        # exists, so processes starting at once (daphne, the worker) agree on one key, and
        # no reader ever sees a half-written file.
        tmp = VAR_DIR / f".secret_key.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = _flag("MOORAGE_DEBUG")
ALLOWED_HOSTS = ["localhost", "127.0.0.1"] + [
    h.strip() for h in os.environ.get("MOORAGE_ALLOWED_HOSTS", "").split(",") if h.strip()
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "containers_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # The one place where engine and permission errors become HTTP responses.
    "containers_app.errors.ErrorMiddleware",
]

ROOT_URLCONF = "webui.urls"
ASGI_APPLICATION = "webui.asgi.application"

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
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}", conn_max_age=600
    ),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # daphne, the worker and beat write to one SQLite file: wait for the lock instead of
    # failing at once, and take it at BEGIN so two writers never deadlock upgrading.
    # synchronous=NORMAL: in WAL mode a commit then needs no fsync (one costs ~3 ms here,
    # with the write lock held, and a bulk job commits a few per item); the database
    # stays consistent, only a power cut may lose the last commits.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6390/0")
# Options for every asyncio Redis client (the channel layer, the build-output pump).
# No socket timeout: redis-py then wraps each write in asyncio.wait_for, which on
# Python 3.11 can swallow a cancellation that lands as the write completes: a closed
# websocket's receive loop then never ends and polls Redis forever. (redis-py >= 8's
# default of 5 s also races channels_redis's 5 s BZPOPMIN.) Every blocking read here
# carries a server-side timeout instead, and keepalive notices a dead peer.
ASYNC_REDIS_OPTIONS: dict[str, object] = {"socket_timeout": None, "socket_keepalive": True}


def channel_layers(redis_url: str) -> dict[str, dict[str, object]]:
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": redis_url, **ASYNC_REDIS_OPTIONS}]},
        },
    }


CHANNEL_LAYERS = channel_layers(REDIS_URL)


def redis_caches(redis_url: str) -> dict[str, dict[str, object]]:
    """Django's cache in Redis, in the database after ``redis_url``'s (0 -> 1): daphne,
    every worker process and the CLI share it, so login throttling counts one client's
    failures wherever they land (a per-process cache would give each process its own
    count). A database of its own, because cache.clear() empties one whole database,
    and the broker's queues and the channel layer's groups live in ``redis_url``'s."""
    parts = urlsplit(redis_url)
    db = int(parts.path.strip("/") or 0) + 1
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": urlunsplit(parts._replace(path=f"/{db}")),
            "KEY_PREFIX": "moorage",
        }
    }


CACHES = redis_caches(REDIS_URL)
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# STYLE.md: every task has a time limit; a task may set a shorter one of its own.
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 14 * 60
# Outcomes go to Job rows, not to the result backend.
CELERY_TASK_IGNORE_RESULT = True
# A process busy with a long bulk job must not sit on resyncs it prefetched.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The mirror's resync (containers_app.mirror): a CLI change shows within 2 s. A resync
# that waited in the queue longer than a second is useless; the next one comes anyway.
CELERY_BEAT_SCHEDULE = {
    "sync-mirror": {
        "task": "containers_app.tasks.sync_mirror",
        "schedule": 1.0,
        "options": {"expires": 1.0},
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _flag("MOORAGE_HTTPS")
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"

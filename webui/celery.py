"""The Celery app 'moorage': workers that carry out engine operations for the dashboard.

The broker is ``settings.CELERY_BROKER_URL`` (``REDIS_URL``, by default the private
redis-server that ``make run`` starts on 127.0.0.1:6390). Tasks live in the Django apps
and are found by autodiscovery; this module defines none.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webui.settings")

app = Celery("moorage")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

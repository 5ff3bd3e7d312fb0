"""The Django project: settings, URL map, ASGI routing and the Celery app.

Importing the Celery app here (the usual Django way) makes ``@shared_task`` functions
bind to it whenever Django starts, in daphne and in the worker alike.
"""

from webui.celery import app as celery_app

__all__ = ["celery_app"]

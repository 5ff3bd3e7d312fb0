"""Websocket URL patterns (mounted by webui/asgi.py behind the Origin and session checks)."""

from __future__ import annotations

from django.urls import path

from containers_app.consumers.events import EventsConsumer
from containers_app.consumers.image_jobs import ImageJobOutputConsumer
from containers_app.consumers.jobs import JobListConsumer, JobProgressConsumer
from containers_app.consumers.logs import LogsConsumer
from containers_app.consumers.stats import StatsConsumer
from containers_app.consumers.stats_column import StatsColumnConsumer
from containers_app.consumers.terminal import TerminalConsumer

websocket_urlpatterns = [
    path("ws/containers/<str:ref>/terminal/", TerminalConsumer.as_asgi()),
    path("ws/containers/<str:ref>/logs/", LogsConsumer.as_asgi()),
    path("ws/containers/<str:ref>/stats/", StatsConsumer.as_asgi()),
    path("ws/events/", EventsConsumer.as_asgi()),
    path("ws/stats/", StatsColumnConsumer.as_asgi()),
    path("ws/jobs/", JobListConsumer.as_asgi()),
    path("ws/jobs/<int:pk>/", JobProgressConsumer.as_asgi()),
    path("ws/jobs/<int:pk>/output/", ImageJobOutputConsumer.as_asgi()),
]

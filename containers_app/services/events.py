"""Engine events as the mirror recorded them (``EngineEvent``), scoped to the user."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from containers_app import permissions
from containers_app.models import EngineEvent


def recent(user: Any, limit: int = 50, kind: str = "", action: str = "") -> QuerySet[EngineEvent]:
    events = permissions.visible(user, EngineEvent.objects.all())
    if kind:
        events = events.filter(kind=kind)
    if action:
        events = events.filter(action=action)
    return events[:limit]

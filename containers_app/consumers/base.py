"""What every container stream consumer does on connect: who, which container, allowed?"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.core.exceptions import PermissionDenied

from containers_app import errors
from containers_app.models import ContainerMirror
from containers_app.services import audit
from containers_app.services import containers as container_services
from runtime.errors import MoorageError


class RefusingConsumer(AsyncWebsocketConsumer):
    """Accepts, then refuses with a sentence: the page can say why (never a silent drop)."""

    async def refuse(self, error: BaseException) -> None:
        await self.send(text_data=json.dumps({"error": errors.message(error)}))
        await self.close(code=errors.close_code(error))


class ContainerStreamConsumer(RefusingConsumer):
    verb = "view"  # the permission a connection needs, from permissions.PERMISSIONS

    container: ContainerMirror
    query: dict[str, str]

    async def connect(self) -> None:
        await self.accept()
        self.query = _query(self.scope)
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(PermissionDenied("Sign in first: this stream needs a session."))
            return
        try:
            self.container = await database_sync_to_async(container_services.get)(
                user, self.scope["url_route"]["kwargs"]["ref"], self.verb
            )
            await self.open()
        except (PermissionDenied, MoorageError) as e:
            await self.refuse(e)

    async def open(self) -> None:
        """Start the stream; raise a MoorageError to refuse with its sentence."""
        raise NotImplementedError

    async def audit(self, verb: str, result: str = "succeeded", detail: str = "") -> None:
        client = self.scope.get("client") or [None]
        await database_sync_to_async(audit.record)(
            self.scope["user"],
            verb,
            [self.container.engine_id],
            result,
            remote_addr=client[0],
            team=self.container.team,
            detail=detail,
        )


def _query(scope: dict[str, Any]) -> dict[str, str]:
    return dict(parse_qsl(scope.get("query_string", b"").decode(errors="replace")))

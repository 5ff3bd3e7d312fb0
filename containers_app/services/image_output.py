"""The live output of build, pull and push jobs: one Redis stream per job.

The worker appends as the engine reports (``Writer``: build output text, docker's JSON
progress messages of pull and push, and how the item ended); the websocket consumer
(``consumers.image_jobs``) reads the stream from its first entry and then blocks for new
ones, so a page opened late, or reloaded, still gets everything from the start, and no
message is lost between "queued" and "connected". A Redis stream rather than a
channel-layer group for that reason: a group only reaches who is listening right now.

Entries are ``{"kind": output|progress|failed|done, "value": JSON}``. Streams are
capped (``MAX_ENTRIES``) and expire ``KEEP_SECONDS`` after their last write; what lasts
is the item's result and error in the database. Writing never fails a job: without
Redis the job runs as before and the page shows only the outcome.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
from django.conf import settings

log = logging.getLogger(__name__)

MAX_ENTRIES = 20_000
KEEP_SECONDS = 7 * 24 * 3600
KINDS = ("output", "progress", "failed", "done")


def key(job_id: int) -> str:
    return f"moorage:job:{job_id}:output"


class Writer:
    """Appends one job's output; used from the worker (any thread)."""

    def __init__(self, job_id: int) -> None:
        self.key = key(job_id)
        self.client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
        self.broken = False
        self.step = ""  # the build step last announced ("Step 3/5 : RUN make")

    def _add(self, kind: str, value: Any) -> None:
        if self.broken:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.xadd(
                self.key,
                {"kind": kind, "value": json.dumps(value)},
                maxlen=MAX_ENTRIES,
                approximate=True,
            )
            pipe.expire(self.key, KEEP_SECONDS)
            pipe.execute()
        except redis.RedisError as e:
            self.broken = True  # one warning, then the job goes on without live output
            log.warning("live output of %s stops: Redis refused it (%s)", self.key, e)

    def output(self, text: str) -> None:
        """Build output, as the builder writes it; remembers the step in progress."""
        for line in text.splitlines():
            if line.startswith("Step ") and " : " in line:
                self.step = line.strip()
        self._add("output", text)

    def progress(self, event: dict[str, Any]) -> None:
        """One docker JSON progress message of a pull or push."""
        self._add("progress", event)

    def failed(self, message: str, exit_code: int | None = None) -> None:
        self._add("failed", {"message": message, "step": self.step, "exit_code": exit_code})

    def done(self, result: dict[str, Any]) -> None:
        self._add("done", result)

    def close(self) -> None:
        self.client.close()

"""Pages around the live streams (issue 6): the full-window terminal, the merged logs of
several containers, and the download of a whole log.

The pages only render a shell; the streams themselves are websockets
(``containers_app.consumers``) driven by static/js/terminal.js, logs.js and stats.js.
The download is plain HTTP, streamed from the engine's json-file log one line at a
time, so a log of any size never sits in memory. Permissions go through
``services.containers.get`` (NotFound for other teams, 403 for a short role); the
error middleware turns those into a page.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from containers_app import permissions
from containers_app.services import containers as service
from runtime import paths

MERGED_MAX = 8  # sources in one merged view: each is a websocket and a colour


@require_safe
@login_required
def terminal(request: HttpRequest, ref: str) -> HttpResponse:
    """A terminal filling the window; ``?mode=attach`` to start attached."""
    container = service.get(request.user, ref, "view")
    mode = "attach" if request.GET.get("mode") == "attach" else "exec"
    return render(
        request,
        "containers/terminal.html",
        {
            "c": container,
            "mode": mode,
            "cmd": request.GET.get("cmd", ""),
            "can_exec": permissions.can(request.user, "exec", container),
            "can_attach": permissions.can(request.user, "attach", container),
        },
    )


@require_safe
@login_required
def merged_logs(request: HttpRequest) -> HttpResponse:
    """Live logs of several containers in one view (``?c=ref&c=ref``), one colour each."""
    refs = list(dict.fromkeys(r for r in request.GET.getlist("c") if r.strip()))[:MERGED_MAX]
    sources = [service.get(request.user, ref, "logs") for ref in refs]
    return render(
        request,
        "containers/logs_merged.html",
        {
            "sources": sources,
            "sources_json": json.dumps([{"ref": c.engine_id, "name": c.name} for c in sources]),
            "max": MERGED_MAX,
        },
    )


def _log_files(cid: str) -> list[Path]:
    """The json-file log and its rotated files, oldest first (``.2`` before ``.1``)."""
    path = paths.container(cid) / f"{cid}-json.log"
    rotated = [p for p in path.parent.glob(path.name + ".*") if p.suffix[1:].isdigit()]
    rotated.sort(key=lambda p: -int(p.suffix[1:]))
    return rotated + ([path] if path.exists() else [])


def _as_text(files: list[Path], timestamps: bool) -> Iterator[bytes]:
    for path in files:
        try:
            handle = open(path, "rb")
        except FileNotFoundError:
            continue  # rotated away between the listing and now
        with handle:
            for line in handle:
                try:
                    record = json.loads(line)
                    text = record["log"]
                except (ValueError, KeyError):
                    continue  # a torn last line while the container writes
                stamp = f"{record.get('time', '')} " if timestamps else ""
                yield f"{stamp}{text}".encode("utf-8", errors="replace")


@require_safe
@login_required
def log_download(request: HttpRequest, ref: str) -> StreamingHttpResponse:
    """The whole log as text (``?timestamps=1`` prefixes each line with its time)."""
    container = service.get(request.user, ref, "logs")
    timestamps = request.GET.get("timestamps") in ("1", "on", "true")
    response = StreamingHttpResponse(
        _as_text(_log_files(container.engine_id), timestamps),
        content_type="text/plain; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{container.name}.log"'
    response["X-Content-Type-Options"] = "nosniff"
    return response

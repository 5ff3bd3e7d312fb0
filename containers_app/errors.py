"""One table from errors to HTTP statuses, JSON bodies and websocket close codes.

Views, services and consumers raise ``runtime.errors`` classes (the engine's and the
permission table's NotFound), Django's ``PermissionDenied``/``Http404``/
``ValidationError``; ``ErrorMiddleware`` turns each into a response with one sentence
for the user and never a traceback. Consumers close with ``close_code(exc)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string

from runtime import errors as engine

log = logging.getLogger(__name__)

# Most specific first: the first class that matches wins.
STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (engine.NotFound, 404),
    (Http404, 404),
    (PermissionDenied, 403),
    (engine.Conflict, 409),  # NameInUse, InvalidState, InUse
    (engine.InvalidSpec, 400),
    (ValidationError, 400),
    (engine.MissingFeature, 501),
    (engine.MoorageError, 500),  # KernelError, ExecFailed, CleanupError
)

DEFAULT_MESSAGES = {
    403: "You are not allowed to do that.",
    404: "There is no such page or object.",
}


def http_status(exc: BaseException) -> int | None:
    """The status for ``exc``, or None when the table does not know it (a bug: 500)."""
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return None


def message(exc: BaseException) -> str:
    """One sentence for the user."""
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    text = str(exc.args[0]) if exc.args else ""
    if isinstance(exc, Http404) and not text:
        text = DEFAULT_MESSAGES[404]
    return text or DEFAULT_MESSAGES.get(http_status(exc) or 500, "Something went wrong.")


def close_code(exc: BaseException) -> int:
    """Websocket close code: 4000 + the HTTP status (4403, 4404 ...)."""
    return 4000 + (http_status(exc) or 500)


def wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return bool(request.headers.get("HX-Request")) or (
        "application/json" in accept and "text/html" not in accept
    )


def error_response(request: HttpRequest, exc: BaseException) -> HttpResponse | None:
    status = http_status(exc)
    if status is None:
        return None
    text = message(exc)
    if status >= 500:
        log.error("%s %s failed: %s", request.method, request.path, text, exc_info=exc)
    if wants_json(request):
        return JsonResponse({"error": text, "status": status}, status=status)
    try:
        body = render_to_string("error.html", {"status": status, "message": text}, request)
    except TemplateDoesNotExist:
        return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
    return HttpResponse(body, status=status)


class ErrorMiddleware:
    """Turns the errors of ``STATUS`` raised by a view into a response (the one place)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        return error_response(request, exc)

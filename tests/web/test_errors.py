"""One table maps engine and permission errors to HTTP statuses and sentences."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.test import RequestFactory

from containers_app import errors
from runtime import errors as engine


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (engine.NotFound("No such container: x"), 404),
        (Http404(), 404),
        (PermissionDenied("Your role (viewer) does not allow kill."), 403),
        (engine.NameInUse("Conflict. The container name is already in use."), 409),
        (engine.InvalidState("cannot move container x from exited to paused"), 409),
        (engine.InUse("network has active endpoints"), 409),
        (engine.InvalidSpec("Minimum memory limit allowed is 6MB"), 400),
        (ValidationError("Enter a whole number."), 400),
        (engine.MissingFeature("open", 2, "no such feature"), 501),
        (engine.KernelError("mount", 1), 500),
        (engine.CleanupError("teardown failed"), 500),
    ],
)
def test_each_error_class_has_its_status(exc: BaseException, status: int) -> None:
    assert errors.http_status(exc) == status
    assert errors.close_code(exc) == 4000 + status


def test_errors_outside_the_table_are_left_to_django() -> None:
    assert errors.http_status(ValueError("a bug")) is None
    assert errors.error_response(RequestFactory().get("/"), ValueError("a bug")) is None


def test_htmx_requests_get_a_json_sentence_and_never_a_traceback() -> None:
    request = RequestFactory().post("/containers/kill", HTTP_HX_REQUEST="true")
    response = errors.error_response(request, PermissionDenied("Your role does not allow kill."))
    assert response is not None and response.status_code == 403
    assert json.loads(response.content) == {
        "error": "Your role does not allow kill.",
        "status": 403,
    }


def test_pages_get_the_sentence_with_the_status() -> None:
    response = errors.error_response(
        RequestFactory().get("/c/abc"), engine.NotFound("No such container: abc")
    )
    assert response is not None and response.status_code == 404
    assert b"No such container: abc" in response.content
    assert b"Traceback" not in response.content


def test_an_empty_permission_denied_still_says_something() -> None:
    assert errors.message(PermissionDenied()) == "You are not allowed to do that."
    assert errors.message(Http404()) == "There is no such page or object."

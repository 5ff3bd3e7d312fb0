"""The plain-HTTP side of the streams (issue 6): the whole-log download, the merged
logs page, the full-window terminal page, and the stream sections of the detail page.

Real busybox containers run by the real CLI; requests go through Django's test client
with a real session, so the permission table and the error middleware are the real ones.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.usefixtures("transactional_db")

CHATTY = "for i in $(seq 1 3000); do echo line-$i; done; echo oops >&2; sleep 600"


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def wait_for_log(cid: str, text: str, timeout: float = 15) -> None:
    from runtime import containers

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in e.data.decode() for e in containers.logs(cid, tail=5)):
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never reached the log of {cid[:12]}")


def test_the_whole_log_downloads_as_streamed_text_with_optional_timestamps(
    users: Any, engine_containers: Any
) -> None:
    cid = engine_containers.run("dl-box", "sh", "-c", CHATTY, team=users.team)
    wait_for_log(cid, "oops")
    response = client_for(users.viewer).get(f"/containers/{cid}/logs/download/")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"] == 'attachment; filename="dl-box.log"'
    assert response["Content-Type"].startswith("text/plain")
    text = b"".join(response.streaming_content).decode()
    lines = text.splitlines()
    assert lines[0] == "line-1" and lines[2999] == "line-3000" and lines[3000] == "oops"
    stamped = client_for(users.viewer).get(f"/containers/{cid}/logs/download/?timestamps=1")
    first = b"".join(stamped.streaming_content).decode().splitlines()[0]
    stamp, _, rest = first.partition(" ")
    assert rest == "line-1" and stamp.startswith("20") and stamp.endswith("Z"), first


def test_another_teams_user_cannot_download_a_log(users: Any, engine_containers: Any) -> None:
    cid = engine_containers.run("dl-secret", team=users.team)
    response = client_for(users.outsider).get(f"/containers/{cid}/logs/download/")
    assert response.status_code == 404
    assert not response.streaming


def test_the_merged_logs_page_lists_each_visible_source_and_refuses_hidden_ones(
    users: Any, engine_containers: Any
) -> None:
    a = engine_containers.run("mg-a", team=users.team)
    b = engine_containers.run("mg-b", team=users.team)
    page = client_for(users.viewer).get(f"/containers/merged-logs/?c={a}&c=mg-b&c={a}")
    assert page.status_code == 200
    body = page.content.decode()
    # data-sources is JSON in an attribute, HTML-escaped; duplicates are dropped.
    assert body.count("&quot;ref&quot;: &quot;") == 2 and a in body and b in body
    assert "logs-src-1" in body
    assert client_for(users.outsider).get(f"/containers/merged-logs/?c={a}").status_code == 404


def test_the_terminal_page_offers_exec_and_attach_to_an_operator_and_nothing_to_a_viewer(
    users: Any, engine_containers: Any
) -> None:
    cid = engine_containers.run("tp-box", team=users.team)
    operator = client_for(users.operator).get(f"/containers/{cid}/terminal/?mode=attach")
    body = operator.content.decode()
    assert 'data-terminal data-ref="' + cid in body and "data-autoconnect" in body
    assert '<option value="attach" selected>' in body and 'value="exec"' in body
    assert "vendor/xterm.js" in body and "js/terminal.js" in body
    viewer = client_for(users.viewer).get(f"/containers/{cid}/terminal/").content.decode()
    assert "does not allow a terminal" in viewer and "<select" not in viewer


def test_the_detail_page_has_live_logs_a_terminal_and_stats(
    users: Any, engine_containers: Any
) -> None:
    cid = engine_containers.run("dt-box", team=users.team)
    body = client_for(users.operator).get(f"/containers/{cid}/").content.decode()
    for marker in (
        "data-logs",
        "data-terminal",
        "data-stats",
        f'data-live-state="{cid}"',
        "js/live.js",
        f"/containers/{cid}/logs/download/",
    ):
        assert marker in body, marker

"""The container detail page's "Filesystem changes" (``docker diff``), through the page.

A real busybox container run by the real CLI creates a file and removes one; the
detail page names the fragment it loads (htmx ``hx-get``), and that fragment,
fetched as the page's user, lists each change with its kind letter, as ``moorage diff``
prints it.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.test import Client

from tests.web.test_stream_pages import client_for

pytestmark = pytest.mark.usefixtures("transactional_db")

CHANGES = "echo hi > /made; rm /bin/ls; sleep 600"


def diff_fragment_url(client: Client, cid: str) -> str:
    page = client.get(f"/containers/{cid}/")
    assert page.status_code == 200
    found = re.search(r'hx-get="([^"]*/diff/)"', page.content.decode())
    assert found, "the detail page does not load filesystem changes"
    return found.group(1)


def rows(html: str) -> list[tuple[str, str]]:
    return re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td></tr>", html)


def test_the_detail_page_lists_a_running_containers_added_and_deleted_files(
    users: Any, engine_containers: Any
) -> None:
    cid = engine_containers.run("diff-box", "sh", "-c", CHANGES, team=users.team)
    viewer = client_for(users.viewer)
    url = diff_fragment_url(viewer, cid)
    deadline = time.monotonic() + 10
    while True:
        response = viewer.get(url)
        assert response.status_code == 200
        body = response.content.decode()
        listed = rows(body)
        if ("A", "/made") in listed and ("D", "/bin/ls") in listed:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    assert "not available" not in body and "No changes" not in body
    assert ("C", "/bin") in listed  # the directory holding the deleted file changed
    assert all(kind in "ACD" and path.startswith("/") for kind, path in listed), listed


def test_an_unchanged_container_says_so_and_another_team_gets_404(
    users: Any, engine_containers: Any
) -> None:
    cid = engine_containers.run("diff-quiet", team=users.team)
    body = client_for(users.viewer).get(f"/containers/{cid}/diff/").content.decode()
    assert "No changes." in body and not rows(body)
    assert client_for(users.outsider).get(f"/containers/{cid}/diff/").status_code == 404

"""The live streams in headless Chromium (issue 6): terminal, live logs, live states.

Django's live_server speaks no websockets, so these tests run the real daphne (the
ASGI app of ``make run``) on the test database and the session's Redis, next to the
real Celery worker whose beat syncs the mirror every second. The browser is Debian's
chromium driven by Playwright, launched as tests/web/test_browser.py does; screenshots
go to tests/output/streams-*.png. Skipped with the reason when chromium or playwright
is missing; never downloads a browser.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.web.conftest import database_url

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.kernel,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
OUTPUT = REPO / "tests" / "output"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREEN_TEXT = """(root) => {
  const buffer = root.moorageTerminal.term.buffer.active;
  const lines = [];
  for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i).translateToString(true));
  return lines.join("\\n");
}"""


@pytest.fixture
def daphne(redis_server: str, django_db_setup: None) -> Iterator[str]:
    """The real ASGI server on a free port, one per test; yields its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # conftest's URL: on PostgreSQL the host is the private cluster's socket directory.
    env = dict(
        os.environ,
        DATABASE_URL=database_url(),
        REDIS_URL=redis_server,
        DJANGO_SETTINGS_MODULE="webui.settings",
        PYTHONPATH=str(REPO),
    )
    OUTPUT.mkdir(exist_ok=True)
    with open(OUTPUT / "streams-daphne.log", "ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "webui.asgi:application",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "daphne exited; see tests/output/streams-daphne.log"
            assert time.monotonic() < deadline, "daphne did not listen within 30 s"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def browser_context(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # see test_browser.py
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (Debian package chromium; scripts/setup-host)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1300, "height": 900})
            context.set_default_timeout(20_000)
            yield context
        finally:
            browser.close()


def signed_in_page(context: Any, base: str, user: Any) -> Any:
    """A page carrying a real session of ``user`` (made here, read by daphne from the DB)."""
    client = Client()
    client.force_login(user)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base}]
    )
    return context.new_page()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(OUTPUT / f"streams-{name}.png"), full_page=True)


def screen(page: Any) -> str:
    return str(page.locator("[data-terminal]").first.evaluate(SCREEN_TEXT))


def wait_for_screen(page: Any, predicate: Any, what: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = screen(page)
        if predicate(text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"{what} never showed; the screen reads:\n{screen(page)}")


def wait_for_line(page: Any, text: str, timeout: float = 15_000) -> None:
    """Until a rendered log line's text (without its time and source) is exactly ``text``."""
    page.wait_for_function(
        "(t) => [...document.querySelectorAll('.logs-line')]"
        ".some((el) => el.lastChild.textContent === t)",
        arg=text,
        timeout=timeout,
    )


def test_a_user_types_echo_hello_and_reads_it_back_and_the_pty_follows_the_window(
    browser_context: Any, daphne: str, users: Any, engine_containers: Any
) -> None:
    cid = engine_containers.run("br-term", team=users.team)
    page = signed_in_page(browser_context, daphne, users.operator)
    page.goto(f"{daphne}/containers/{cid}/terminal/")
    page.wait_for_selector(".term-status.term-open")
    assert "running sh" in page.inner_text(".term-status")
    page.click(".term-screen")
    page.keyboard.type("echo hello\n")
    wait_for_screen(page, lambda t: "\nhello" in t, "the echoed hello")
    # The rendered DOM shows it too, not only xterm's buffer: a row of its own reading
    # "hello" (the renderer paints on the next animation frame, so wait for it).
    page.wait_for_function(
        "[...document.querySelectorAll('.xterm-rows > div')]"
        ".some((row) => row.textContent.replace(/\\u00a0/g, ' ').trim() === 'hello')",
        timeout=5_000,
    )
    shot(page, "1-terminal-echo")

    # Resize the window: the fit addon and ResizeObserver send the new size to the pty.
    cols_before = page.evaluate("window.moorageTerminals[0].term.cols")
    page.set_viewport_size({"width": 800, "height": 600})
    page.wait_for_function(f"window.moorageTerminals[0].term.cols < {cols_before}")
    rows, cols = page.evaluate(
        "[window.moorageTerminals[0].term.rows, window.moorageTerminals[0].term.cols]"
    )
    page.keyboard.type("stty size\n")
    wait_for_screen(page, lambda t: f"{rows} {cols}" in t, f"stty size {rows} {cols}")
    shot(page, "2-terminal-resized")

    # A pasted block of text goes through whole (xterm hands a paste over as one chunk).
    page.evaluate("window.moorageTerminals[0].term.paste('echo pasted-$((40+2))\\n')")
    wait_for_screen(page, lambda t: "pasted-42" in t, "the pasted command's output")

    page.keyboard.type("exit 3\n")
    page.wait_for_selector(".term-status.term-ended")
    assert page.inner_text(".term-status") == "exited with code 3"
    shot(page, "3-terminal-exited")


def test_a_log_line_appears_live_on_the_detail_page_with_stats(
    browser_context: Any, daphne: str, users: Any, engine_containers: Any
) -> None:
    cid = engine_containers.run(
        "br-logs",
        "sh",
        "-c",
        "echo before-open; while [ ! -e /tmp/go ]; do sleep 0.1; done; "
        "echo after-open-$((6*7)); echo to-stderr >&2; sleep 600",
        team=users.team,
    )
    page = signed_in_page(browser_context, daphne, users.viewer)
    page.goto(f"{daphne}/containers/{cid}/")
    page.wait_for_selector("#logs .logs-line >> text=before-open")
    assert "after-open" not in page.inner_text("#logs")
    engine_containers.cli("exec", cid, "touch", "/tmp/go")
    page.wait_for_selector("#logs .logs-line >> text=after-open-42", timeout=10_000)
    assert page.locator("#logs .logs-stderr >> text=to-stderr").count() == 1
    # A viewer reads logs and stats but gets no terminal.
    assert "does not allow a terminal" in page.inner_text("#terminal")
    page.wait_for_function(
        "document.querySelector('.stats-now').textContent.startsWith('CPU')", timeout=10_000
    )
    shot(page, "4-detail-live-logs-and-stats")


def test_the_pages_follow_a_cli_stop_and_the_terminal_says_why_it_cannot_connect(
    celery_worker: Any, browser_context: Any, daphne: str, users: Any, engine_containers: Any
) -> None:
    cid = engine_containers.run("br-stop", team=users.team)
    page = signed_in_page(browser_context, daphne, users.operator)
    page.goto(f"{daphne}/containers/{cid}/")
    page.wait_for_function("document.documentElement.dataset.live === 'on'")
    attached = browser_context.new_page()
    attached.goto(f"{daphne}/containers/{cid}/terminal/?mode=attach")
    attached.wait_for_selector(".term-status.term-open")

    engine_containers.cli("stop", "-t", "1", "br-stop")
    # No reload and no polling on the detail page: only the pushed event changes it.
    page.wait_for_selector(f'h1 [data-live-state="{cid}"][data-state="exited"]', timeout=10_000)
    page.wait_for_selector(".logs-status >> text=stopped: log complete")
    page.wait_for_selector(".stats-status >> text=container stopped")
    shot(page, "5-detail-after-cli-stop")
    attached.wait_for_selector(".term-status.term-ended")
    assert attached.inner_text(".term-status").startswith("container stopped")
    shot(attached, "6-attached-terminal-container-stopped")

    refused = browser_context.new_page()
    refused.goto(f"{daphne}/containers/{cid}/terminal/")
    refused.wait_for_selector(".term-status.term-failed")
    status = refused.inner_text(".term-status")
    assert "close code 4409" in status and "not running" in status, status
    shot(refused, "7-terminal-refused-with-reason")

    # Started again from the CLI: the open detail page follows its logs and stats again.
    engine_containers.cli("start", "br-stop")
    page.wait_for_selector(f'h1 [data-live-state="{cid}"][data-state="running"]', timeout=10_000)
    page.wait_for_selector(".logs-status >> text=live", timeout=10_000)
    page.wait_for_selector(".stats-status >> text=live, one sample a second", timeout=10_000)
    shot(page, "7a-detail-after-cli-start")


def test_a_merged_view_colours_each_source_and_keeps_a_bounded_window(
    browser_context: Any, daphne: str, users: Any, engine_containers: Any
) -> None:
    wait = "while [ ! -e /tmp/go ]; do sleep 0.1; done; "
    flood = engine_containers.run(
        "br-flood", "sh", "-c", wait + "seq 1 12000; sleep 600", team=users.team
    )
    quiet = engine_containers.run(
        "br-quiet", "sh", "-c", wait + "echo from-quiet; sleep 600", team=users.team
    )
    page = signed_in_page(browser_context, daphne, users.viewer)
    page.goto(f"{daphne}/containers/merged-logs/?c={flood}&c={quiet}")
    page.wait_for_function(
        "!document.querySelector('.logs-status').textContent.includes('connecting')"
    )
    engine_containers.cli("exec", flood, "touch", "/tmp/go")
    wait_for_line(page, "12000")
    engine_containers.cli("exec", quiet, "touch", "/tmp/go")  # last, so it stays in view
    page.wait_for_selector(".logs-src-1 >> text=from-quiet")
    rendered = page.locator(".logs-line").count()
    assert rendered == 5000, rendered  # the DOM keeps the last 5,000 lines only
    first_name = page.locator(".logs-line.logs-src-0 .logs-name").first.inner_text()
    assert first_name.strip() == "br-flood |"
    assert page.is_visible(".logs-note")
    assert int(page.inner_text(".logs-dropped")) == 12001 - 5000
    shot(page, "8-merged-logs-bounded")

    # Search covers every loaded line, the ones no longer rendered too.
    page.fill("input[name=search]", "from-quiet")
    page.wait_for_function("document.querySelectorAll('.logs-line').length === 1")
    page.fill("input[name=search]", "11")
    wait_for_line(page, "11")  # line 11 was no longer rendered
    page.fill("input[name=search]", "")
    page.click(".logs-pause")
    assert page.inner_text(".logs-status").startswith("paused")

"""End to end in headless Chromium (Debian's, driven by Playwright) against Django's
live server, the real Celery worker and the real engine: sign in, create a container,
bulk-kill three, bulk-tag two images, and find it all in the audit log.

Screenshots of each step go to tests/output/ (git-ignored). Skipped, with the reason,
when Debian's chromium or the playwright package is missing; never downloads a browser.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.kernel,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

CHROMIUM = "/usr/bin/chromium"
OUTPUT = Path(__file__).resolve().parents[1] / "output"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API keeps an asyncio loop in this thread, which makes Django refuse
    # ORM calls here; the test's own queries never run inside that loop's callbacks.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (Debian package chromium; scripts/setup-host)")
    OUTPUT.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.set_default_timeout(30_000)
            yield context.new_page()
        finally:
            browser.close()


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(OUTPUT / f"e2e-{name}.png"), full_page=True)


def _sign_in(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _wait_for_job(page: Any, name: str, timeout: float = 90_000) -> str:
    """On a job page: wait until htmx polling shows it finished; return its state."""
    page.wait_for_selector(
        "#job-progress[data-state=succeeded], #job-progress[data-state=failed],"
        " #job-progress[data-state=cancelled]",
        timeout=timeout,
    )
    _shot(page, name)
    return str(page.get_attribute("#job-progress", "data-state"))


def _tiny_rootfs() -> io.BytesIO:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        body = b"hello from an imported image\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    data.seek(0)
    return data


def test_a_user_creates_kills_tags_and_finds_it_all_in_the_audit_log(
    page: Any, live_server: Any, celery_worker: Any, users: Any, engine_containers: Any
) -> None:
    from containers_app.models import AuditEntry
    from runtime import containers, images

    base = live_server.url
    images.import_tar(_tiny_rootfs(), reference="e2e-import:v1")

    # An operator of team red signs in and creates one container from the form.
    _sign_in(page, base, "red-operator", "pw-operator-12345")
    _shot(page, "1-dashboard")
    page.goto(f"{base}/containers/create/")
    page.fill("#id_image", "busybox:latest")
    page.fill("#id_name", "e2e-web")
    page.fill("#id_command", "sleep 600")
    _shot(page, "2-create-form")
    page.click("#create-submit")
    assert _wait_for_job(page, "3-create-job") == "succeeded"

    # Three more in one go (count 3), then kill all three from the containers page.
    page.goto(f"{base}/containers/create/")
    page.fill("#id_image", "busybox:latest")
    page.fill("#id_name", "e2e-k")
    page.fill("#id_command", "sleep 600")
    page.fill("#id_count", "3")
    page.click("#create-submit")
    assert _wait_for_job(page, "4-create-three-job") == "succeeded"
    page.goto(f"{base}/containers/?q=e2e-k")
    page.wait_for_selector("text=e2e-k-3")
    page.check("#select-page")
    page.select_option("#bulk-action", "kill")
    _shot(page, "5-containers-selected")
    page.click("#bulk-preview")
    page.wait_for_selector("#preview")
    assert page.locator("#preview >> text=will get SIGKILL").count() == 3
    _shot(page, "6-kill-preview")
    page.click("#bulk-confirm")
    assert _wait_for_job(page, "7-kill-job") == "succeeded"
    for n in (1, 2, 3):
        state = containers.inspect(f"e2e-k-{n}")["State"]
        assert state["Status"] == "exited" and state["ExitCode"] == 137
    assert containers.inspect("e2e-web")["State"]["Status"] == "running"

    # A container started with the CLI shows up on the open page without a reload.
    page.goto(f"{base}/containers/")
    page.wait_for_selector("text=e2e-web")
    engine_containers.cli(
        "run",
        "-d",
        "--name",
        "e2e-from-cli",
        "--label",
        f"moorage.dashboard.team={users.team.pk}",
        "busybox",
        "sleep",
        "600",
    )
    page.wait_for_selector("#containers >> text=e2e-from-cli", timeout=8_000)
    _shot(page, "7a-cli-container-appears")

    # The detail page of the running one: state, processes and the log tail (htmx).
    page.goto(f"{base}/containers/?q=e2e-web")
    page.click("text=e2e-web")
    page.wait_for_selector("#logs pre")
    page.wait_for_selector("text=sleep 600")
    assert "moorage run" in page.inner_text("#run-command")
    _shot(page, "7b-container-detail")
    page.click("text=Duplicate")
    page.wait_for_selector("#create-form")
    assert page.input_value("#id_command") == "sleep 600"
    assert page.input_value("#id_image") == "busybox:latest"

    # A site admin puts two images (global ones) under a repository prefix.
    page.click("header form button[type=submit]")  # sign out
    page.wait_for_url(f"{base}/login/")
    _sign_in(page, base, "root", "pw-root-12345")
    page.goto(f"{base}/images/")
    for reference in ("busybox:latest", "e2e-import:v1"):
        page.check(f'input[aria-label="select {reference}"]')
    page.select_option("select[name=mode]", "prefix")
    page.fill("#tag-value", "e2e.local/team")
    _shot(page, "8-images-selected")
    page.click("#tag-preview")
    page.wait_for_selector("text=e2e.local/team/busybox:latest")
    _shot(page, "9-tag-preview")
    page.click("#tag-confirm")
    assert _wait_for_job(page, "10-tag-job") == "succeeded"
    busybox = images.resolve("busybox:latest").id
    assert images.resolve("e2e.local/team/busybox:latest").id == busybox
    assert images.resolve("e2e.local/team/e2e-import:v1").id == images.resolve("e2e-import:v1").id

    # The audit log shows who did each of these, with the jobs.
    page.goto(f"{base}/audit/")
    _shot(page, "11-audit")
    table = page.inner_text("#audit")
    for verb in ("create", "kill", "image.tag"):
        assert verb in table, verb
    assert "e2e-k-2" in table and "red-operator" in table and "root" in table
    kill = AuditEntry.objects.get(verb="kill")
    assert kill.username == "red-operator" and kill.job is not None
    assert sorted(kill.targets) == ["e2e-k-1", "e2e-k-2", "e2e-k-3"]

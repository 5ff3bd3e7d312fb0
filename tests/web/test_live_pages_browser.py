"""Live pages in headless Chromium (issue 6): job progress item by item, the containers
list's live CPU column, and the dashboard, list and detail following a CLI ``moorage stop``.

Same set-up as tests/web/test_streams_browser.py (whose fixtures this module reuses):
the real daphne on the test database and the session's Redis, the real Celery worker
(its beat syncs the mirror every second, which publishes what the CLI changed), Debian's
chromium driven by Playwright. Screenshots go to tests/output/streams-live-*.png.
"""

from __future__ import annotations

from typing import Any

import pytest

from containers_app.services import containers as container_services
from tests.web import test_streams_browser as streams

# The daphne and Chromium fixtures of the stream browser tests, registered here by name.
daphne = streams.daphne
browser_context = streams.browser_context
shot, signed_in_page = streams.shot, streams.signed_in_page

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.kernel,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

# Stops on SIGTERM two seconds after it; busybox ``sleep`` ignores TERM (the timeout).
QUICK = ("sh", "-c", "trap 'sleep 2; exit 0' TERM; while :; do sleep 0.1; done")
SUMMARY = "document.querySelector('#job-summary').textContent.trim()"


def test_the_job_page_shows_each_item_finish_without_reload_or_polling(
    celery_worker: Any, browser_context: Any, daphne: str, users: Any, engine_containers: Any
) -> None:
    quick = [engine_containers.run(f"bj-quick-{n}", *QUICK, team=users.team) for n in (1, 2)]
    slow = engine_containers.run("bj-slow", team=users.team)
    page = signed_in_page(browser_context, daphne, users.operator)
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/progress/" in r.url else None)
    job = container_services.bulk(users.operator, "stop", [*quick, slow], {"timeout": 4})
    page.goto(f"{daphne}/jobs/{job.pk}/")
    page.evaluate("window.loadedOnce = true")
    page.wait_for_selector("#job-live >> text=Live: items update")
    assert page.evaluate(SUMMARY) != "3 of 3 done"
    # The two quick items end about two seconds before the slow one: seen in between.
    page.wait_for_function(f"{SUMMARY} === '2 of 3 done'", timeout=15_000)
    assert page.get_attribute("#job-bar", "style") == "width: 66%;"
    assert page.locator("tr[data-item][data-state=succeeded]").count() == 2
    shot(page, "live-1-job-two-of-three")
    page.wait_for_selector("#job-progress[data-state=succeeded] #job-report", timeout=15_000)
    assert page.evaluate(SUMMARY) == "3 of 3 done"
    assert page.evaluate("window.loadedOnce") is True  # the same document: no reload
    # While the socket was open the 1 s poll stayed quiet; the one read is the report.
    assert len(polls) == 1, polls
    shot(page, "live-2-job-finished")


def test_the_list_shows_live_cpu_and_dashboard_list_and_detail_follow_a_cli_stop(
    celery_worker: Any, browser_context: Any, daphne: str, users: Any, engine_containers: Any
) -> None:
    busy = engine_containers.run("bl-busy", "sh", "-c", "while :; do :; done", team=users.team)
    victim = engine_containers.run("bl-victim", team=users.team)
    listing = signed_in_page(browser_context, daphne, users.operator)
    listing.goto(f"{daphne}/containers/")
    listing.wait_for_function(
        f"/^\\d+\\.\\d% · \\d/.test(document.querySelector('[data-stats-cell=\"{busy}\"]')"
        ".textContent)",
        timeout=10_000,
    )
    cpu = float(listing.inner_text(f'[data-stats-cell="{busy}"]').split("%")[0])
    assert cpu > 10, cpu
    shot(listing, "live-3-list-cpu-column")

    detail = browser_context.new_page()
    detail.goto(f"{daphne}/containers/{victim}/")
    detail.wait_for_function("document.documentElement.dataset.live === 'on'")
    assert detail.locator('#actions button >> text="Start"').count() == 0
    home = browser_context.new_page()
    home.goto(f"{daphne}/")
    home.wait_for_function("document.documentElement.dataset.live === 'on'")
    running = int(home.inner_text("[data-count=running] .stat"))
    exited = int(home.inner_text("[data-count=exited] .stat"))
    assert running >= 2
    engine_containers.cli("stop", "-t", "0", "bl-victim")
    count = "document.querySelector('[data-count=running] .stat').textContent.trim()"
    home.wait_for_function(f"{count} === '{running - 1}'", timeout=10_000)
    assert int(home.inner_text("[data-count=exited] .stat")) == exited + 1
    home.wait_for_selector("#recent-events >> text=container die")
    shot(home, "live-4-dashboard-after-cli-stop")
    # The detail page re-reads its state card and offers the actions of a stopped one.
    detail.wait_for_selector("#state-card td >> text=exited", timeout=10_000)
    detail.wait_for_selector('#actions button >> text="Start"')
    # The list (running containers only) drops the stopped row on the same push.
    listing.wait_for_selector(f'[data-stats-cell="{victim}"]', state="detached", timeout=10_000)
    assert listing.locator(f'[data-stats-cell="{busy}"]').count() == 1

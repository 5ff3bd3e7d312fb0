"""The jobs list in headless Chromium: rows follow ws/jobs/ pushes; the 3 s poll is only
the fallback. Same daphne/Chromium set-up as tests/web/test_streams_browser.py."""

from __future__ import annotations

import time
from typing import Any

import pytest

from containers_app.consumers import jobs as job_stream
from containers_app.models import Job, JobState
from tests.web import test_streams_browser as streams

daphne = streams.daphne
browser_context = streams.browser_context

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def state_of(page: Any, pk: int) -> str:
    return str(
        page.evaluate(
            f"(document.querySelector('#jobs a[href=\"/jobs/{pk}/\"]')?.closest('tr')"
            "?.querySelector('.state')?.textContent || '').trim()"
        )
    )


def test_the_jobs_list_follows_pushed_state_changes_and_does_not_poll_while_live(
    browser_context: Any, daphne: str, users: Any
) -> None:
    job = Job.objects.create(verb="stop", user=users.operator, team=users.team, total=0)
    page = streams.signed_in_page(browser_context, daphne, users.viewer)
    reads: list[float] = []
    page.on(
        "request",
        lambda r: (
            reads.append(time.monotonic())
            if r.headers.get("hx-request") and "/jobs/" in r.url
            else None
        ),
    )
    page.goto(f"{daphne}/jobs/")
    page.wait_for_selector("#jobs-live >> text=Live: jobs update")
    assert state_of(page, job.pk) == "queued"
    page.evaluate("window.loadedOnce = true")

    # What tasks.run_job does when the job starts and ends (the row's state in the
    # database first, then the push), from this process's publisher.
    for state in (JobState.RUNNING, JobState.SUCCEEDED):
        Job.objects.filter(pk=job.pk).update(state=state)
        job_stream.job_changed(job.pk, state, users.operator.pk, users.team.pk)
        page.wait_for_function(
            f"document.querySelector('#jobs a[href=\"/jobs/{job.pk}/\"]').closest('tr')"
            f".querySelector('.state').textContent.trim() === '{state}'",
            timeout=5_000,
        )
    streams.shot(page, "jobs-list-live")
    assert page.evaluate("window.loadedOnce") is True  # the same document: no reload

    # Quiet for two poll periods: while the socket is open the 3 s poll sends nothing.
    quiet_from = time.monotonic()
    page.wait_for_timeout(7_000)
    assert [t for t in reads if t > quiet_from] == []

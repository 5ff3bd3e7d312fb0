"""A build from the dashboard in headless Chromium (issue 7): paste a Dockerfile, watch
its output stream in, find the image listed.

Runs the real daphne, Redis and Celery worker, with the fixtures of
tests/web/test_streams_browser.py (Debian's chromium under Playwright; skipped with the
reason when either is missing). Screenshots go to tests/output/build-*.png.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.test_streams_browser import (  # noqa: F401 - fixtures
    OUTPUT,
    browser_context,
    daphne,
    signed_in_page,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.kernel,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

DOCKERFILE = """FROM busybox
RUN echo first-line && sleep 1 && echo second-line
CMD ["echo", "built in a browser"]
"""


@pytest.mark.usefixtures("celery_worker", "busybox_image")
def test_a_pasted_dockerfile_streams_its_output_and_the_image_is_listed(
    browser_context: Any,  # noqa: F811 - fixtures
    daphne: str,  # noqa: F811
    users: Any,
) -> None:
    page = signed_in_page(browser_context, daphne, users.operator)
    page.goto(f"{daphne}/images/build/")
    page.fill("#id_dockerfile", DOCKERFILE)
    page.fill("#id_tags", "browser/app:v1")
    page.click("#build-form button[type=submit]")
    page.wait_for_url("**/images/jobs/*/")
    # The RUN's first line shows while the step still sleeps: output streams, it does
    # not arrive all at once when the job ends.
    page.wait_for_selector("#image-job-output >> text=first-line")
    page.wait_for_selector("#image-job-output >> text=Successfully tagged browser/app:v1")
    page.wait_for_selector("#image-job[data-state=succeeded]")
    assert "second-line" in page.inner_text("#image-job-output")
    page.screenshot(path=str(OUTPUT / "build-1-output.png"), full_page=True)
    page.goto(f"{daphne}/images/?q=browser")
    page.wait_for_selector("text=browser/app:v1")
    page.screenshot(path=str(OUTPUT / "build-2-listed.png"), full_page=True)

"""Login throttling holds across processes (issue 5): daphne and the workers are several
processes, so the failure count must live in the shared Redis cache, not in one
process's memory.

Another Python process (its own Django, the same settings, database and redis-server as
this test's) signs in wrongly three times; this process adds two more failures and is
then refused with 429 even with the right password, and so is the other process again.
With a per-process cache neither process would ever reach five.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from tests.web.conftest import REPO, database_url

pytestmark = pytest.mark.usefixtures("transactional_db")

# Signs in as argv[1] with password argv[2], argv[3] times; prints each status code.
OTHER_PROCESS = """
import sys, django
django.setup()
from django.conf import settings
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # the users'
from django.test import Client
client = Client(REMOTE_ADDR="127.0.0.1", HTTP_HOST="localhost")  # an ALLOWED_HOST
codes = [client.post("/login/", {"username": sys.argv[1], "password": sys.argv[2]}).status_code
         for _ in range(int(sys.argv[3]))]
print(" ".join(map(str, codes)))
"""


def sign_in_elsewhere(redis_url: str, username: str, password: str, times: int) -> list[int]:
    env = dict(
        os.environ,
        DATABASE_URL=database_url(),
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="webui.settings",
        PYTHONPATH=str(REPO),
    )
    done = subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS, username, password, str(times)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [int(code) for code in done.stdout.split()]


def test_failures_in_another_process_count_towards_the_throttle_here(
    redis_server: str, users: Any
) -> None:
    cache.clear()
    assert sign_in_elsewhere(redis_server, "red-viewer", "wrong", 3) == [200, 200, 200]
    here = Client(REMOTE_ADDR="127.0.0.1")
    for _ in range(2):
        wrong = here.post("/login/", {"username": "red-viewer", "password": "wrong"})
        assert wrong.status_code == 200
    right = {"username": "red-viewer", "password": "pw-viewer-12345"}
    assert here.post("/login/", right).status_code == 429
    assert sign_in_elsewhere(redis_server, "red-viewer", "pw-viewer-12345", 1) == [429]
    # Another user from the same address is not held back, in either process.
    assert sign_in_elsewhere(redis_server, "red-operator", "pw-operator-12345", 1) == [302]
    cache.clear()

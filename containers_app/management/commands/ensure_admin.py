"""`manage.py ensure_admin`: the first superuser of a new install, made once.

The password comes from ``MOORAGE_ADMIN_PASSWORD`` (read from the environment, so it
never shows in ``ps``) or is generated and printed once; nothing stores it in plain text.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction


class Command(BaseCommand):
    help = "Create the superuser 'admin' if the site has no superuser yet."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model()
        username: str = options["username"]
        with transaction.atomic():
            if users.objects.filter(is_superuser=True).exists():
                self.stdout.write("A superuser exists already; no account was created.")
                return
            if users.objects.filter(username=username).exists():
                raise CommandError(
                    f"User {username!r} exists but is not a superuser; "
                    "pick another name with --username."
                )
            given = os.environ.get("MOORAGE_ADMIN_PASSWORD")
            password = given or secrets.token_urlsafe(12)
            users.objects.create_superuser(username=username, password=password)
        if given:
            self.stdout.write(
                f"Created superuser {username!r} with the password from MOORAGE_ADMIN_PASSWORD."
            )
        else:
            self.stdout.write(
                f"Created superuser {username!r} with password {password} (shown only once)."
            )

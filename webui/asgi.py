"""ASGI entry point for daphne: Django for HTTP, Channels consumers for websockets.

Websockets authenticate with the Django session and are refused when their Origin is not
one of ALLOWED_HOSTS (DESIGN.md, security model). The consumers' URL patterns are in
containers_app/routing.py.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webui.settings")

# Django must be set up before anything imports models (consumers will).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from containers_app.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # One host, one process: daphne serves the project's and the admin's static files
        # itself (as runserver does), so `make run` needs no web server in front.
        "http": ASGIStaticFilesHandler(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

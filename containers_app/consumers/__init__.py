"""Websocket consumers: the browser terminal, live logs and stats (issue 6).

Each one authenticates with the Django session (AuthMiddlewareStack in webui/asgi.py,
behind the Origin check), checks the permission table through the services layer
before it opens anything, and pumps a stream from ``containers_app.streams`` without
blocking the event loop. A refusal is accepted and then closed with a reason the page
can show ({"error": sentence} and close code 4000 + HTTP status), never a silent drop.
"""

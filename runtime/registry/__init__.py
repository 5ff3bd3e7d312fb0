"""Registries: pull, push, login, logout and search over the distribution v2 protocol.

Kernel interfaces: TCP sockets with timeouts (``client``), files in ``paths.tmp()``
while blobs move, the image store (``runtime.images.store``), and the engine config
file for credentials (``credentials``, mode 0600).

    pull("127.0.0.1:5000/team/app:v1", progress=print)   -> [Pulled]
    pull("busybox", all_tags=True)                        -> one Pulled per tag
    push("127.0.0.1:5000/team/app:v1", progress=print)   -> [Pushed]
    login("127.0.0.1:5000", "user", "secret")            # verifies, then stores
    logout("127.0.0.1:5000")                              -> False if not logged in
    search("127.0.0.1:5000/app")                          -> [SearchResult]

Progress callbacks receive docker's JSON messages (``{"status", "id", "progressDetail":
{"current", "total"}}``). Errors: ``client.Unauthorized`` (an ``InvalidSpec``) for
refused credentials, ``NotFound`` for an unknown manifest or repository, ``KernelError``
(with the socket's errno) for an unreachable registry, ``InvalidSpec`` for anything the
registry sends that does not verify. This package never runs in the container monitor.
"""

from __future__ import annotations

from runtime.registry.accounts import SearchResult, login, logout, search
from runtime.registry.client import Registry, Unauthorized
from runtime.registry.pulling import Pulled, pull
from runtime.registry.pushing import Pushed, push

__all__ = [
    "Pulled",
    "Pushed",
    "Registry",
    "SearchResult",
    "Unauthorized",
    "login",
    "logout",
    "pull",
    "push",
    "search",
]

"""``login``, ``logout`` and ``search``: the registry verbs that move no image.

Kernel interfaces: TCP sockets (``client``) and the engine config file
(``credentials``: written atomically, mode 0600).

``login`` stores credentials only after the registry accepted them on ``/v2/`` (a
basic-auth answer, or a token from the bearer realm); wrong ones are an
``Unauthorized`` and nothing is written. ``search`` asks ``/v1/search``, which Docker
Hub (``index.docker.io``) answers; registries that do not implement it (the Debian
``docker-registry``, distribution's registry) get a sentence saying so.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from runtime.errors import InvalidSpec, NotFound
from runtime.registry import credentials, endpoints
from runtime.registry.client import Registry, raise_for


@dataclass(frozen=True)
class SearchResult:
    name: str
    description: str
    stars: int
    official: bool
    automated: bool


def login(server: str | None, username: str, password: str) -> str:
    """Verify and store credentials for ``server`` (default Docker Hub); return its domain."""
    domain = endpoints.server_domain(server or endpoints.HUB_DOMAIN)
    if not username or not password:
        raise InvalidSpec("login needs a username and a password")
    with Registry(domain, (username, password)) as reg:
        reg.check_login()
    credentials.put(domain, username, password)
    return domain


def logout(server: str | None) -> tuple[str, bool]:
    """Forget the credentials of ``server``; (domain, whether there were any)."""
    domain = endpoints.server_domain(server or endpoints.HUB_DOMAIN)
    return domain, credentials.remove(domain)


def _split(term: str) -> tuple[str, str]:
    first, slash, rest = term.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return endpoints.server_domain(first), rest
    return endpoints.HUB_DOMAIN, term


def search(term: str, limit: int = 25) -> list[SearchResult]:
    """Repositories matching ``term`` ('busybox', or 'registry.lan:5000/app')."""
    if not 1 <= limit <= 100:
        raise InvalidSpec("limit must be between 1 and 100")
    domain, query = _split(term)
    if not query:
        raise InvalidSpec("search needs a term")
    with Registry(domain) as reg:
        hub = domain == endpoints.HUB_DOMAIN
        base = f"https://{endpoints.HUB_INDEX}" if hub else reg.base_url()
        url = f"{base}/v1/search?" + urllib.parse.urlencode({"q": query, "n": limit})
        _, resp = reg.request("GET", url)
    assert resp is not None
    if resp.status in (404, 405):
        raise NotFound(
            f"the registry {domain} does not support search (it has no /v1/search "
            "endpoint); ask its owner for the repository names"
        )
    if resp.status != 200:
        raise_for(resp, f"search {domain}")
    results = resp.json().get("results") or []
    found = []
    for item in results[:limit]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        found.append(
            SearchResult(
                item["name"],
                str(item.get("description") or ""),
                int(item.get("star_count") or 0),
                bool(item.get("is_official")),
                bool(item.get("is_automated")),
            )
        )
    return found

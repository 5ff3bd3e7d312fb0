"""Where a repository lives: a reference's domain mapped to a registry host and scheme.

No kernel interface: pure mapping, plus reading the engine's config file for the list of
insecure registries. Docker Hub's defaults apply: ``docker.io`` (and ``index.docker.io``)
is served by ``registry-1.docker.io`` and single-component names get ``library/``
(``runtime.images.references.parse`` already normalizes that).

Plain HTTP is allowed, as docker allows it, only for "insecure" registries: loopback
hosts (``localhost``, ``127.0.0.0/8``, ``::1``) always, others when listed in
``MOORAGE_INSECURE_REGISTRIES`` (comma-separated ``host[:port]``) or in the
``insecure-registries`` list of the engine config file (``credentials.config_path()``).
An insecure registry is still tried over HTTPS first, then plain HTTP.

``MOORAGE_DOCKER_HUB`` (``host[:port]``) names the registry that serves ``docker.io``
images in place of ``registry-1.docker.io``: a local copy of the images a class needs on
a machine without internet, or, in the tests, a closed loopback port, so that a missing
image never sends a packet off the machine. References keep saying ``docker.io``.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from runtime.errors import InvalidSpec
from runtime.images import references

HUB_DOMAIN = references.DEFAULT_DOMAIN  # 'docker.io'
HUB_HOST = "registry-1.docker.io"
HUB_INDEX = "index.docker.io"  # where Docker Hub answers /v1/search
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


@dataclass(frozen=True)
class Endpoint:
    domain: str  # as references name it: 'docker.io', '127.0.0.1:5000'
    host: str  # what we connect to: 'registry-1.docker.io', '127.0.0.1:5000'
    insecure: bool  # plain HTTP allowed after HTTPS fails


def server_domain(server: str) -> str:
    """``login``/``logout`` SERVER as a domain: scheme and path dropped, Hub aliases merged.

    'https://index.docker.io/v1/' -> 'docker.io'; 'http://localhost:5000' -> 'localhost:5000'.
    """
    text = server.strip()
    for scheme in ("https://", "http://"):
        text = text.removeprefix(scheme)
    text = text.split("/", 1)[0]
    if not text or any(c.isspace() for c in text):
        raise InvalidSpec(f"invalid registry address {server!r}")
    return HUB_DOMAIN if text.lower() in _HUB_ALIASES else text.lower()


def _is_loopback(domain: str) -> bool:
    host = domain
    if host.startswith("["):
        host = host[1 : host.find("]")]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def insecure_registries() -> set[str]:
    from runtime.registry import credentials  # the config file: imported when needed

    env = os.environ.get("MOORAGE_INSECURE_REGISTRIES", "")
    listed = {s.strip().lower() for s in env.split(",")}
    listed |= {str(s).lower() for s in credentials.read_config().get("insecure-registries", [])}
    return {s for s in listed if s}


def is_insecure(domain: str) -> bool:
    return _is_loopback(domain) or domain.lower() in insecure_registries()


def hub_host() -> str:
    """Where ``docker.io`` images come from: Docker Hub, or ``MOORAGE_DOCKER_HUB``."""
    return os.environ.get("MOORAGE_DOCKER_HUB", "").strip().lower() or HUB_HOST


def endpoint(domain: str) -> Endpoint:
    """The endpoint serving ``domain`` (a reference's domain or a login SERVER)."""
    domain = server_domain(domain)
    if domain != HUB_DOMAIN:
        return Endpoint(domain, domain, is_insecure(domain))
    host = hub_host()
    return Endpoint(domain, host, is_insecure(domain) or (host != HUB_HOST and is_insecure(host)))

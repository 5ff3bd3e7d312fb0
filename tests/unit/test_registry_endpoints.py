"""Registry endpoints, insecure-registry rules and auth challenges: pure functions."""

from __future__ import annotations

import pytest

from runtime.errors import InvalidSpec
from runtime.registry import client, endpoints


@pytest.mark.parametrize(
    ("server", "domain"),
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("docker.io", "docker.io"),
        ("http://localhost:5000", "localhost:5000"),
        ("127.0.0.1:5000/", "127.0.0.1:5000"),
        ("Registry.LAN:443", "registry.lan:443"),
    ],
)
def test_login_servers_are_normalised_to_a_domain(server: str, domain: str) -> None:
    assert endpoints.server_domain(server) == domain


def test_a_blank_server_is_refused() -> None:
    with pytest.raises(InvalidSpec):
        endpoints.server_domain("https://")


def test_docker_hub_is_served_by_registry_1_over_https_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("MOORAGE_CONFIG", f"{tmp_path}/config.json")
    monkeypatch.delenv("MOORAGE_DOCKER_HUB", raising=False)
    hub = endpoints.endpoint("docker.io")
    assert (hub.host, hub.insecure) == ("registry-1.docker.io", False)


@pytest.mark.parametrize(
    ("hub_host", "insecure"),
    [
        ("127.0.0.1:9", True),
        ("Mirror.LAN:5000", False),
    ],
)
def test_moorage_docker_hub_serves_docker_io_from_another_registry(
    hub_host: str, insecure: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("MOORAGE_CONFIG", f"{tmp_path}/config.json")
    monkeypatch.delenv("MOORAGE_INSECURE_REGISTRIES", raising=False)
    monkeypatch.setenv("MOORAGE_DOCKER_HUB", hub_host)
    hub = endpoints.endpoint("docker.io")
    assert (hub.domain, hub.host, hub.insecure) == ("docker.io", hub_host.lower(), insecure)
    assert endpoints.endpoint("quay.io").host == "quay.io"


@pytest.mark.parametrize(
    ("domain", "insecure"),
    [
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("127.3.4.5", True),
        ("[::1]:5000", True),
        ("registry.lan:5000", False),
        ("10.0.0.1:5000", False),
    ],
)
def test_only_loopback_registries_may_use_plain_http_by_default(
    domain: str, insecure: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("MOORAGE_CONFIG", f"{tmp_path}/config.json")
    monkeypatch.delenv("MOORAGE_INSECURE_REGISTRIES", raising=False)
    assert endpoints.is_insecure(domain) is insecure


def test_the_environment_lists_more_insecure_registries(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("MOORAGE_CONFIG", f"{tmp_path}/config.json")
    monkeypatch.setenv("MOORAGE_INSECURE_REGISTRIES", "registry.lan:5000, other:1")
    assert endpoints.is_insecure("registry.lan:5000")
    assert not endpoints.is_insecure("registry.lan:5001")


def test_a_bearer_challenge_is_parsed_like_docker_does() -> None:
    kind, params = client._parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull"'
    )
    assert kind == "bearer"
    assert params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/busybox:pull",
    }


def test_registry_error_bodies_read_as_docker_prints_them() -> None:
    body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
    assert client.error_text(401, body) == "unauthorized: authentication required"
    assert client.error_text(502, b"<html>", "Bad Gateway") == "502 Bad Gateway"

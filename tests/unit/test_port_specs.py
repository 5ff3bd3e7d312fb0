"""Parsing -p/--publish, --expose and -P the way the docker CLI does, with its errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime.errors import InvalidSpec, NotFound
from runtime.network.ports import (
    Mapping,
    bindings,
    parse_expose,
    parse_publish,
    port_lines,
    requested,
    validate,
)
from runtime.spec import ContainerSpec


def test_host_and_container_port() -> None:
    assert parse_publish("8080:80") == [Mapping(80, "tcp", "", 8080)]


def test_ip_host_and_container_port() -> None:
    assert parse_publish("127.0.0.1:8080:80") == [Mapping(80, "tcp", "127.0.0.1", 8080)]


def test_ip_with_an_empty_host_port_means_a_random_port_on_that_ip() -> None:
    assert parse_publish("127.0.0.1::80") == [Mapping(80, "tcp", "127.0.0.1", 0)]


def test_container_port_alone_gets_a_random_host_port() -> None:
    assert parse_publish("80") == [Mapping(80, "tcp", "", 0)]


def test_udp_and_upper_case_protocols() -> None:
    assert parse_publish("5353:53/udp") == [Mapping(53, "udp", "", 5353)]
    assert parse_publish("53/UDP") == [Mapping(53, "udp", "", 0)]


def test_ranges_pair_up_port_by_port() -> None:
    assert parse_publish("8000-8001:80-81") == [
        Mapping(80, "tcp", "", 8000),
        Mapping(81, "tcp", "", 8001),
    ]
    assert parse_publish("80-81") == [Mapping(80), Mapping(81)]


def test_a_host_range_for_one_container_port_is_a_pool() -> None:
    assert parse_publish("8000-8010:80") == [Mapping(80, "tcp", "", 8000, 8010)]


def test_bracketed_ipv6_host_ip() -> None:
    assert parse_publish("[::1]:8080:80") == [Mapping(80, "tcp", "::1", 8080)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("70000:80", "invalid hostPort: 70000"),
        ("8080:70000", "invalid containerPort: 70000"),
        ("8080:0", "invalid containerPort: 0"),
        ("abc", "invalid containerPort: abc"),
        ("+80", "invalid containerPort: +80"),
        ("8080:", "no port specified: 8080:<empty>"),
        ("8001-8000:80", "invalid hostPort: 8001-8000"),
        (
            "8000-8002:80-81",
            "invalid ranges specified for container and host Ports: 80-81 and 8000-8002",
        ),
        ("1.2.3:8080:80", "invalid IP address: 1.2.3"),
        ("80/icmp", "invalid proto: icmp"),
    ],
)
def test_bad_publish_specs_fail_with_dockers_words(text: str, message: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_publish(text)
    assert str(caught.value) == message


def test_expose_takes_ports_ranges_and_protocols() -> None:
    assert parse_expose("80") == [Mapping(80)]
    assert parse_expose("7000-7001/udp") == [Mapping(7000, "udp"), Mapping(7001, "udp")]


@pytest.mark.parametrize("text", ["8080:80", "0", "99999", "x-y"])
def test_bad_expose_specs_are_refused(text: str) -> None:
    with pytest.raises(InvalidSpec, match="--expose"):
        parse_expose(text)


def test_validate_refuses_publishing_in_another_containers_namespace() -> None:
    with pytest.raises(InvalidSpec, match="port publishing and the container type"):
        validate(ContainerSpec(image="busybox", network_mode="container:x", publish=("80",)))
    with pytest.raises(InvalidSpec, match="port exposing"):
        validate(ContainerSpec(image="busybox", network_mode="container:x", expose=("80",)))


def test_validate_reports_the_first_bad_port() -> None:
    with pytest.raises(InvalidSpec, match="invalid hostPort: 65536"):
        validate(ContainerSpec(image="busybox", publish=("8080:80", "65536:80")))


def test_publish_all_takes_image_and_expose_ports_and_keeps_explicit_ones() -> None:
    spec = ContainerSpec(
        image="web", publish=("8080:8000",), publish_all=True, expose=("9000/udp",)
    )
    mappings, exposed = requested(spec, {"ExposedPorts": {"8000/tcp": {}, "6379/tcp": {}}})
    assert exposed == ["8000/tcp", "6379/tcp", "9000/udp"]
    assert mappings == [Mapping(8000, "tcp", "", 8080), Mapping(6379), Mapping(9000, "udp")]


def test_without_publish_all_exposed_ports_stay_unpublished() -> None:
    spec = ContainerSpec(image="web", expose=("443",))
    mappings, exposed = requested(spec, {"ExposedPorts": {"8000/tcp": {}}})
    assert mappings == []
    assert exposed == ["8000/tcp", "443/tcp"]


class _Saved:
    """Just what bindings/port_lines read from a container record."""

    def __init__(self, directory: Path, name: str = "web") -> None:
        self.directory = directory
        self.name = name


def test_port_lines_print_like_docker_port(tmp_path: Path) -> None:
    (tmp_path / "ports.json").write_text(
        json.dumps(
            {
                "Ports": {
                    "80/tcp": [
                        {"HostIp": "0.0.0.0", "HostPort": "8080"},
                        {"HostIp": "127.0.0.1", "HostPort": "32768"},
                    ],
                    "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "5353"}],
                    "443/tcp": None,
                }
            }
        )
    )
    record: Any = _Saved(tmp_path)
    assert port_lines(record) == [
        "53/udp -> 0.0.0.0:5353",
        "80/tcp -> 0.0.0.0:8080",
        "80/tcp -> 127.0.0.1:32768",
    ]
    assert port_lines(record, "80") == ["0.0.0.0:8080", "127.0.0.1:32768"]
    assert port_lines(record, "53/udp") == ["0.0.0.0:5353"]
    with pytest.raises(NotFound, match="No public port '443/tcp' published for web"):
        port_lines(record, "443")


def test_a_container_that_never_published_has_no_bindings(tmp_path: Path) -> None:
    record: Any = _Saved(tmp_path)
    assert bindings(record) == {}
    assert port_lines(record) == []

"""runtime.images.config: Dockerfile-style changes and RFC3339 times, without a store."""

from __future__ import annotations

import pytest

from runtime.errors import InvalidSpec
from runtime.images.config import apply_changes, rfc3339, timestamp_ns


def test_exec_and_shell_forms_of_cmd_and_entrypoint() -> None:
    assert apply_changes({}, ['CMD ["a", "b c"]']) == {"Cmd": ["a", "b c"]}
    assert apply_changes({}, ["cmd echo $HOME"]) == {"Cmd": ["/bin/sh", "-c", "echo $HOME"]}
    assert apply_changes({}, ["CMD [not json"]) == {"Cmd": ["/bin/sh", "-c", "[not json"]}
    assert apply_changes({}, ['ENTRYPOINT ["/init"]']) == {"Entrypoint": ["/init"]}


def test_a_new_entrypoint_resets_cmd_unless_cmd_came_first() -> None:
    assert apply_changes({"Cmd": ["sh"]}, ["ENTRYPOINT top"]) == {
        "Entrypoint": ["/bin/sh", "-c", "top"]
    }
    both = apply_changes({}, ["CMD x", "ENTRYPOINT y"])
    assert both["Cmd"] == ["/bin/sh", "-c", "x"]


def test_env_replaces_a_variable_and_keeps_the_others() -> None:
    start = {"Env": ["PATH=/bin", "A=old"]}
    changed = apply_changes(start, ['ENV A=new B="with space"', "ENV LEGACY some value"])
    assert changed["Env"] == ["PATH=/bin", "A=new", "B=with space", "LEGACY=some value"]
    assert start["Env"] == ["PATH=/bin", "A=old"], "the input must not change"


def test_expose_ranges_labels_volumes_workdir_user_stopsignal_onbuild() -> None:
    config = apply_changes(
        {"WorkingDir": "/srv"},
        [
            "EXPOSE 8000-8001/tcp 53/UDP",
            "LABEL a=1 b=2",
            'VOLUME ["/data", "/logs"]',
            "WORKDIR app/../web",
            "USER 1000:1000",
            "STOPSIGNAL TERM",
            "ONBUILD RUN make",
        ],
    )
    assert config == {
        "WorkingDir": "/srv/web",
        "ExposedPorts": {"8000/tcp": {}, "8001/tcp": {}, "53/udp": {}},
        "Labels": {"a": "1", "b": "2"},
        "Volumes": {"/data": {}, "/logs": {}},
        "User": "1000:1000",
        "StopSignal": "TERM",
        "OnBuild": ["RUN make"],
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("FROM busybox", "FROM is not a valid change command"),
        ("RUN true", "RUN is not a valid change command"),
        ("CMD", "CMD requires at least one argument"),
        ("ENV =x", "names can not be blank"),
        ("ENV A=1 B", "can't find ="),
        ("EXPOSE 70000", "invalid port"),
        ("EXPOSE 80/icmp", "invalid port"),
        ("USER a b", "exactly one argument"),
        ("STOPSIGNAL SIGNOPE", "invalid signal"),
        ("ONBUILD ONBUILD RUN x", "isn't allowed"),
    ],
)
def test_bad_changes_are_refused_with_a_reason(change: str, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        apply_changes({}, [change])


def test_times_are_rfc3339_in_utc_and_parse_back() -> None:
    assert rfc3339(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"
    assert rfc3339(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
    assert timestamp_ns("2023-11-14T22:13:20.12Z") == 1_700_000_000_120_000_000
    assert timestamp_ns("2023-11-14T23:13:20+01:00") == 1_700_000_000_000_000_000
    assert timestamp_ns("yesterday") == 0

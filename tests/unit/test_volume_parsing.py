"""The parsers of -v, --mount, --tmpfs and --volumes-from, against Docker's rules and wording."""

from __future__ import annotations

import pytest

from runtime import syscalls as sc
from runtime.errors import InvalidSpec
from runtime.volumes.parsing import (
    check_volume_name,
    parse_mount,
    parse_tmpfs,
    parse_volume,
    parse_volumes_from,
    tmpfs_options,
)


def test_a_bare_path_is_an_anonymous_volume() -> None:
    request = parse_volume("/data")
    assert (request.type, request.source, request.target) == ("volume", "", "/data")
    assert request.anonymous and not request.readonly


def test_a_name_and_a_path_is_a_named_volume() -> None:
    request = parse_volume("data:/srv/data/")
    assert (request.type, request.source, request.target) == ("volume", "data", "/srv/data")
    assert not request.anonymous


def test_an_absolute_source_is_a_bind_mount_that_may_be_created() -> None:
    request = parse_volume("/host/dir:/ctr:ro")
    assert (request.type, request.source, request.target) == ("bind", "/host/dir", "/ctr")
    assert request.readonly and request.create_source and request.mode == "ro"


def test_rw_and_label_and_nocopy_modes_are_accepted() -> None:
    assert not parse_volume("/h:/c:rw,z").readonly
    assert parse_volume("v1:/c:nocopy").nocopy


@pytest.mark.parametrize(
    "raw, message",
    [
        (
            "data:rel",
            "invalid volume specification: 'data:rel': invalid mount config for type "
            "\"volume\": invalid mount path: 'rel' mount path must be absolute",
        ),
        ("/data:rw", "invalid volume specification: '/data:rw'"),
        (":/x", "invalid volume specification: ':/x'"),
        ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
        ("vol:/x:bogus", "invalid mode: bogus"),
        ("vol:/x:ro,rw", "invalid mode: ro,rw"),
        ("/", "destination can't be '/'"),
        ("d/x:/y", "includes invalid characters for a local volume name"),
        ("/h:/c:nocopy", "field VolumeOptions must not be specified"),
    ],
)
def test_bad_volume_specs_are_refused_in_dockers_words(raw: str, message: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_volume(raw)
    assert message in str(caught.value)


def test_volume_names_follow_dockers_pattern() -> None:
    assert check_volume_name("my_vol.1-x") == "my_vol.1-x"
    for bad in ("x", ".hidden", "..", "a/b", "-lead", ""):
        with pytest.raises(InvalidSpec):
            check_volume_name(bad)


def test_mount_defaults_to_a_volume_and_reads_every_spelling_of_its_keys() -> None:
    request = parse_mount("src=cache,dst=/cache,ro,volume-label=a=b,volume-opt=type=tmpfs")
    assert (request.type, request.source, request.target) == ("volume", "cache", "/cache")
    assert request.readonly
    assert request.volume_labels == {"a": "b"}
    assert request.volume_options == {"type": "tmpfs"}


def test_mount_of_a_bind_must_not_create_its_source() -> None:
    request = parse_mount("type=bind,source=/srv,target=/srv,readonly=false")
    assert request.type == "bind" and not request.create_source and not request.readonly


def test_mount_tmpfs_size_and_mode_become_tmpfs_data() -> None:
    request = parse_mount("type=tmpfs,target=/scratch,tmpfs-size=1m,tmpfs-mode=1770")
    assert request.tmpfs_data == "size=1048576,mode=1770"
    assert request.tmpfs_flags & sc.MS_NOEXEC


@pytest.mark.parametrize(
    "raw, message",
    [
        ("type=foo,target=/x", 'invalid mount config for type "foo": mount type unknown'),
        ("target=/x,bogus=1", "unexpected key 'bogus' in 'bogus=1'"),
        ("source=x1", "target is required"),
        ("type=bind,target=/x", "field Source must not be empty"),
        ("type=bind,source=rel,target=/x", "invalid mount path: 'rel' mount path must be absolute"),
        ("type=tmpfs,source=x,target=/x", "field Source must not be specified"),
        ("type=tmpfs,target=/x,volume-nocopy", "cannot mix 'volume-*' options with mount type"),
        ("type=volume,target=/x,tmpfs-size=1m", "cannot mix 'tmpfs-*' options with mount type"),
        ("target=/x,ro=maybe", "invalid value for ro: maybe"),
        ("target=/x,justaword", "invalid field 'justaword' must be a key=value pair"),
        ("target=/x,readonly", "must not set ReadOnly mode when using anonymous volumes"),
        ("type=tmpfs,target=/x,tmpfs-size=lots", "invalid value for tmpfs-size: lots"),
    ],
)
def test_bad_mounts_are_refused_in_the_docker_clis_words(raw: str, message: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_mount(raw)
    assert str(caught.value).startswith(f'invalid argument "{raw}" for "--mount" flag: ')
    assert message in str(caught.value)


def test_tmpfs_defaults_to_nosuid_nodev_noexec_and_options_override_them() -> None:
    flags, data = tmpfs_options("")
    assert flags == sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC and data == ""
    flags, data = tmpfs_options("exec,ro,size=64m,mode=1777")
    assert not flags & sc.MS_NOEXEC and flags & sc.MS_RDONLY
    assert data == "size=64m,mode=1777"


def test_tmpfs_flag_needs_an_absolute_path_and_known_options() -> None:
    assert parse_tmpfs("/run:size=1m").target == "/run"
    with pytest.raises(InvalidSpec, match="mount path must be absolute"):
        parse_tmpfs("run")
    with pytest.raises(InvalidSpec, match="invalid tmpfs option 'bogus'"):
        parse_tmpfs("/run:bogus")


def test_volumes_from_takes_an_optional_ro_or_rw() -> None:
    assert parse_volumes_from("data").mode == ""
    assert parse_volumes_from("data:ro").mode == "ro"
    with pytest.raises(InvalidSpec, match="invalid mode: rx"):
        parse_volumes_from("data:rx")
    with pytest.raises(InvalidSpec, match="malformed volumes-from"):
        parse_volumes_from(":ro")


def test_host_config_mounts_show_the_mount_options_in_the_apis_shape() -> None:
    from runtime.volumes import host_config_mounts

    assert host_config_mounts(()) is None
    assert host_config_mounts(
        ("type=tmpfs,target=/t,tmpfs-size=1m", "source=v9,target=/v,ro,volume-nocopy")
    ) == [
        {"Type": "tmpfs", "Source": "", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1048576}},
        {
            "Type": "volume",
            "Source": "v9",
            "Target": "/v",
            "ReadOnly": True,
            "VolumeOptions": {
                "NoCopy": True,
                "Labels": {},
                "DriverConfig": {"Name": "local", "Options": {}},
            },
        },
    ]

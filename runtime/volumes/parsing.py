"""Docker's storage options, parsed: ``-v``, ``--mount``, ``--tmpfs``, ``--volumes-from``.

Pure functions from the strings a user typed to ``MountRequest``/``VolumesFrom`` values,
raising ``InvalidSpec`` with the daemon's (or the docker CLI's) wording. No disk, no
kernel: whether a named container or a bind source exists is decided by ``planning``.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from runtime import syscalls as sc
from runtime import units
from runtime.errors import InvalidSpec

VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_ACCESS = {"ro", "rw"}
_LABEL = {"z", "Z"}
_PROPAGATION = {"shared", "rshared", "slave", "rslave", "private", "rprivate"}
_COPY = {"nocopy"}
# --tmpfs options: mount(2) flags (set, clear) and the data keys tmpfs understands.
_TMPFS_FLAGS = {
    "ro": (sc.MS_RDONLY, 0),
    "rw": (0, sc.MS_RDONLY),
    "nosuid": (sc.MS_NOSUID, 0),
    "suid": (0, sc.MS_NOSUID),
    "nodev": (sc.MS_NODEV, 0),
    "dev": (0, sc.MS_NODEV),
    "noexec": (sc.MS_NOEXEC, 0),
    "exec": (0, sc.MS_NOEXEC),
    "noatime": (sc.MS_NOATIME, 0),
    "atime": (0, sc.MS_NOATIME),
    "strictatime": (sc.MS_STRICTATIME, 0),
}
_TMPFS_DATA = {"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"}
TMPFS_DEFAULT_FLAGS = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC


@dataclass(frozen=True)
class MountRequest:
    """One mount a user asked for. ``source`` is a volume name, a host path or ''."""

    type: str  # volume | bind | tmpfs
    target: str
    source: str = ""
    readonly: bool = False
    mode: str = ""  # the -v mode as typed, shown in inspect
    nocopy: bool = False
    create_source: bool = False  # -v creates a missing host dir; --mount refuses
    tmpfs_flags: int = TMPFS_DEFAULT_FLAGS
    tmpfs_data: str = ""
    volume_labels: dict[str, str] = field(default_factory=dict)
    volume_options: dict[str, str] = field(default_factory=dict)
    origin: str = "-v"  # -v | --mount | --tmpfs, for HostConfig

    @property
    def anonymous(self) -> bool:
        return self.type == "volume" and not self.source


@dataclass(frozen=True)
class VolumesFrom:
    container: str
    mode: str = ""  # '', 'ro' or 'rw'


def _check_target(target: str) -> None:
    if not target:
        raise InvalidSpec("field Target must not be empty")
    if not target.startswith("/"):
        raise InvalidSpec(f"invalid mount path: '{target}' mount path must be absolute")
    if posixpath.normpath(target) == "/":
        raise InvalidSpec("invalid specification: destination can't be '/'")


def check_volume_name(name: str) -> str:
    if not VOLUME_NAME.match(name):
        raise InvalidSpec(
            f'"{name}" includes invalid characters for a local volume name, '
            'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to '
            "pass a host directory, use absolute path"
        )
    return name


def _valid_mode(mode: str) -> bool:
    if not mode:
        return True
    seen: dict[int, int] = {}  # group index → how many of its words the mode holds
    for word in mode.split(","):
        for index, group in enumerate((_ACCESS, _LABEL, _PROPAGATION, _COPY)):
            if word in group:
                seen[index] = seen.get(index, 0) + 1
                break
        else:
            return False
    return all(count == 1 for count in seen.values())


def parse_volume(raw: str) -> MountRequest:
    """``-v [SOURCE:]TARGET[:MODE]``: a named volume, a host path, or an anonymous one."""
    parts = raw.split(":", 3)
    if not parts[0]:
        raise InvalidSpec(f"invalid volume specification: '{raw}'")
    source, mode = "", ""
    if len(parts) == 1:
        target = parts[0]
    elif len(parts) == 2:
        if _valid_mode(parts[1]):  # 'TARGET:MODE' names no source: not a volume
            raise InvalidSpec(f"invalid volume specification: '{raw}'")
        source, target = parts
    elif len(parts) == 3:
        source, target, mode = parts
    else:
        raise InvalidSpec(f"invalid volume specification: '{raw}'")
    if not _valid_mode(mode):
        raise InvalidSpec(f"invalid mode: {mode}")
    kind = "bind" if source.startswith("/") else "volume"
    words = set(mode.split(",")) if mode else set()
    try:
        _check_target(target)
        if kind == "volume" and source:
            check_volume_name(source)
        if not source and "ro" in words:
            raise InvalidSpec("must not set ReadOnly mode when using anonymous volumes")
        if kind == "bind" and "nocopy" in words:
            raise InvalidSpec("field VolumeOptions must not be specified")
    except InvalidSpec as e:
        raise InvalidSpec(
            f"invalid volume specification: '{raw}': invalid mount config for type \"{kind}\": {e}"
        ) from None
    return MountRequest(
        type=kind,
        target=posixpath.normpath(target),
        source=posixpath.normpath(source) if kind == "bind" else source,
        readonly="ro" in words,
        mode=mode,
        nocopy="nocopy" in words,
        create_source=True,
        origin="-v",
    )


def _bool(key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise InvalidSpec(f"invalid value for {key}: {value}")


def _key_value(into: dict[str, str], value: str) -> None:
    key, _, val = value.partition("=")
    into[key] = val


def parse_mount(raw: str) -> MountRequest:
    """``--mount type=volume|bind|tmpfs,source=,target=,readonly,...`` (docker CLI rules)."""
    try:
        return _parse_mount(raw)
    except InvalidSpec as e:
        raise InvalidSpec(f'invalid argument "{raw}" for "--mount" flag: {e}') from None


def _parse_mount(raw: str) -> MountRequest:
    kind, source, target = "volume", "", ""
    readonly = nocopy = False
    labels: dict[str, str] = {}
    options: dict[str, str] = {}
    used: set[str] = set()  # which option families appear: volume, bind, tmpfs
    size, tmpfs_mode = "", ""
    for item in raw.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep:
            if key in ("readonly", "ro"):
                readonly = True
            elif key == "volume-nocopy":
                nocopy = True
                used.add("volume")
            else:
                raise InvalidSpec(f"invalid field '{item}' must be a key=value pair")
            continue
        if key == "type":
            kind = value.lower()
        elif key in ("source", "src"):
            source = value
        elif key in ("target", "dst", "destination"):
            target = value
        elif key in ("readonly", "ro"):
            readonly = _bool(key, value)
        elif key == "volume-nocopy":
            nocopy = _bool(key, value)
            used.add("volume")
        elif key == "volume-label":
            _key_value(labels, value)
            used.add("volume")
        elif key == "volume-opt":
            _key_value(options, value)
            used.add("volume")
        elif key == "volume-driver":
            if value != "local":
                raise InvalidSpec(f"volume driver {value} is not available (only 'local')")
            used.add("volume")
        elif key in ("bind-propagation", "bind-nonrecursive", "bind-recursive"):
            used.add("bind")
        elif key == "tmpfs-size":
            try:
                size = str(units.parse_bytes(value))
            except InvalidSpec:
                raise InvalidSpec(f"invalid value for {key}: {value}") from None
            used.add("tmpfs")
        elif key == "tmpfs-mode":
            try:
                tmpfs_mode = format(int(value, 8), "o")
            except ValueError:
                raise InvalidSpec(f"invalid value for {key}: {value}") from None
            used.add("tmpfs")
        elif key == "consistency":
            continue
        else:
            raise InvalidSpec(f"unexpected key '{key}' in '{item}'")
    if not target:
        raise InvalidSpec("target is required")
    for family in sorted(used):
        if family != kind:
            raise InvalidSpec(f"cannot mix '{family}-*' options with mount type '{kind}'")
    if kind not in ("volume", "bind", "tmpfs"):
        raise InvalidSpec(f'invalid mount config for type "{kind}": mount type unknown')
    try:
        _check_target(target)
        if kind == "bind":
            if not source:
                raise InvalidSpec("field Source must not be empty")
            if not source.startswith("/"):
                raise InvalidSpec(f"invalid mount path: '{source}' mount path must be absolute")
        elif kind == "volume":
            if source:
                check_volume_name(source)
            elif readonly:
                raise InvalidSpec("must not set ReadOnly mode when using anonymous volumes")
        elif source:
            raise InvalidSpec("field Source must not be specified")
    except InvalidSpec as e:
        raise InvalidSpec(f'invalid mount config for type "{kind}": {e}') from None
    data = ",".join(
        x for x in (f"size={size}" if size else "", f"mode={tmpfs_mode}" if tmpfs_mode else "") if x
    )
    flags = TMPFS_DEFAULT_FLAGS | (sc.MS_RDONLY if readonly and kind == "tmpfs" else 0)
    return MountRequest(
        type=kind,
        target=posixpath.normpath(target),
        source=posixpath.normpath(source) if kind == "bind" else source,
        readonly=readonly,
        nocopy=nocopy,
        tmpfs_flags=flags,
        tmpfs_data=data,
        volume_labels=labels,
        volume_options=options,
        origin="--mount",
    )


def parse_tmpfs(raw: str) -> MountRequest:
    """``--tmpfs PATH[:OPTIONS]``; options are mount(8)-style words and tmpfs data keys."""
    target, _, opts = raw.partition(":")
    try:
        _check_target(target)
    except InvalidSpec as e:
        raise InvalidSpec(f"invalid tmpfs specification '{raw}': {e}") from None
    flags, data = tmpfs_options(opts)
    return MountRequest(
        type="tmpfs",
        target=posixpath.normpath(target),
        readonly=bool(flags & sc.MS_RDONLY),
        mode=opts,
        tmpfs_flags=flags,
        tmpfs_data=data,
        origin="--tmpfs",
    )


def tmpfs_options(opts: str) -> tuple[int, str]:
    """mount(2) flags and the data string for tmpfs options such as 'rw,exec,size=64m'."""
    flags = TMPFS_DEFAULT_FLAGS
    data: list[str] = []
    for word in (w.strip() for w in opts.split(",") if w.strip()):
        key, sep, value = word.partition("=")
        if not sep and key in _TMPFS_FLAGS:
            set_bits, clear_bits = _TMPFS_FLAGS[key]
            flags = (flags | set_bits) & ~clear_bits
        elif sep and key in _TMPFS_DATA and value:
            data.append(word)
        else:
            raise InvalidSpec(f"invalid tmpfs option {word!r}")
    return flags, ",".join(data)


def parse_volumes_from(raw: str) -> VolumesFrom:
    """``--volumes-from CONTAINER[:ro|rw]``."""
    name, _, mode = raw.partition(":")
    if not name:
        raise InvalidSpec(f"malformed volumes-from specification: {raw}")
    if mode and mode not in _ACCESS:
        raise InvalidSpec(f"invalid mode: {mode}")
    return VolumesFrom(name, mode)

"""The container's root filesystem, built inside its own mount namespace.

Drives mount(2) for overlayfs, proc, sysfs, tmpfs, devpts and mqueue, mknod(2) for the
standard device nodes, and pivot_root(2). Everything here runs in the container's init
after it has unshared its mount namespace, so every mount dies with the namespace and
nothing is left on the host. Masked and read-only paths follow Docker's defaults;
``privileged`` lifts them. Owns no files besides mount points inside the rootfs.
"""

from __future__ import annotations

import os
import stat
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from runtime import syscalls as sc
from runtime.errors import KernelError

MASKED_PATHS = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)
# name, type, major, minor, mode: runc's default devices.
DEVICES = (
    ("null", "c", 1, 3, 0o666),
    ("zero", "c", 1, 5, 0o666),
    ("full", "c", 1, 7, 0o666),
    ("random", "c", 1, 8, 0o666),
    ("urandom", "c", 1, 9, 0o666),
    ("tty", "c", 5, 0, 0o666),
)
DEV_LINKS = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
    ("core", "/proc/kcore"),
)


@dataclass(frozen=True)
class BindMount:
    source: str
    target: str
    readonly: bool = False
    create_file: bool = False  # the target is a file, not a directory
    copy_up: bool = False  # seed an empty source with the image's content (volumes)


@dataclass(frozen=True)
class TmpfsMount:
    target: str
    flags: int = 0  # mount(2) flags: nosuid, nodev, noexec, ro ...
    data: str = ""  # tmpfs options: size=, mode=, uid= ...


@dataclass(frozen=True)
class RootfsPlan:
    merged: str
    lower_dirs: tuple[str, ...]  # topmost first, as overlayfs wants them
    upper_dir: str
    work_dir: str
    readonly: bool = False
    privileged: bool = False
    shm_size: int = 64 * 1024 * 1024
    shm_source: str | None = None  # a host tmpfs to bind at /dev/shm (shareable IPC)
    extra_devices: tuple[tuple[str, str], ...] = ()  # (host path, container path)
    binds: tuple[BindMount, ...] = field(default_factory=tuple)
    tmpfs: tuple[TmpfsMount, ...] = field(default_factory=tuple)


def _mount(
    source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None
) -> None:
    sc.mount(source, target, fstype, flags, data)


def _mkdir(path: str, mode: int = 0o755) -> None:
    os.makedirs(path, mode=mode, exist_ok=True)


def _touch(path: str) -> None:
    if not os.path.lexists(path):
        _mkdir(os.path.dirname(path))
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def _inside(root: str, path: str) -> str:
    """``path`` resolved inside ``root``, following symlinks as if ``root`` were ``/``.

    An image may hold ``/etc/hosts -> /proc/...`` or ``..`` chains; resolving each
    component ourselves keeps every bind-mount target inside the rootfs.
    """
    parts = deque(p for p in path.split("/") if p)
    current = ""
    hops = 0
    while parts:
        part = parts.popleft()
        if part == ".":
            continue
        if part == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, part)
        full = os.path.join(root, candidate)
        if os.path.islink(full):
            hops += 1
            if hops > 40:
                raise KernelError("resolve mount target", 40, path)  # ELOOP
            target = os.readlink(full)
            if target.startswith("/"):
                current = ""
            parts.extendleft(reversed([p for p in target.split("/") if p]))
            continue
        current = candidate
    return os.path.join(root, current)


def mount_rootfs(plan: RootfsPlan) -> None:
    """Mount everything under ``plan.merged``; the caller then calls ``pivot``."""
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_SLAVE)
    root = plan.merged
    lower = ":".join(plan.lower_dirs)
    _mount(
        "overlay",
        root,
        "overlay",
        0,
        f"lowerdir={lower},upperdir={plan.upper_dir},workdir={plan.work_dir}",
    )
    # Parents before children (a volume at /data, then one at /data/sub), as Docker sorts;
    # mounts under /dev, /proc or /sys wait until those filesystems are in place.
    mounts: list[BindMount | TmpfsMount] = sorted(
        [*plan.binds, *plan.tmpfs], key=lambda m: len(_parts(m.target))
    )
    late = [m for m in mounts if _parts(m.target)[:1] in (["dev"], ["proc"], ["sys"])]
    _mount_user(root, [m for m in mounts if m not in late])
    nosuid_nodev_noexec = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
    _mkdir(f"{root}/proc")
    _mount("proc", f"{root}/proc", "proc", nosuid_nodev_noexec)
    _mkdir(f"{root}/sys")
    _mount(
        "sysfs",
        f"{root}/sys",
        "sysfs",
        nosuid_nodev_noexec | (0 if plan.privileged else sc.MS_RDONLY),
    )
    _mount_dev(plan)
    _mount_user(root, late)


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


def _mount_user(root: str, mounts: list[BindMount | TmpfsMount]) -> None:
    """Bind mounts and tmpfs mounts, each target resolved inside ``root``.

    A read-only mount turns read-only only once the mount points of the mounts nested
    under it exist (``-v vol:/data:ro -v other:/data/sub`` needs ``/data/sub`` made in
    ``vol`` first), and then with every submount it brought along (``volumes.remount``).
    """
    for index, bind in enumerate(mounts):
        target = _make_target(root, bind)
        if isinstance(bind, TmpfsMount):
            _mount("tmpfs", target, "tmpfs", bind.flags & ~sc.MS_RDONLY, bind.data or None)
            readonly = bool(bind.flags & sc.MS_RDONLY)
        else:
            _mount(bind.source, target, None, sc.MS_BIND | sc.MS_REC)
            readonly = bind.readonly
        if readonly:
            from runtime.volumes import remount

            below = bind.target.rstrip("/") + "/"
            for inner in mounts[index + 1 :]:
                if inner.target.startswith(below):
                    _make_target(root, inner)
            remount.read_only(target)


def _make_target(root: str, mount: BindMount | TmpfsMount) -> str:
    """The mount point of ``mount`` inside ``root``, created (and a volume seeded)."""
    target = _inside(root, mount.target)
    if isinstance(mount, TmpfsMount):
        _mkdir(target)
    elif mount.create_file or not os.path.isdir(mount.source):
        _touch(target)
    else:
        if mount.copy_up:
            from runtime.volumes import copyup

            copyup.seed(root, target, mount.source)
        _mkdir(target)
    return target


def _mount_dev(plan: RootfsPlan) -> None:
    dev = f"{plan.merged}/dev"
    _mkdir(dev)
    _mount("tmpfs", dev, "tmpfs", sc.MS_NOSUID | sc.MS_STRICTATIME, "mode=755,size=65536k")
    devices = list(DEVICES)
    if plan.privileged:
        devices = _host_devices()
    for name, kind, major, minor, mode in devices:
        path = f"{dev}/{name}"
        _mkdir(os.path.dirname(path))
        node_type = stat.S_IFCHR if kind == "c" else stat.S_IFBLK
        try:
            os.mknod(path, mode | node_type, os.makedev(major, minor))
            os.chmod(path, mode)
        except FileExistsError:
            pass
    for host_path, container_path in plan.extra_devices:
        st = os.stat(host_path)
        path = (
            f"{dev}/{os.path.relpath(container_path, '/dev')}"
            if container_path.startswith("/dev/")
            else f"{plan.merged}{container_path}"
        )
        _mkdir(os.path.dirname(path))
        os.mknod(path, stat.S_IMODE(st.st_mode) | stat.S_IFMT(st.st_mode), st.st_rdev)
        os.chmod(path, stat.S_IMODE(st.st_mode))  # mknod(2) applies the umask
    for name, target in DEV_LINKS:
        if not os.path.lexists(f"{dev}/{name}"):
            os.symlink(target, f"{dev}/{name}")
    _mkdir(f"{dev}/pts")
    _mount(
        "devpts",
        f"{dev}/pts",
        "devpts",
        sc.MS_NOSUID | sc.MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620,gid=5",
    )
    _mkdir(f"{dev}/shm")
    if plan.shm_source:
        _mount(plan.shm_source, f"{dev}/shm", None, sc.MS_BIND)
    else:
        _mount(
            "shm",
            f"{dev}/shm",
            "tmpfs",
            sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC,
            f"mode=1777,size={plan.shm_size}",
        )
    _mkdir(f"{dev}/mqueue")
    try:
        _mount("mqueue", f"{dev}/mqueue", "mqueue", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    except KernelError:
        pass  # mqueue needs a private IPC namespace; with --ipc host it may be refused


def _host_devices() -> list[tuple[str, str, int, int, int]]:
    """Every character and block device of the host, for --privileged."""
    found: list[tuple[str, str, int, int, int]] = []
    for dirpath, dirnames, filenames in os.walk("/dev"):
        dirnames[:] = [d for d in dirnames if d not in ("pts", "shm", "mqueue")]
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
                rel = os.path.relpath(path, "/dev")
                if rel == "ptmx" or rel == "console":
                    continue
                found.append(
                    (
                        rel,
                        kind,
                        os.major(st.st_rdev),
                        os.minor(st.st_rdev),
                        stat.S_IMODE(st.st_mode),
                    )
                )
    return found


def pivot(new_root: str) -> None:
    """pivot_root(2) into ``new_root`` and detach the old root (runc's '.' '.' trick)."""
    os.chdir(new_root)
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")


def harden(plan: RootfsPlan) -> None:
    """Masked and read-only paths, then a read-only root if asked. Runs after pivot."""
    if not plan.privileged:
        for path in MASKED_PATHS:
            if os.path.isdir(path):
                _try_mount("tmpfs", path, "tmpfs", sc.MS_RDONLY)
            elif os.path.exists(path):
                _try_mount("/dev/null", path, None, sc.MS_BIND)
        for path in READONLY_PATHS:
            if os.path.exists(path):
                _try_mount(path, path, None, sc.MS_BIND | sc.MS_REC)
                _try_mount(None, path, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC)
    if plan.readonly:
        sc.mount(None, "/", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)


def _try_mount(source: str | None, target: str, fstype: str | None, flags: int) -> None:
    try:
        sc.mount(source, target, fstype, flags)
    except KernelError as e:
        # A path that vanished between the check and the mount is fine to skip; any
        # other failure would leave a hole in the hardening, so it stops the start.
        if e.errno != 2:
            raise


def mount_shared_shm(path: Path, size: int) -> None:
    """A host-side tmpfs for a ``--ipc shareable`` container's /dev/shm, so that
    ``--ipc container:NAME`` containers can bind the same one; idempotent."""
    os.makedirs(path, exist_ok=True)
    if not os.path.ismount(path):
        sc.mount(
            "shm",
            str(path),
            "tmpfs",
            sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC,
            f"mode=1777,size={size}",
        )


def unmount_shared_shm(path: Path) -> None:
    if os.path.ismount(path):
        sc.umount2(str(path), sc.MNT_DETACH)


def ensure_mountpoints(init_dir: Path) -> None:
    """Files the container's /etc needs as bind targets, in its init layer."""
    for name in ("etc/hostname", "etc/hosts", "etc/resolv.conf"):
        _touch(str(init_dir / name))
    for name in ("proc", "sys", "dev", "dev/pts", "dev/shm"):
        _mkdir(str(init_dir / name))

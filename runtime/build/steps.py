"""The build steps that change the filesystem: RUN in a real container, COPY and ADD.

Kernel interfaces: a RUN step is a whole container (``runtime.containers`` create,
start, wait, remove: namespaces, cgroups and overlayfs as for ``run``); COPY and ADD
mount a read-only overlayfs view of the image they build on (mount(2)/umount2(2) under
``paths.tmp()``) to resolve the destination and ``--chown`` names, and stage the copied
files in a directory shaped like an overlay upper dir. Both end in
``runtime.images.layers.commit_layer``.

Owns only temporary things: the RUN container (always removed, even on failure or
Ctrl-C), the staging directory and the view mount (both removed before returning). It
never writes into a stored layer and never follows a symlink out of the context or the
image root.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runtime import archive, paths
from runtime import syscalls as sc
from runtime.build.context import Context
from runtime.errors import ExecFailed, InvalidSpec, KernelError, MoorageError, NotFound
from runtime.images import Image, layers, store

if TYPE_CHECKING:
    from runtime import attach

Output = Callable[[str], None]


class StepFailed(MoorageError):
    """A RUN step's command exited non-zero; ``code`` is its exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# --- RUN -----------------------------------------------------------------------------


def run(
    image: Image, argv: list[str], env: list[str], network_mode: str, out: Output
) -> store.Layer:
    """Run ``argv`` in a container of ``image``; return its changes as a layer.

    ``env`` are the build args in effect (the image's own Env comes with the image).
    Paths under the image's VOLUMEs are dropped from the layer, as Docker's builder
    mounts anonymous volumes there.
    """
    # The container machinery is imported only when a step really runs: a fully cached
    # build never needs it, and importing it is a good part of that build's time.
    from runtime import containers
    from runtime.spec import ContainerSpec

    spec = ContainerSpec(
        image=image.id, cmd=tuple(argv), entrypoint=(), env=tuple(env), network_mode=network_mode
    )
    cid = containers.create(spec)
    try:
        out(f" ---> Running in {cid[:12]}\n")
        try:
            code = _start_and_relay(cid, out)
        except ExecFailed as e:  # a build fails with exit 1 however its command failed
            raise StepFailed(
                f"The command '{' '.join(argv)}' could not be run: {e}", e.exit_code
            ) from e
        if code != 0:
            raise StepFailed(
                f"The command '{' '.join(argv)}' returned a non-zero code: {code}", code
            )
        upper = paths.container(cid) / "upper"
        volumes = (image.config.get("config") or {}).get("Volumes") or {}
        for volume in volumes:
            target = upper / posixpath.normpath(volume).lstrip("/")
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
        chain = image.chain_ids()
        return layers.commit_layer(upper, chain[-1] if chain else None)
    finally:
        out(f"Removing intermediate container {cid[:12]}\n")
        containers.remove(cid, force=True)


def _start_and_relay(cid: str, out: Output) -> int:
    from runtime import attach, containers

    holder: dict[str, attach.Client] = {}

    def connect(started: str) -> None:
        holder["client"] = attach.Client(
            started, {"op": "attach", "stdin": False, "stdout": True, "stderr": True}
        )

    containers.start(cid, before_go=connect)
    client = holder["client"]
    code: int | None = None
    with client:
        while code is None:
            item = client.recv()
            if item is None:
                break
            kind, payload = item
            if kind in (attach.STDOUT, attach.STDERR):
                out(payload.decode(errors="replace"))
            elif kind == attach.CONTROL:
                message = json.loads(payload)
                if "exit" in message:
                    code = int(message["exit"])
    return containers.wait(cid) if code is None else code


# --- views of images -----------------------------------------------------------------


@contextlib.contextmanager
def image_view(image: Image | None) -> Iterator[Path]:
    """A read-only directory showing ``image``'s merged filesystem."""
    dirs = image.layer_dirs() if image is not None else []
    if len(dirs) == 1:
        yield dirs[0]  # one layer is already the whole tree; never written to
        return
    try:
        target = Path(tempfile.mkdtemp(prefix="build-view-", dir=paths.tmp()))
    except OSError as e:
        raise KernelError.from_oserror("create an image view", e) from e
    mounted = False
    try:
        if dirs:
            lower = ":".join(str(d) for d in reversed(dirs))
            sc.mount("overlay", str(target), "overlay", sc.MS_RDONLY, f"lowerdir={lower}")
            mounted = True
        yield target
    finally:
        if mounted:
            sc.umount2(str(target), sc.MNT_DETACH)
        with contextlib.suppress(OSError):
            target.rmdir()


def resolve_in(root: Path, path: str) -> str:
    """``path`` with symlinks in its directories resolved as if ``root`` were '/'."""
    parts = [p for p in path.split("/") if p]
    current = ""
    hops = 0
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            current = posixpath.dirname(current)
            continue
        candidate = posixpath.join(current, part)
        full = root / candidate
        if parts and full.is_symlink():  # the last element is replaced, not followed
            hops += 1
            if hops > 40:
                raise InvalidSpec(f"too many levels of symbolic links in {path}")
            target = os.readlink(full)
            if target.startswith("/"):
                current = ""
            parts = [p for p in target.split("/") if p] + parts
            continue
        current = candidate
    return current


# --- COPY and ADD --------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int


def resolve_owner(view: Path, text: str) -> Owner:
    """``--chown=user[:group]`` against the image's /etc/passwd and /etc/group."""
    user, _, group = text.partition(":")

    def read(db: str) -> list[str]:
        # Resolved inside the image: its /etc/passwd may be a link to anywhere.
        path = view / resolve_in(view, f"/etc/{db}")
        if path.is_symlink():
            return []
        try:
            return path.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def lookup(db: str, name: str, field: int) -> int:
        if name.isdigit():
            return int(name)
        lines = read(db)
        for line in lines:
            row = line.split(":")
            if len(row) > field and row[0] == name:
                return int(row[field])
        raise InvalidSpec(
            f"unable to convert uid/gid chown string to host mapping: "
            f"can't find uid for user {name}: no such user: {name}"
            if db == "passwd"
            else f"unable to find group {name}: no matching entries in group file"
        )

    uid = lookup("passwd", user, 2)
    if group:
        return Owner(uid, lookup("group", group, 2))
    if user.isdigit():
        return Owner(uid, uid)
    for line in read("passwd"):
        row = line.split(":")
        if len(row) > 3 and row[0] == user:
            return Owner(uid, int(row[3]))
    return Owner(uid, uid)


class Stager:
    """Builds an upper-dir-shaped tree of what one COPY/ADD adds to ``view``'s image."""

    def __init__(self, view: Path, owner: Owner | None, mode: int | None) -> None:
        self.view, self.owner, self.mode = view, owner, mode
        try:
            self.root = Path(tempfile.mkdtemp(prefix="build-copy-", dir=paths.tmp()))
        except OSError as e:
            raise KernelError.from_oserror("create a staging directory", e) from e

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def is_dir_in_image(self, path: str) -> bool:
        rel = resolve_in(self.view, path + "/.")  # '/.' follows a link to a directory
        full = self.view / rel
        return full.is_dir() and not full.is_symlink()

    def ensure_dir(self, path: str) -> Path:
        """The staging directory for image path ``path``, parents copied from the image."""
        rel = resolve_in(self.view, path + "/.")
        current = self.root
        sofar = ""
        for part in [p for p in rel.split("/") if p]:
            sofar = posixpath.join(sofar, part)
            current = current / part
            self._no_link(current)
            if current.is_dir():
                continue
            below = self.view / sofar
            current.mkdir()
            if below.is_dir() and not below.is_symlink():
                st = below.stat()
                os.chmod(current, stat.S_IMODE(st.st_mode))
                os.chown(current, st.st_uid, st.st_gid)
                os.utime(current, ns=(st.st_atime_ns, st.st_mtime_ns))
            else:
                os.chmod(current, 0o755)
                owner = self.owner or Owner(0, 0)
                os.chown(current, owner.uid, owner.gid)
        return current

    def target(self, path: str) -> Path:
        """Where the file for image path ``path`` goes (its parent dir is made)."""
        parent = self.ensure_dir(posixpath.dirname(path))
        return parent / posixpath.basename(path)

    def copy_tree(self, source_root: Path, rel: str, items: list[str], dest: Path) -> None:
        """Copy context path ``rel`` to ``dest``: a file, or a directory's ``items``."""
        src = source_root / rel if rel else source_root
        self._no_link(dest)
        if src.is_dir() and not src.is_symlink():
            if not dest.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                self._own(dest, src)
            for item in items:
                sub = item[len(rel) + 1 :] if rel else item
                self._copy_one(source_root / item, dest / sub)
        else:
            self._copy_one(src, dest)

    def _no_link(self, path: Path) -> None:
        """Refuse to write through a symlink an earlier source put in the staging tree.

        Without this, ``COPY a b /x/`` with ``a/s -> /etc`` and ``b/s/passwd`` would
        write the host's /etc/passwd.
        """
        current = self.root
        for part in path.relative_to(self.root).parts:
            current = current / part
            if current.is_symlink():
                raise InvalidSpec(
                    f"cannot copy to /{path.relative_to(self.root)}: "
                    f"/{current.relative_to(self.root)} is a symbolic link"
                )

    def _copy_one(self, src: Path, dest: Path) -> None:
        self._no_link(dest.parent)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if os.path.islink(dest) or (os.path.lexists(dest) and not dest.is_dir()):
            dest.unlink()
        st = os.lstat(src)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), dest)
        elif stat.S_ISDIR(st.st_mode):
            dest.mkdir(exist_ok=True)
            shutil.copystat(src, dest, follow_symlinks=False)
        elif stat.S_ISREG(st.st_mode):
            shutil.copy2(src, dest, follow_symlinks=False)
        else:
            return  # sockets, fifos and devices are not copied from a context
        self._own(dest, src)

    def _own(self, path: Path, src: Path) -> None:
        owner = self.owner or Owner(0, 0)
        os.lchown(path, owner.uid, owner.gid)
        if self.mode is not None and not path.is_symlink():
            os.chmod(path, self.mode)

    def add_archive(self, src: Path, dest_dir: Path) -> None:
        """ADD of a local tar: unpacked (hostile-archive rules) into ``dest_dir``."""
        with open(src, "rb") as f:
            archive.extract(f, dest_dir, whiteouts="keep")

    def commit(self, image: Image | None) -> store.Layer:
        chain = image.chain_ids() if image is not None else []
        return layers.commit_layer(self.root, chain[-1] if chain else None)


def looks_like_archive(path: Path) -> bool:
    """What ADD auto-extracts: a regular file that is a tar, maybe compressed."""
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as f:
        head = f.read(512)
    return (
        head[:2] == b"\x1f\x8b"
        or head[:3] == b"BZh"
        or head[:6] == b"\xfd7zXZ\x00"
        or head[257:262] == b"ustar"
    )


def download(url: str, directory: Path) -> Path:
    """ADD of a URL (only when the user allowed it): the file, named from the URL."""
    import urllib.parse
    import urllib.request  # ~30 ms to import, and only ADD <url> needs it

    name = posixpath.basename(urllib.parse.urlparse(url).path) or "index.html"
    target = directory / name
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(target, "wb") as f:
            shutil.copyfileobj(response, f)
    except OSError as e:
        raise NotFound(f"failed to download {url}: {e}") from e
    os.chmod(target, 0o600)  # Docker gives downloaded files mode 600
    return target


def context_for(root: Path) -> Context:
    """A view or download directory as a Context (no .dockerignore applies)."""
    context = Context(root)
    context.patterns = []
    return context

"""pull, push, login, logout and search against a real registry on 127.0.0.1.

Debian's ``docker-registry`` (distribution 2.8) is started by the fixtures on a free
loopback port with a temporary config and storage directory, once without auth and once
with htpasswd (bcrypt) auth, and stopped by pid at the end of the module. Bad input the
real registry cannot produce (a blob that does not match its digest, a manifest list
without this machine's platform, bearer-token auth) comes from a small HTTP server the
test runs in a thread on 127.0.0.1. skopeo checks interop in both directions. Each test
gets a private MOORAGE_ROOT (so credentials and images start empty) holding busybox.
Only loopback traffic.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime import images, paths
from runtime.errors import NotFound
from runtime.images import bootstrap, references, store
from tests.kernel.archive_corpus import leftovers

pytestmark = pytest.mark.kernel
CLI = [sys.executable, "-m", "runtime.cli"]


def moorage(
    *args: str, input: str | None = None, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        CLI + list(args),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    if check:
        assert done.returncode == 0, f"moorage {' '.join(args)}: {done.stdout}{done.stderr}"
    return done


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the real registry ------------------------------------------------------------------


@dataclass
class RealRegistry:
    host: str  # '127.0.0.1:PORT'
    process: subprocess.Popen[bytes]
    workdir: Path


def _start_registry(htpasswd: str | None) -> RealRegistry:
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("docker-registry is not installed (scripts/setup-host installs it)")
    workdir = Path(tempfile.mkdtemp(prefix="registry-"))
    port = free_port()
    auth = ""
    if htpasswd is not None:
        (workdir / "htpasswd").write_text(htpasswd)
        auth = f"auth:\n  htpasswd:\n    realm: test\n    path: {workdir / 'htpasswd'}\n"
    (workdir / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {workdir / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n{auth}"
    )
    with open(workdir / "log", "wb") as log:
        process = subprocess.Popen(
            [binary, "serve", str(workdir / "config.yml")],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return RealRegistry(f"127.0.0.1:{port}", process, workdir)
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.05)
    _stop_registry(RealRegistry("", process, workdir))
    pytest.skip(f"docker-registry did not start: {(workdir / 'log').read_text()[-300:]}")


def _stop_registry(reg: RealRegistry) -> None:
    reg.process.terminate()
    try:
        reg.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        reg.process.kill()
        reg.process.wait()
    shutil.rmtree(reg.workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def registry() -> Iterator[str]:
    reg = _start_registry(None)
    yield reg.host
    _stop_registry(reg)


@pytest.fixture(scope="module")
def auth_registry() -> Iterator[str]:
    tool = shutil.which("htpasswd")
    if tool is None:
        pytest.skip("htpasswd is not installed (apache2-utils)")
    line = subprocess.run(
        [tool, "-Bbn", "alice", "s3cret"], capture_output=True, text=True, check=True
    ).stdout
    reg = _start_registry(line)
    yield reg.host
    _stop_registry(reg)


@pytest.fixture
def root(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="registry-", dir=os.environ["MOORAGE_ROOT"]))
    monkeypatch.setenv("MOORAGE_ROOT", str(base / "root"))
    try:
        bootstrap.find()
    except NotFound as e:
        pytest.skip(str(e))
    images.ensure_busybox()
    yield base / "root"
    containers = base / "root" / "containers"
    deadline = time.monotonic() + 20  # `run --rm` returns before the monitor is gone
    while (
        time.monotonic() < deadline
        and containers.is_dir()
        and any(not p.name.startswith(".") for p in containers.iterdir())
    ):
        time.sleep(0.1)
    shutil.rmtree(base)


def drop(image_id: str) -> None:
    """What rmi -f does: every tag and digest of the image, its config, its free layers."""
    for name, target in references.tags().items():
        if target == image_id:
            references.remove_tag(references.parse(name))
    chains = images.resolve(image_id).chain_ids()
    store.remove_config(image_id)
    for chain in reversed(chains):
        if not store.images_using_layer(chain):
            store.remove_layer(chain)


def forget_everything() -> None:
    for image_id in store.image_ids():
        drop(image_id)


def second_image(tag: str) -> images.Image:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("greeting")
        body = f"hello from {tag}\n".encode()
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    data.seek(0)
    return images.import_tar(data, tag)


# --- round trips through the real registry ---------------------------------------------


def test_an_image_pushed_removed_and_pulled_back_runs(root: Path, registry: str) -> None:
    """Issue 7 'done when': push localhost registry, rmi, pull restores it, and it runs."""
    name = f"{registry}/team/app:v1"
    moorage("tag", "busybox", name)
    before = images.resolve(name).id
    pushed = moorage("push", name).stdout
    assert f"The push refers to repository [{registry}/team/app]" in pushed
    assert ": Pushed" in pushed
    digest_line = [line for line in pushed.splitlines() if line.startswith("v1: digest: ")]
    assert digest_line and " size: " in digest_line[0]
    forget_everything()
    assert store.image_ids() == []
    pulled = moorage("pull", name).stdout.splitlines()
    assert pulled[0] == "v1: Pulling from team/app"
    assert any(line.endswith(": Pull complete") for line in pulled)
    assert pulled[-3].startswith("Digest: sha256:")
    assert pulled[-3] == "Digest: " + digest_line[0].split()[2]
    assert pulled[-2] == f"Status: Downloaded newer image for {name}"
    assert pulled[-1] == name
    assert images.resolve(name).id == before
    assert moorage("run", "--rm", name, "echo", "round trip").stdout == "round trip\n"
    inspect = json.loads(moorage("image", "inspect", name).stdout)[0]
    assert f"{registry}/team/app@{pulled[-3].split()[1]}" in inspect.get("RepoDigests", [])


def test_a_second_pull_says_already_exists_and_up_to_date(root: Path, registry: str) -> None:
    name = f"{registry}/team/again:v1"
    moorage("tag", "busybox", name)
    moorage("push", name)
    second = second_image(f"{registry}/team/again:v2")
    moorage("push", second.repo_tags[0])
    # v2 shares no layer with busybox; pull it after dropping it, while busybox stays.
    drop(second.id)
    out = moorage("pull", name).stdout
    assert ": Already exists" in out and f"Status: Image is up to date for {name}" in out
    out = moorage("pull", second.repo_tags[0]).stdout
    assert ": Pull complete" in out and "Already exists" not in out
    out = moorage("pull", second.repo_tags[0]).stdout
    assert "Status: Image is up to date" in out


def layered_image(tag: str, count: int) -> images.Image:
    """busybox plus ``count`` layers, layer i adding /layer<i> with a line of text."""
    base = images.resolve("busybox")
    chain, diff_ids = base.chain_ids()[-1], list(base.diff_ids())
    for i in range(count):
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w") as tar:
            body = f"layer {i} of {tag}\n".encode() * 2000  # some size: progress ticks
            info = tarfile.TarInfo(f"layer{i}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        data.seek(0)
        added = store.add_layer(data, chain, allow_devices=False, allow_setuid=False)
        chain = added.chain_id
        diff_ids.append(added.diff_id)
    doc = dict(base.config, rootfs={"type": "layers", "diff_ids": diff_ids})
    image_id = store.put_config(json.dumps(doc).encode())
    references.set_tag(references.parse(tag), image_id)
    return images.resolve(image_id)


def test_layers_download_in_parallel_and_stack_in_order(root: Path, registry: str) -> None:
    name = f"{registry}/team/layered:v1"
    image = layered_image(name, 5)
    out = moorage("push", name).stdout
    assert out.count(": Pushed") == 6  # busybox's layer and five more
    forget_everything()
    out = moorage("pull", name).stdout
    assert out.count(": Pull complete") == 6 and out.count(": Pulling fs layer") == 6
    assert images.resolve(name).id == image.id
    shown = moorage("run", "--rm", name, "sh", "-c", "head -qn1 /layer0 /layer4").stdout
    assert shown == f"layer 0 of {name}\nlayer 4 of {name}\n"
    assert not list((root / "tmp").glob("pull-*"))  # spool files are gone


def test_pull_all_tags_fetches_every_tag(root: Path, registry: str) -> None:
    repo = f"{registry}/team/many"
    moorage("tag", "busybox", f"{repo}:one")
    second_image(f"{repo}:two")
    moorage("push", "--all-tags", repo)
    forget_everything()
    out = moorage("pull", "-a", repo).stdout.splitlines()
    assert "one: Pulling from team/many" in out and "two: Pulling from team/many" in out
    assert out[-2] == f"Status: Downloaded newer image for {repo}" and out[-1] == repo
    assert set(references.tags_of(images.resolve(f"{repo}:one").id)) == {f"{repo}:one"}
    assert images.resolve(f"{repo}:two").id != images.resolve(f"{repo}:one").id
    tagged = moorage("pull", "-a", f"{repo}:one", check=False)
    assert tagged.returncode != 0 and "tag can't be used with --all-tags" in tagged.stderr


def test_pull_by_digest_gets_exactly_that_image(root: Path, registry: str) -> None:
    repo = f"{registry}/team/pinned"
    moorage("tag", "busybox", f"{repo}:v1")
    digest = moorage("push", f"{repo}:v1").stdout.split("digest: ")[1].split()[0]
    image_id = images.resolve(f"{repo}:v1").id
    forget_everything()
    out = moorage("pull", f"{repo}@{digest}").stdout.splitlines()
    assert out[-1] == f"{repo}@{digest}"
    assert references.tags() == {f"{repo}@{digest}": image_id}
    missing = moorage("pull", f"{repo}@sha256:{'0' * 64}", check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_a_second_push_skips_layers_and_another_repository_mounts_them(
    root: Path, registry: str
) -> None:
    moorage("tag", "busybox", f"{registry}/team/src:v1")
    moorage("tag", "busybox", f"{registry}/team/dst:v1")
    assert ": Pushed" in moorage("push", f"{registry}/team/src:v1").stdout
    assert ": Layer already exists" in moorage("push", f"{registry}/team/src:v1").stdout
    assert ": Mounted from team/src" in moorage("push", f"{registry}/team/dst:v1").stdout


def test_an_image_pushed_by_skopeo_is_pulled_and_run(
    root: Path, registry: str, tmp_path: Path
) -> None:
    """skopeo pushes gzip docker v2 and OCI manifests; both pull and run."""
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    archive = tmp_path / "busybox.tar"
    moorage("save", "-o", str(archive), "busybox")
    diff_ids = images.resolve("busybox").diff_ids()
    for fmt in ("v2s2", "oci"):
        target = f"{registry}/skopeo/busybox:{fmt}"
        subprocess.run(
            [
                "skopeo",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                "--format",
                fmt,
                f"docker-archive:{archive}",
                f"docker://{target}",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        out = moorage("pull", target).stdout
        assert f"Status: Downloaded newer image for {target}" in out
        assert images.resolve(target).diff_ids() == diff_ids  # skopeo may rewrite the config
    assert moorage("run", "--rm", f"{registry}/skopeo/busybox:oci", "echo", "oci").stdout == "oci\n"


def test_skopeo_inspects_an_image_pushed_by_moorage(root: Path, registry: str) -> None:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    name = f"{registry}/team/inspected:v1"
    second_image(name)
    digest = moorage("push", name).stdout.split("digest: ")[1].split()[0]
    done = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{name}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seen = json.loads(done.stdout)
    assert seen["Digest"] == digest
    assert len(seen["Layers"]) == 1
    config = subprocess.run(
        ["skopeo", "inspect", "--config", "--tls-verify=false", f"docker://{name}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert json.loads(config)["rootfs"]["diff_ids"] == images.resolve(name).diff_ids()


def test_search_on_a_registry_without_v1_search_says_so(root: Path, registry: str) -> None:
    done = moorage("search", f"{registry}/team", check=False)
    assert done.returncode == 1
    assert "does not support search" in done.stderr


# --- authentication ---------------------------------------------------------------------


def test_wrong_credentials_are_refused_and_nothing_is_stored(
    root: Path, auth_registry: str
) -> None:
    done = moorage(
        "login", "-u", "alice", "--password-stdin", auth_registry, input="wrong\n", check=False
    )
    assert done.returncode == 1
    assert "unauthorized" in done.stderr.lower()
    assert not (root / "config.json").exists()
    denied = moorage("pull", f"{auth_registry}/team/app:v1", check=False)
    assert denied.returncode == 1 and "basic auth credentials" in denied.stderr


def test_login_push_pull_and_logout_on_an_htpasswd_registry(root: Path, auth_registry: str) -> None:
    out = moorage("login", "-u", "alice", "--password-stdin", auth_registry, input="s3cret\n")
    assert out.stdout.strip() == "Login Succeeded"
    config = root / "config.json"
    assert config.stat().st_mode & 0o777 == 0o600
    assert "s3cret" not in config.read_text()  # base64, as docker stores it; never plain
    name = f"{auth_registry}/team/private:v1"
    moorage("tag", "busybox", name)
    moorage("push", name)
    forget_everything()
    moorage("pull", name)
    assert (
        moorage("logout", auth_registry).stdout.strip()
        == f"Removing login credentials for {auth_registry}"
    )
    assert moorage("logout", auth_registry).stdout.strip() == f"Not logged in to {auth_registry}"
    denied = moorage("push", name, check=False)
    assert denied.returncode == 1 and "credentials" in denied.stderr


# --- a hostile or unusual registry: a small HTTP server of our own ---------------------


def _layer(text: str, mtime: int = 0) -> tuple[bytes, bytes]:
    """(uncompressed tar, gzip of it) for a one-file layer."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size, info.mode = len(text), 0o755
        tar.addfile(info, io.BytesIO(text.encode()))
    raw = data.getvalue()
    return raw, gzip.compress(raw, mtime=mtime)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class FakeRegistry:
    """Serves ``routes`` (path -> (content type, body)); with ``token``, demands it."""

    def __init__(
        self,
        routes: dict[str, tuple[str, bytes]],
        token: str | None = None,
        basic: str | None = None,
    ) -> None:
        self.routes, self.token, self.basic = routes, token, basic
        self.token_requests: list[str] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                port = self.server.server_address[1]
                if self.path.startswith("/token"):
                    owner.token_requests.append(self.path)
                    sent = self.headers.get("Authorization", "")
                    if (
                        owner.basic
                        and sent != "Basic " + base64.b64encode(owner.basic.encode()).decode()
                    ):
                        return self._send(401, "application/json", b'{"details":"no"}')
                    return self._send(
                        200, "application/json", json.dumps({"token": owner.token}).encode()
                    )
                if owner.token and self.headers.get("Authorization") != f"Bearer {owner.token}":
                    challenge = (
                        f'Bearer realm="http://127.0.0.1:{port}/token",'
                        'service="fake",scope="repository:x:pull"'
                    )
                    return self._send(
                        401,
                        "application/json",
                        b'{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}',
                        {"WWW-Authenticate": challenge},
                    )
                if self.path == "/v2/":
                    return self._send(200, "application/json", b"{}")
                if self.path not in owner.routes:
                    return self._send(
                        404,
                        "application/json",
                        b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"x"}]}',
                    )
                kind, body = owner.routes[self.path]
                self._send(200, kind, body)

            def _send(
                self, status: int, kind: str, body: bytes, extra: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeRegistry:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def _image_routes(
    repo: str, blob: bytes | None = None, arch: str = "amd64", as_list: tuple[str, ...] = ()
) -> tuple[dict[str, tuple[str, bytes]], str]:
    """Routes for a one-layer image; ``blob`` replaces the layer bytes actually served."""
    raw, gz = _layer("#!/bin/sh\necho fake\n")
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/hello"]},
            "rootfs": {"type": "layers", "diff_ids": [_sha(raw)]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _sha(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _sha(gz),
                    "size": len(gz),
                }
            ],
        }
    ).encode()
    routes = {
        f"/v2/{repo}/blobs/{_sha(config)}": ("application/octet-stream", config),
        f"/v2/{repo}/blobs/{_sha(gz)}": ("application/octet-stream", blob or gz),
        f"/v2/{repo}/manifests/{_sha(manifest)}": (
            "application/vnd.oci.image.manifest.v1+json",
            manifest,
        ),
    }
    top = manifest
    if as_list:
        entries = [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": _sha(manifest) if a == arch else "sha256:" + "1" * 64,
                "size": len(manifest),
                "platform": {"os": "linux", "architecture": a},
            }
            for a in as_list
        ]
        top = json.dumps(
            {
                "schemaVersion": 2,
                "manifests": entries,
                "mediaType": "application/vnd.oci.image.index.v1+json",
            }
        ).encode()
        routes[f"/v2/{repo}/manifests/{_sha(top)}"] = (
            "application/vnd.oci.image.index.v1+json",
            top,
        )
    routes[f"/v2/{repo}/manifests/latest"] = (
        "application/vnd.oci.image.index.v1+json"
        if as_list
        else "application/vnd.oci.image.manifest.v1+json",
        top,
    )
    return routes, _sha(raw)


def test_a_blob_that_does_not_match_its_digest_is_refused_and_nothing_is_stored(root: Path) -> None:
    """Issue 7 bad input: a registry answering with a wrong digest."""
    raw, _ = _layer("#!/bin/sh\necho fake\n")
    same_content_other_bytes = gzip.compress(raw, mtime=12345)  # same diff id, other digest
    routes, _ = _image_routes("bad/app", blob=same_content_other_bytes)
    before = sorted(leftovers(root))
    with FakeRegistry(routes) as fake:
        done = moorage("pull", f"{fake.host}/bad/app", check=False)
    assert done.returncode == 1
    assert "does not match its digest" in done.stderr
    assert sorted(leftovers(root)) == before


def test_a_manifest_list_without_this_platform_is_refused(root: Path) -> None:
    routes, _ = _image_routes("multi/app", arch="arm64", as_list=("arm64", "s390x"))
    with FakeRegistry(routes) as fake:
        done = moorage("pull", f"{fake.host}/multi/app", check=False)
    assert done.returncode == 1
    assert "no matching manifest for linux/amd64" in done.stderr


def test_bearer_auth_and_an_oci_index_pick_linux_amd64(root: Path) -> None:
    routes, diff_id = _image_routes("multi/app", arch="amd64", as_list=("arm64", "amd64"))
    with FakeRegistry(routes, token="t0k3n") as fake:
        out = moorage("pull", f"{fake.host}/multi/app").stdout
        assert "Status: Downloaded newer image" in out
        assert images.resolve(f"{fake.host}/multi/app").diff_ids() == [diff_id]


def test_login_to_a_bearer_registry_sends_the_credentials_to_its_token_realm(root: Path) -> None:
    routes, _ = _image_routes("private/app")
    with FakeRegistry(routes, token="t0k3n", basic="bob:hunter2") as fake:
        wrong = moorage(
            "login", "-u", "bob", "--password-stdin", fake.host, input="nope\n", check=False
        )
        assert wrong.returncode == 1
        assert "unauthorized: incorrect username or password" in wrong.stderr
        assert not (root / "config.json").exists()
        denied = moorage("pull", f"{fake.host}/private/app", check=False)
        assert denied.returncode == 1 and "unauthorized" in denied.stderr
        done = moorage("login", "-u", "bob", "-p", "hunter2", fake.host)
        assert done.stdout.strip() == "Login Succeeded"
        assert "--password-stdin" in done.stderr  # docker's warning about -p
        moorage("pull", f"{fake.host}/private/app")
        assert any("scope=repository%3Aprivate%2Fapp%3Apull" in r for r in fake.token_requests)


# --- unreachable registries -------------------------------------------------------------


def test_a_closed_port_fails_fast_with_a_clear_error(root: Path) -> None:
    port = free_port()  # bound then released: nothing listens there
    started = time.monotonic()
    done = moorage("pull", f"127.0.0.1:{port}/team/app", check=False)
    assert time.monotonic() - started < 10
    assert done.returncode == 1
    assert "Connection refused" in done.stderr and f"127.0.0.1:{port}/v2/" in done.stderr


def test_a_registry_that_never_answers_times_out(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOORAGE_REGISTRY_TIMEOUT", "1")
    with socket.socket() as silent:  # accepts connections (the backlog) and never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        done = moorage("pull", f"127.0.0.1:{silent.getsockname()[1]}/team/app", check=False)
    assert time.monotonic() - started < 15
    assert done.returncode == 1 and "no answer within 1 s" in done.stderr


# --- run and create pull what is missing (--pull) ----------------------------------------


def test_run_pulls_a_missing_image_as_docker_does_then_runs_it(root: Path, registry: str) -> None:
    """Issue 7: ``run`` of an image not stored says so on stderr, pulls it, then runs it."""
    name = f"{registry}/team/runme:v1"
    moorage("tag", "busybox", name)
    moorage("push", name)
    forget_everything()
    done = moorage("run", "--rm", name, "echo", "pulled and ran")
    assert done.stdout == "pulled and ran\n"  # pull progress stays off stdout
    err = done.stderr.splitlines()
    assert err[0] == f"Unable to find image '{name}' locally"
    assert err[1] == "v1: Pulling from team/runme"
    assert any(line.endswith(": Pull complete") for line in err)
    assert err[-1] == f"Status: Downloaded newer image for {name}"
    again = moorage("run", "--rm", name, "true")
    assert again.stderr == ""  # stored now: no pull
    created = moorage("create", f"{registry}/team/runme:v1", "true").stdout.strip()
    assert len(created) == 64
    moorage("rm", created)


def test_create_pulls_a_missing_image_and_prints_only_the_id(root: Path, registry: str) -> None:
    name = f"{registry}/team/createme:v1"
    moorage("tag", "busybox", name)
    moorage("push", name)
    forget_everything()
    done = moorage("create", name, "true")
    assert len(done.stdout.strip()) == 64 and "Unable to find image" in done.stderr
    moorage("rm", done.stdout.strip())


def test_pull_never_refuses_a_missing_image_with_dockers_message(root: Path, registry: str) -> None:
    name = f"{registry}/team/never:v1"
    moorage("tag", "busybox", name)
    moorage("push", name)
    forget_everything()
    for verb in ("run", "create"):
        done = moorage(verb, "--pull", "never", name, "true", check=False)
        assert done.returncode == 125
        assert done.stderr.strip() == f"Error response from daemon: No such image: {name}"
    assert store.image_ids() == []
    bad = moorage("run", "--pull", "sometimes", "busybox", "true", check=False)
    assert bad.returncode == 125 and "invalid pull option: 'sometimes'" in bad.stderr


def test_pull_always_replaces_a_stale_local_tag(root: Path, registry: str) -> None:
    name = f"{registry}/team/always:v1"
    moorage("tag", "busybox", name)
    moorage("push", name)
    wanted = images.resolve(name).id
    second_image(name)  # the local tag now names another image, which has no echo
    assert images.resolve(name).id != wanted
    done = moorage("run", "--rm", "--pull", "always", name, "echo", "fresh")
    assert done.stdout == "fresh\n" and "Unable to find image" not in done.stderr
    assert f"Status: Downloaded newer image for {name}" in done.stderr
    assert images.resolve(name).id == wanted


def test_run_of_an_image_on_an_unreachable_registry_fails_fast(root: Path) -> None:
    port = free_port()  # bound then released: nothing listens there
    started = time.monotonic()
    done = moorage("run", "--rm", f"127.0.0.1:{port}/team/app", "true", check=False)
    assert time.monotonic() - started < 10
    assert done.returncode == 125
    assert "Unable to find image" in done.stderr and "Connection refused" in done.stderr
    assert not any(p for p in (root / "containers").glob("*") if not p.name.startswith("."))


# --- blobs seen on a pull: mounted on push, bounded while they download --------------------


def _skopeo_push_busybox(registry: str, repository: str, tmp_path: Path) -> str:
    """busybox pushed by skopeo (gzip layers, digests moorage never computed)."""
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    archive = tmp_path / "busybox.tar"
    moorage("save", "-o", str(archive), "busybox")
    target = f"{registry}/{repository}:v1"
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--format",
            "v2s2",
            f"docker-archive:{archive}",
            f"docker://{target}",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return target


def test_a_layer_pulled_from_one_repository_is_mounted_when_pushed_to_another(
    root: Path, registry: str, tmp_path: Path
) -> None:
    """Issue 7: cross-repository blob mount, for a blob this host only ever pulled."""
    origin = _skopeo_push_busybox(registry, "team/origin", tmp_path)
    forget_everything()
    moorage("pull", origin)
    moorage("tag", origin, f"{registry}/team/copy:v1")
    out = moorage("push", f"{registry}/team/copy:v1").stdout
    assert ": Mounted from team/origin" in out and ": Pushed" not in out
    forget_everything()
    assert (
        moorage("run", "--rm", f"{registry}/team/copy:v1", "echo", "mounted").stdout == "mounted\n"
    )


def test_a_gzip_layer_that_unpacks_past_the_limit_is_refused_while_it_downloads(
    root: Path, registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _skopeo_push_busybox(registry, "team/bomb", tmp_path)
    forget_everything()
    monkeypatch.setenv("MOORAGE_MAX_UNPACKED_BYTES", str(64 << 10))
    done = moorage("pull", target, check=False)
    assert done.returncode == 1 and "unpacks to more than 65536 bytes" in done.stderr
    assert store.image_ids() == [] and not list((paths.images() / "layers").glob("*"))
    assert not list(paths.tmp().glob("pull-*"))  # no spool file left behind

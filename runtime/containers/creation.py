"""``create``: from a spec and an image to a container directory in state ``created``.

Resolves the image, merges its config with the spec the way Docker does (entrypoint and
command, environment by key, working dir, user, labels, stop signal), claims the name
atomically, and lays out the container directory with its overlay dirs, its init layer
and generated ``/etc/hostname``, ``/etc/hosts`` and ``/etc/resolv.conf`` (bind-mounted
at start, so they never end up in an image). Nothing here touches the kernel.
"""

from __future__ import annotations

import os
import shutil
import socket
import time

from runtime import images, names, paths, process, rootfs, state, volumes
from runtime.containers import store
from runtime.errors import InvalidSpec, MoorageError, NameInUse, NotFound
from runtime.network import endpoints as net_endpoints
from runtime.network import ports as net_ports
from runtime.network import sandbox as net_sandbox
from runtime.spec import ContainerSpec, validate


def create(spec: ContainerSpec) -> str:
    """Create a container; return its 64-hex id."""
    validate(spec)
    volumes.validate(spec)
    net_sandbox.validate(spec)
    net_ports.validate(spec)
    if spec.health_flags:
        from runtime import health  # a large module, only for containers with a check

        health.validate(spec)
    try:
        image = images.resolve(spec.image)
    except NotFound:
        shown = (
            spec.image
            if ":" in spec.image.rsplit("/", 1)[-1] or "@" in spec.image
            else spec.image + ":latest"
        )
        raise NotFound(f"Unable to find image '{shown}' locally") from None
    config = image.config.get("config") or {}
    entrypoint = (
        list(spec.entrypoint)
        if spec.entrypoint is not None
        else list(config.get("Entrypoint") or [])
    )
    if spec.cmd:
        cmd = list(spec.cmd)
    elif spec.entrypoint is not None:
        cmd = []  # a new entrypoint resets the image's CMD, as in Docker
    else:
        cmd = list(config.get("Cmd") or [])
    argv = entrypoint + cmd
    if not argv:
        raise InvalidSpec("No command specified")
    cid = os.urandom(32).hex()  # what secrets.token_hex does, without its imports
    if spec.name is not None:
        name = names.validate_name(spec.name)
    else:
        name = names.random_name(store.name_taken)
    hostname = spec.hostname or (socket.gethostname() if spec.network_mode == "host" else cid[:12])
    labels = dict(config.get("Labels") or {})
    labels.update(spec.labels)
    record = store.Record(
        id=cid,
        name=name,
        created=time.time(),
        spec=spec,
        image_id=image.id,
        image_ref=spec.image,
        path=argv[0],
        args=argv[1:],
        env=process.merge_env(config.get("Env") or [], spec.env),
        workdir=spec.workdir or config.get("WorkingDir") or "",
        user=spec.user if spec.user is not None else config.get("User") or "",
        hostname=hostname,
        stop_signal=spec.stop_signal or config.get("StopSignal") or "SIGTERM",
        stop_timeout=spec.stop_timeout if spec.stop_timeout is not None else 10,
        labels=labels,
        image_config=volumes.with_anonymous_volumes(spec, config),
        layer_dirs=[str(p) for p in image.layer_dirs()],
    )
    while True:
        try:
            store.claim_name(name, cid)
            break
        except NameInUse:
            # A random name can be claimed by a concurrent create between the check in
            # random_name and our symlink; only a name the user chose is a conflict.
            if spec.name is not None:
                raise
            name = record.name = names.random_name(store.name_taken)
    directory = record.directory
    try:
        for sub in ("upper", "work", "merged", "init"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        rootfs.ensure_mountpoints(directory / "init")
        (directory / "hostname").write_text(hostname + "\n")
        # Networks: attachments and --link targets, their variables, the /etc files.
        net_config = net_sandbox.prepare(spec)
        net_endpoints.save_config(cid, net_config)
        record.env = process.merge_env(net_sandbox.link_env(net_config, name), record.env)
        network = net_sandbox.network_of(spec)
        (directory / "hosts").write_text(net_sandbox.hosts(spec, hostname, [], net_config.links))
        (directory / "resolv.conf").write_text(
            net_sandbox.resolv_conf(spec, network is not None and network.user_defined)
        )
        state.save(directory, state.State(status=state.CREATED))
        # Under the volume lock until the record names its volumes: `volume rm` checks
        # the records, so it cannot remove a volume this container is about to use.
        with volumes.locked():
            prepared = volumes.prepare(spec, config)
            for key, value in prepared.extra().items():
                record.extra.setdefault(key, []).extend(value)
            try:
                store.save(record)
            except OSError:
                volumes.discard(prepared)
                raise
    except (OSError, MoorageError):
        shutil.rmtree(directory, ignore_errors=True)
        store.release_name(name, cid)
        raise
    paths.run_root().mkdir(parents=True, exist_ok=True)
    return cid

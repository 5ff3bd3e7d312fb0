"""Handlers for the container verbs: run, create, start, stop, kill, ps, logs, exec ...

Each handler turns parsed arguments into calls on ``runtime.containers`` (and
``runtime.exec``) and prints what docker prints. Multi-target verbs (stop, kill, rm ...)
echo each argument that succeeded and report each failure on its own line.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from runtime import attach, containers, units
from runtime.cli.streams import Detached, relay_attach, relay_pty
from runtime.errors import Conflict, ExecFailed, InvalidSpec, MoorageError
from runtime.spec import ContainerSpec, parse_restart

RUN_EXIT_ENGINE = 125


def _add_create_options(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--help", action="help", help="show this help")
    a("-i", "--interactive", action="store_true", help="keep STDIN open")
    a("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    a("--name")
    a("-e", "--env", action="append", default=[])
    a("--env-file", action="append", default=[])
    a("-w", "--workdir")
    a("-u", "--user")
    a("-h", "--hostname")
    a("--domainname")
    a("--entrypoint")
    a("--restart", default="no")
    a("-m", "--memory")
    a("--memory-swap")
    a("--cpus")
    a("-c", "--cpu-shares", type=int, default=0)
    a("--cpuset-cpus", default="")
    a("--cpuset-mems", default="")
    a("--pids-limit", type=int, default=0)
    a("--read-only", action="store_true")
    a("-v", "--volume", action="append", default=[], dest="volume")
    a("--mount", action="append", default=[])
    a("--tmpfs", action="append", default=[])
    a("--volumes-from", action="append", default=[])
    a("-l", "--label", action="append", default=[])
    a("--stop-signal")
    a("--stop-timeout", type=int)
    a("--init", action="store_true")
    a("--cap-add", action="append", default=[])
    a("--security-opt", action="append", default=[])
    a("--cap-drop", action="append", default=[])
    a("--privileged", action="store_true")
    a("--network", "--net", default="bridge")
    a("--network-alias", "--net-alias", action="append", default=[], dest="network_alias")
    a("--ip", default="")
    a("--ip6", default="")
    a("--mac-address", default="")
    a("--link", action="append", default=[])
    a("--dns", action="append", default=[])
    a("--dns-search", action="append", default=[])
    a("--dns-option", "--dns-opt", action="append", default=[], dest="dns_option")
    a("--add-host", action="append", default=[])
    a("--ipc", default="private")
    a("--pid", default="")
    a("--device", action="append", default=[])
    a("-p", "--publish", action="append", default=[])
    a("-P", "--publish-all", action="store_true")
    a("--expose", action="append", default=[])
    a("--shm-size")
    a("--log-driver", default="json-file")
    a("--log-opt", action="append", default=[])
    a("--rm", action="store_true")
    a("--health-cmd")
    a("--health-interval")
    a("--health-timeout")
    a("--health-start-period")
    a("--health-retries")
    a("--no-healthcheck", action="store_true")
    a("--pull", default="missing", help="pull the image: always, missing or never")
    a("image")
    a("cmd", nargs=argparse.REMAINDER)


def _read_env_files(files: list[str]) -> list[str]:
    items = []
    for path in files:
        try:
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    if line and not line.startswith("#"):
                        items.append(line)
        except OSError as e:
            raise InvalidSpec(f"open {path}: {(e.strerror or str(e)).lower()}") from None
    return items


def _flag_duration(args: argparse.Namespace, flag: str) -> int:
    """A Go duration flag in nanoseconds, with the docker CLI's parse error."""
    text = getattr(args, flag.lstrip("-").replace("-", "_"))
    if text is None:
        return 0
    try:
        return round(units.parse_duration(text) * 1_000_000_000)
    except InvalidSpec as e:
        raise InvalidSpec(f'invalid argument "{text}" for "{flag}" flag: {e}') from None


def _flag_int(text: str | None, flag: str) -> int:
    if text is None:
        return 0
    try:
        return int(text)
    except ValueError:
        raise InvalidSpec(
            f'invalid argument "{text}" for "{flag}" flag: strconv.ParseInt: '
            f'parsing "{text}": invalid syntax'
        ) from None


def spec_from_args(args: argparse.Namespace) -> ContainerSpec:
    restart, restart_max = parse_restart(args.restart)
    log_opts = {}
    for item in args.log_opt:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidSpec(f"invalid log opt '{item}'")
        log_opts[key] = value
    labels = {}
    for item in args.label:
        key, _, value = item.partition("=")
        labels[key] = value
    entrypoint = None
    if args.entrypoint is not None:
        entrypoint = tuple([args.entrypoint]) if args.entrypoint else ()
    memory = units.parse_bytes(args.memory) if args.memory else 0
    swap = 0
    if args.memory_swap:
        swap = -1 if args.memory_swap == "-1" else units.parse_bytes(args.memory_swap)
    return ContainerSpec(
        image=args.image,
        cmd=tuple(args.cmd) or None,
        entrypoint=entrypoint,
        name=args.name,
        env=tuple(_read_env_files(args.env_file) + args.env),
        workdir=args.workdir,
        user=args.user,
        hostname=args.hostname,
        domainname=args.domainname,
        tty=args.tty,
        stdin_open=args.interactive,
        stdin_once=args.interactive and not getattr(args, "detach", False),
        auto_remove=args.rm,
        restart_policy=restart,
        restart_max=restart_max,
        labels=labels,
        memory=memory,
        memory_swap=swap,
        nano_cpus=units.parse_cpus(args.cpus) if args.cpus else 0,
        cpu_shares=args.cpu_shares,
        cpuset_cpus=args.cpuset_cpus,
        cpuset_mems=args.cpuset_mems,
        pids_limit=args.pids_limit,
        read_only=args.read_only,
        stop_signal=args.stop_signal,
        stop_timeout=args.stop_timeout,
        init=args.init,
        cap_add=tuple(args.cap_add),
        security_opt=tuple(args.security_opt),
        cap_drop=tuple(args.cap_drop),
        privileged=args.privileged,
        network_mode=args.network,
        ipc_mode=args.ipc,
        pid_mode=args.pid,
        devices=tuple(args.device),
        publish=tuple(args.publish),
        publish_all=args.publish_all,
        expose=tuple(args.expose),
        shm_size=units.parse_bytes(args.shm_size) if args.shm_size else 64 * 1024 * 1024,
        log_driver=args.log_driver,
        log_opts=log_opts,
        volumes=tuple(_absolute_source(v, ":") for v in args.volume),
        mounts=tuple(_absolute_source(m, ",") for m in args.mount),
        tmpfs=tuple(args.tmpfs),
        volumes_from=tuple(args.volumes_from),
        network_aliases=tuple(args.network_alias),
        ipv4_address=args.ip,
        ipv6_address=args.ip6,
        mac_address=args.mac_address,
        links=tuple(args.link),
        dns=tuple(args.dns),
        dns_search=tuple(args.dns_search),
        dns_options=tuple(args.dns_option),
        extra_hosts=tuple(args.add_host),
        health_cmd=args.health_cmd,
        health_interval=_flag_duration(args, "--health-interval"),
        health_timeout=_flag_duration(args, "--health-timeout"),
        health_start_period=_flag_duration(args, "--health-start-period"),
        health_retries=_flag_int(args.health_retries, "--health-retries"),
        no_healthcheck=args.no_healthcheck,
    )


def _absolute_source(raw: str, separator: str) -> str:
    """The docker CLI turns a ``.`` or ``./dir`` bind source into an absolute path."""
    if separator == ":":
        source, sep, rest = raw.partition(":")
        if sep and (source == "." or source.startswith("./")):
            return os.path.abspath(source) + ":" + rest
        return raw
    fields = raw.split(",")
    for i, item in enumerate(fields):
        key, sep, value = item.partition("=")
        if sep and key.lower() in ("source", "src") and (value == "." or value.startswith("./")):
            fields[i] = f"{key}={os.path.abspath(value)}"
    return ",".join(fields)


def _engine_error(e: MoorageError) -> MoorageError:
    """``run``/``create`` report engine failures with exit 125, as docker does."""
    e.cli_exit_code = RUN_EXIT_ENGINE  # type: ignore[attr-defined]
    return e


def _image_for_run(args: argparse.Namespace) -> None:
    policy = getattr(args, "pull", "missing")
    if policy == "missing":
        from runtime import images
        from runtime.errors import NotFound

        try:
            images.resolve(args.image)
            return  # the usual case, without the registry client's imports
        except NotFound:
            pass
    from runtime.cli.registry_commands import image_for_run

    image_for_run(args.image, policy)


def cmd_create(args: argparse.Namespace) -> int:
    try:
        spec = spec_from_args(args)
        _image_for_run(args)
        cid = containers.create(spec)
    except MoorageError as e:
        raise _engine_error(e) from None
    print(cid)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    try:
        spec = spec_from_args(args)
        _image_for_run(args)
        cid = containers.create(spec)
    except MoorageError as e:
        raise _engine_error(e) from None
    if args.detach:
        try:
            containers.start(cid)
        except ExecFailed:
            _remove_after_failed_start(cid, spec)
            raise
        except MoorageError as e:
            _remove_after_failed_start(cid, spec)
            raise _engine_error(e) from None
        print(cid)
        return 0
    holder: dict[str, attach.Client] = {}

    def connect(cid: str) -> None:
        holder["client"] = attach.Client(
            cid,
            {
                "op": "attach",
                "stdin": spec.stdin_open,
                "stdout": True,
                "stderr": True,
                "stdin_once": spec.stdin_open and not spec.tty,
            },
        )

    try:
        containers.start(cid, before_go=connect)
    except ExecFailed:
        _remove_after_failed_start(cid, spec)
        raise
    except MoorageError as e:
        _remove_after_failed_start(cid, spec)
        raise _engine_error(e) from None
    client = holder["client"]
    try:
        code = relay_attach(client, spec.tty, spec.stdin_open)
    except Detached:
        client.close()
        return 0
    client.close()
    if code is None:
        code = containers.wait(cid) if not spec.auto_remove else 0
    return code


def _remove_after_failed_start(cid: str, spec: ContainerSpec) -> None:
    if spec.auto_remove:
        try:
            containers.remove(cid, force=True)
        except MoorageError:
            pass


def _each(refs: list[str], action: Callable[[str], Any], echo: bool = True) -> int:
    failed = 0
    for ref in refs:
        try:
            action(ref)
            if echo:
                print(ref)
        except MoorageError as e:
            print(f"Error response from daemon: {e}", file=sys.stderr)
            failed = 1
    return failed


def cmd_start(args: argparse.Namespace) -> int:
    if args.attach:
        ref = args.containers[0]
        record = containers.store.load(containers.resolve(ref))
        holder: dict[str, attach.Client] = {}

        def connect(cid: str) -> None:
            holder["client"] = attach.Client(
                cid,
                {
                    "op": "attach",
                    "stdin": args.interactive,
                    "stdout": True,
                    "stderr": True,
                    "stdin_once": args.interactive and not record.spec.tty,
                },
            )

        containers.start(ref, before_go=connect)
        try:
            code = relay_attach(holder["client"], record.spec.tty, args.interactive)
        except Detached:
            return 0
        return code if code is not None else containers.wait(ref)
    return _each(args.containers, containers.start)


def cmd_stop(args: argparse.Namespace) -> int:
    return _each(args.containers, lambda ref: containers.stop(ref, args.time))


def cmd_restart(args: argparse.Namespace) -> int:
    return _each(args.containers, lambda ref: containers.restart(ref, args.time))


def cmd_kill(args: argparse.Namespace) -> int:
    return _each(args.containers, lambda ref: containers.kill(ref, args.signal))


def cmd_pause(args: argparse.Namespace) -> int:
    return _each(args.containers, containers.pause)


def cmd_unpause(args: argparse.Namespace) -> int:
    return _each(args.containers, containers.unpause)


def cmd_rm(args: argparse.Namespace) -> int:
    return _each(
        args.containers, lambda ref: containers.remove(ref, force=args.force, volumes=args.volumes)
    )


def cmd_wait(args: argparse.Namespace) -> int:
    return _each(args.containers, lambda ref: print(containers.wait(ref)), echo=False)


def cmd_rename(args: argparse.Namespace) -> int:
    containers.rename(args.container, args.new_name)
    return 0


def cmd_ps(args: argparse.Namespace) -> int:
    filters = containers.views.parse_filters(args.filter)
    rows = containers.list_containers(all=args.all or args.latest or args.last > 0, filters=filters)
    if args.latest:
        rows = rows[:1]
    elif args.last > 0:
        rows = rows[: args.last]
    from runtime.cli import format, output  # output modules stay out of `run`'s imports

    now = time.time()
    items = [format.ps_item(record, st, now, args.no_trunc) for record, st in rows]
    if args.quiet:
        for item in items:
            print(item["ID"])
        return 0
    if args.format:
        format.print_formatted(args.format, items)
        return 0
    headers = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    table = [
        [i["ID"], i["Image"], i["Command"], i["RunningFor"], i["Status"], i["Ports"], i["Names"]]
        for i in items
    ]
    sys.stdout.write(output.format_table(table, headers))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    tail = None
    if args.tail not in (None, "all"):
        if not args.tail.isdigit():
            raise InvalidSpec(f"invalid value for --tail: {args.tail}")
        tail = int(args.tail)
    from runtime.cli import format

    since = format.parse_time_filter(args.since) if args.since else None
    until = format.parse_time_filter(args.until) if args.until else None
    out, err = sys.stdout.buffer, sys.stderr.buffer
    for entry in containers.logs(args.container, tail, since, until, args.follow):
        target = out if entry.stream == "stdout" else err
        if args.timestamps:
            target.write(entry.time.encode() + b" ")
        target.write(entry.data)
        target.flush()
    return 0


def cmd_attach(args: argparse.Namespace) -> int:
    cid = containers.resolve(args.container)
    record = containers.store.load(cid)
    st = containers.reconcile(cid)
    if st.status not in ("running", "paused"):
        raise MoorageError("You cannot attach to a stopped container, start it first")
    send_stdin = not args.no_stdin and record.spec.stdin_open
    client = attach.Client(
        cid,
        {
            "op": "attach",
            "stdin": send_stdin,
            "stdout": True,
            "stderr": True,
            "stdin_once": record.spec.stdin_once,
        },
    )
    try:
        code = relay_attach(client, record.spec.tty, send_stdin, record.spec.stdin_once)
    except Detached:
        print("read escape sequence", file=sys.stderr)
        return 0
    finally:
        client.close()
    return code if code is not None else containers.wait(cid)


def cmd_exec(args: argparse.Namespace) -> int:
    if not args.cmd:
        raise InvalidSpec("exec requires at least 2 arguments")
    try:
        from runtime.exec import exec_process  # only `exec` needs it; `run` is timed

        proc = exec_process(
            args.container,
            args.cmd,
            use_tty=args.tty,
            stdin=0 if args.interactive else -1,
            detach=args.detach,
            user=args.user,
            workdir=args.workdir,
            env=tuple(args.env),
        )
    except ExecFailed:
        raise
    except Conflict as e:
        # Not running or paused: the command cannot be invoked, so 126 as for run.
        e.cli_exit_code = 126  # type: ignore[attr-defined]
        raise
    if args.detach:
        proc.wait()
        return 0
    if proc.master_fd >= 0:
        relay_pty(proc.master_fd, args.interactive)
        os.close(proc.master_fd)
    return proc.wait()


def cmd_inspect(args: argparse.Namespace) -> int:
    from runtime import images

    documents = []
    failed = 0
    for ref in args.targets:
        try:
            if args.type in (None, "container"):
                try:
                    documents.append(containers.inspect(ref))
                    continue
                except MoorageError:
                    if args.type == "container":
                        raise
            documents.append(images.resolve(ref).inspect())
        except MoorageError:
            kind = "container" if args.type == "container" else "object"
            print(f"Error: No such {kind}: {ref}", file=sys.stderr)
            failed = 1
    from runtime.cli import format

    format.print_documents(args.format, documents)
    return failed


def cmd_top(args: argparse.Namespace) -> int:
    headers, rows = containers.top(args.container, args.ps_args or None)
    from runtime.cli import output

    sys.stdout.write(output.format_table(rows, headers))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from runtime.cli import stats_view

    return stats_view.show(args.containers, args.all, args.no_stream, args.format)


def cmd_container_prune(args: argparse.Namespace) -> int:
    if not args.force and sys.stdin.isatty():
        answer = input(
            "WARNING! This will remove all stopped containers.\n"
            "Are you sure you want to continue? [y/N] "
        )
        if answer.strip().lower() != "y":
            return 0
    removed = containers.prune()
    if removed:
        print("Deleted Containers:")
        for cid in removed:
            print(cid)
        print()
    print("Total reclaimed space: 0B")
    return 0


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="create and start a container", add_help=False)
    run.add_argument("-d", "--detach", action="store_true")
    _add_create_options(run)
    run.set_defaults(handler=cmd_run)
    create = sub.add_parser("create", help="create a container", add_help=False)
    _add_create_options(create)
    create.set_defaults(handler=cmd_create, detach=True)

    def multi(
        name: str, handler: Callable[[argparse.Namespace], int], helptext: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=helptext)
        p.add_argument("containers", nargs="+", metavar="CONTAINER")
        p.set_defaults(handler=handler)
        return p

    p = multi("start", cmd_start, "start stopped containers")
    p.add_argument("-a", "--attach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p = multi("stop", cmd_stop, "stop running containers")
    p.add_argument("-t", "--time", "--timeout", type=int)
    p = multi("restart", cmd_restart, "restart containers")
    p.add_argument("-t", "--time", "--timeout", type=int)
    p = multi("kill", cmd_kill, "kill running containers")
    p.add_argument("-s", "--signal", default="KILL")
    multi("pause", cmd_pause, "pause all processes within containers")
    multi("unpause", cmd_unpause, "unpause containers")
    p = multi("rm", cmd_rm, "remove containers")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-v", "--volumes", action="store_true")
    multi("wait", cmd_wait, "block until containers stop, then print their exit codes")

    p = sub.add_parser("rename", help="rename a container")
    p.add_argument("container")
    p.add_argument("new_name")
    p.set_defaults(handler=cmd_rename)

    p = sub.add_parser("ps", help="list containers")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-l", "--latest", action="store_true")
    p.add_argument("-n", "--last", type=int, default=-1)
    p.add_argument("-s", "--size", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format")
    p.set_defaults(handler=cmd_ps)

    p = sub.add_parser("logs", help="fetch the logs of a container")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--tail")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("--details", action="store_true")
    p.add_argument("container")
    p.set_defaults(handler=cmd_logs)

    p = sub.add_parser("attach", help="attach to a running container")
    p.add_argument("--no-stdin", action="store_true")
    p.add_argument("--sig-proxy", default="true")
    p.add_argument("--detach-keys")
    p.add_argument("container")
    p.set_defaults(handler=cmd_attach)

    p = sub.add_parser("exec", help="run a command in a running container")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("container")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(handler=cmd_exec)

    for name, kind in (("inspect", None), ("container-inspect", "container")):
        p = sub.add_parser(name, help="return low-level information on objects")
        p.add_argument("-f", "--format")
        p.add_argument("-s", "--size", action="store_true")
        if kind is None:
            p.add_argument("--type", choices=["container", "image"])
        p.add_argument("targets", nargs="+", metavar="NAME|ID")
        p.set_defaults(handler=cmd_inspect, **({"type": kind} if kind else {}))

    p = sub.add_parser("top", help="display the running processes of a container")
    p.add_argument("container")
    p.add_argument("ps_args", nargs=argparse.REMAINDER)
    p.set_defaults(handler=cmd_top)

    p = sub.add_parser("stats", help="live resource usage statistics")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format")
    p.add_argument("containers", nargs="*")
    p.set_defaults(handler=cmd_stats)

    p = sub.add_parser("container-prune", help="remove all stopped containers")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])
    p.set_defaults(handler=cmd_container_prune)

"""Glue between engine objects and the CLI's output: ``--format`` templates, ``ps``
rows, and docker's time filters (``--since 10m``, ``--since 2026-11-22T10:00:00``).
The template language itself is ``runtime.cli.gotemplate``; the tables and status
strings are ``runtime.cli.output``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from runtime import state, units
from runtime.cli import output
from runtime.containers.store import Record
from runtime.errors import InvalidSpec

_COLUMN_TITLES = {
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED",
    "Ports": "PORTS",
    "Status": "STATUS",
    "Names": "NAMES",
    "Labels": "LABELS",
    "State": "STATE",
    "Size": "SIZE",
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "CreatedSince": "CREATED",
    "Digest": "DIGEST",
    "Mounts": "MOUNTS",
    "Networks": "NETWORKS",
    "Name": "NAME",
    "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT",
    "MemPerc": "MEM %",
    "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
    "Container": "CONTAINER",
}


def render_template(template: str, data: Any) -> str:
    from runtime.cli import gotemplate  # a large parser: only load it for --format

    return gotemplate.render(template, data)


def print_documents(template: str | None, documents: list[Any]) -> None:
    """``inspect``: a template line per document, or docker's indented JSON array."""
    if template:
        for document in documents:
            print(render_template(template, document))
    else:
        print(json.dumps(documents, indent=4))


def print_formatted(template: str, items: list[dict[str, Any]]) -> None:
    """``--format``: plain templates print a line per item; ``table ...`` adds headers."""
    from runtime.cli import gotemplate

    if gotemplate.is_table(template):
        body = gotemplate.strip_table(template)
        header = gotemplate.render(body, _HeaderProxy())
        lines = [header] + [gotemplate.render(body, item) for item in items]
        sys.stdout.write(gotemplate.tabwrite(lines))
        return
    compiled = gotemplate.compile(template)
    for item in items:
        sys.stdout.write(compiled.execute(item) + "\n")


class _HeaderProxy(dict):
    """Renders each ``{{.Field}}`` as its column title, as docker does for headers."""

    def __missing__(self, key: str) -> str:
        return _COLUMN_TITLES.get(key, key.upper())

    def __contains__(self, key: object) -> bool:
        return True


def ps_item(record: Record, st: state.State, now: float, no_trunc: bool) -> dict[str, Any]:
    # Imported here, not at the top: `run`, `stop` and the other hot verbs import this
    # module but never draw a ps row, and these two bring the exec and proxy machinery.
    from runtime import health
    from runtime.network import ports

    state_doc = {
        "Status": st.status,
        "ExitCode": st.exit_code,
        "StartedAt": output.rfc3339_nano(st.started_at)
        if st.started_at
        else "0001-01-01T00:00:00Z",
        "FinishedAt": output.rfc3339_nano(st.finished_at)
        if st.finished_at
        else "0001-01-01T00:00:00Z",
        "Health": health.document(record, st),
    }
    command = " ".join(record.argv)
    created = output.rfc3339_nano(record.created)
    return {
        "ID": record.id if no_trunc else record.id[:12],
        "Image": record.image_ref,
        "Command": f'"{command}"' if no_trunc else output.truncate_command(command),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(record.created)),
        "RunningFor": output.created_ago(created, now),
        "Ports": output.port_string(
            ports.bindings(record) if st.status in (state.RUNNING, state.PAUSED) else {}
        ),
        "Status": output.status_string(state_doc, now),
        "State": st.status,
        "Names": record.name,
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(record.labels.items())),
        "Size": "0B",
        "Mounts": ",".join(  # volume names, else bind sources, as docker ps shows them
            (lambda n: n if no_trunc else output.ellipsis(n, 15))(m.get("Name") or m["Source"])
            for m in record.extra.get("mounts", [])
        ),
        "Networks": record.spec.network_mode,
        "LocalVolumes": str(
            sum(1 for m in record.extra.get("mounts", []) if m.get("Driver") == "local")
        ),
    }


def parse_time_filter(text: str, now: float | None = None) -> float:
    """Docker's --since/--until: a duration ago ('10m'), a unix time, or RFC3339."""
    now = time.time() if now is None else now
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return now - units.parse_duration(text)
    except InvalidSpec:
        pass
    try:
        return output.parse_rfc3339(text if "T" in text else text + "T00:00:00Z")
    except (ValueError, InvalidSpec):
        raise InvalidSpec(f"invalid value for --since/--until: {text}") from None

"""``moorage stats``: Docker's table of CPU, memory, network, block I/O and pids,
sampled from the cgroups once a second (``--no-stream``: one table from two samples).
"""

from __future__ import annotations

import sys
import time

from runtime import containers, state, units
from runtime.cli import output
from runtime.cli.format import print_formatted
from runtime.containers.views import Sample
from runtime.errors import MoorageError

CLEAR = "\x1b[2J\x1b[H"


def _targets(refs: list[str], all_containers: bool) -> list[str]:
    if refs:
        return [containers.resolve(ref) for ref in refs]
    rows = containers.list_containers(all=all_containers)
    return [record.id for record, st in rows if all_containers or st.status == state.RUNNING]


def _take(cids: list[str]) -> dict[str, Sample]:
    samples = {}
    for cid in cids:
        try:
            samples[cid] = containers.sample(cid)
        except MoorageError:
            continue
    return samples


def _row(before: Sample | None, after: Sample) -> dict[str, str]:
    cpu = containers.cpu_percent(before, after) if before else 0.0
    mem_percent = after.memory_usage / after.memory_limit * 100 if after.memory_limit else 0
    return {
        "ID": after.cid[:12],
        "Container": after.cid[:12],
        "Name": after.name,
        "CPUPerc": f"{cpu:.2f}%",
        "MemUsage": f"{units.bytes_human_binary(after.memory_usage)} / "
        f"{units.bytes_human_binary(after.memory_limit)}",
        "MemPerc": f"{mem_percent:.2f}%",
        "NetIO": f"{units.human_size(after.net_rx)} / {units.human_size(after.net_tx)}",
        "BlockIO": f"{units.human_size(after.block_read)} / {units.human_size(after.block_write)}",
        "PIDs": str(after.pids),
    }


def _print(rows: list[dict[str, str]], template: str | None) -> None:
    if template:
        print_formatted(template, rows)
        return
    headers = [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ]
    table = [
        [
            r["ID"],
            r["Name"],
            r["CPUPerc"],
            r["MemUsage"],
            r["MemPerc"],
            r["NetIO"],
            r["BlockIO"],
            r["PIDs"],
        ]
        for r in rows
    ]
    sys.stdout.write(output.format_table(table, headers))


def show(refs: list[str], all_containers: bool, no_stream: bool, template: str | None) -> int:
    cids = _targets(refs, all_containers)
    previous = _take(cids)
    time.sleep(0.5 if no_stream else 0.0)
    while True:
        current = _take(cids)
        rows = [_row(previous.get(cid), sample) for cid, sample in current.items()]
        if not no_stream:
            sys.stdout.write(CLEAR)
        _print(rows, template)
        sys.stdout.flush()
        if no_stream:
            return 0
        previous = current
        time.sleep(1.0)
        if not refs:
            cids = _targets(refs, all_containers)

"""The shortcuts of `run`'s start-up path (bench/run_start.py times it): each must leave
what a user sees exactly as the long way did."""

from __future__ import annotations

import json

from runtime import cgroups, containers, paths
from runtime.cgroups import v1


def _state(cid: str) -> dict:
    return json.loads((paths.container(cid) / "state.json").read_text())


def test_the_init_that_moved_itself_is_in_every_hierarchy_of_its_containers_cgroup(moorage):
    cid = moorage.ok("run", "-d", "--network", "none", "busybox", "sleep", "1000").strip()
    with open(f"/proc/{_state(cid)['pid']}/cgroup") as f:
        lines = [line.strip().split(":", 2) for line in f]
    if cgroups.version() == 1:
        mounted = set(v1.mounts())
        ours = [path for _, names, path in lines if set(names.split(",")) & mounted]
        assert len(ours) >= 1
    else:
        ours = [path for _, names, path in lines if names == ""]
    assert ours and all(path.endswith(f"/{cid}") for path in ours), lines


def test_run_rm_keeps_output_and_exit_code_through_the_quick_exit(moorage):
    result = moorage(
        "run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"
    )
    assert (result.code, result.out, result.err) == (3, "out\n", "err\n")


def test_gc_deletes_the_files_of_a_removed_container_its_dead_monitor_left(moorage):
    cid = "ab" * 32
    left = paths.tmp() / f"removed-{cid}"
    (left / "upper").mkdir(parents=True)
    (left / "config.json").write_text("{}")
    found = containers.gc()
    assert not left.exists() and cid in found["directories"]

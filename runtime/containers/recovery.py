"""Reconciling recorded state with the kernel after a crash or a reboot.

A container whose state says running but whose monitor is gone (killed, or the host
rebooted) is dead too: the monitor set PR_SET_PDEATHSIG on its init. ``reconcile``
records that (exit 137 for a killed monitor, 255 after a reboot, as Docker shows for
containers it lost) and removes what the monitor would have: the cgroup and the socket.
``reconcile_all`` then applies restart policies to the lost ones, the way dockerd does
at start-up.
"""

from __future__ import annotations

import signal
import time

from runtime import attach, cgroups, paths, state
from runtime.containers import store
from runtime.errors import MoorageError


def monitor_alive(st: state.State) -> bool:
    return state.process_alive(st.monitor_pid, st.monitor_start)


def reconcile(cid: str) -> state.State:
    directory = paths.container(cid)
    st = state.load(directory)
    if st.status not in state.ACTIVE or monitor_alive(st):
        return st
    with state.updating(directory) as st:
        if st.status not in state.ACTIVE or monitor_alive(st):
            return st
        rebooted = bool(st.boot_id) and st.boot_id != state.boot_id()
        st.status = state.EXITED
        st.exit_code = 255 if rebooted else 137
        st.error = "host rebooted" if rebooted else "container monitor died"
        st.pid = 0
        st.finished_at = time.time()
        st.lost = True
    group = cgroups.open_cgroup(cid)
    try:
        group.kill_all(signal.SIGKILL)
        group.destroy()
    except MoorageError:
        pass
    attach.remove_socket(cid)
    return st


def should_restart_after_loss(spec_policy: str, st: state.State) -> bool:
    if spec_policy == "always":
        return True
    if spec_policy == "unless-stopped":
        return not st.manually_stopped
    if spec_policy == "on-failure":
        return st.exit_code != 0 and not st.manually_stopped
    return False


def reconcile_all() -> list[str]:
    """Reconcile every container; restart the lost ones whose policy says so."""
    from runtime.containers import lifecycle

    restarted = []
    for cid in store.ids():
        try:
            # Whoever noticed the loss first (maybe a `ps`), it is marked ``lost`` until
            # the container starts again.
            st = reconcile(cid)
            record = store.load(cid)
            if (
                st.lost
                and st.status == state.EXITED
                and should_restart_after_loss(record.spec.restart_policy, st)
            ):
                lifecycle.start(cid)
                restarted.append(cid)
        except (MoorageError, FileNotFoundError):
            continue
    return restarted

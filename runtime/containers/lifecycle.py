"""Lifecycle verbs: start, stop, kill, restart, pause, unpause, wait.

Each verb resolves its argument, takes the container's ``op.lock`` for the whole
operation (so two verbs on one container never interleave), checks the transition
against ``runtime.state.TRANSITIONS``, and talks to the container's monitor over its
attach socket. State written by the monitor (running, exit code, times) is never
written here; only the intent flags (``manually_stopped``) and paused/running.
"""

from __future__ import annotations

import contextlib
import signal as signal_module
import time
from collections.abc import Callable, Iterator

from runtime import attach, cgroups, monitor, paths, state
from runtime.containers import store
from runtime.containers.recovery import reconcile
from runtime.errors import Conflict, InvalidState
from runtime.units import parse_signal


@contextlib.contextmanager
def operation(ref: str) -> Iterator[str]:
    """Resolve ``ref`` and hold the container's operation lock."""
    cid = store.resolve(ref)
    with state.flocked(paths.container(cid) / "op.lock"):
        # It may have been removed while we waited for the lock.
        cid = store.resolve(cid)
        yield cid


def start(ref: str, before_go: Callable[[str], None] | None = None) -> str:
    """Start a created or exited container. ``before_go`` may attach before it runs."""
    with operation(ref) as cid:
        st = reconcile(cid)
        if st.status in (state.RUNNING, state.RESTARTING):
            return cid
        if st.status == state.PAUSED:
            raise InvalidState("cannot start a paused container, try unpause instead")
        state.check_transition(st.status, state.RUNNING, cid[:12])
        with state.updating(paths.container(cid)) as current:
            current.manually_stopped = False
        launch = monitor.spawn(cid)
        if before_go:
            try:
                before_go(cid)
            except BaseException:
                launch.go()
                raise
        launch.go()
        launch.result()
        return cid


def _send_signal(cid: str, number: int) -> bool:
    try:
        return bool(attach.request(cid, {"op": "signal", "signal": number}).get("ok"))
    except InvalidState:
        return False


def _cancel_restart(cid: str) -> None:
    try:
        attach.request(cid, {"op": "cancel_restart"})
    except InvalidState:
        pass  # the monitor gave up on its own meanwhile (it saw manually_stopped)


def stop(ref: str, timeout: int | None = None) -> str:
    """Stop signal, wait ``timeout`` seconds (the container's default: 10), then SIGKILL."""
    with operation(ref) as cid:
        st = reconcile(cid)
        if st.status not in state.ACTIVE:
            return cid
        record = store.load(cid)
        with state.updating(paths.container(cid)) as current:
            current.manually_stopped = True
        if st.status == state.RESTARTING:
            _cancel_restart(cid)
            # A monitor busy launching the next run answers only once that run started;
            # then there is a process to stop after all.
            st = reconcile(cid)
            if st.status not in (state.RUNNING, state.PAUSED):
                return cid
        grace = record.stop_timeout if timeout is None else timeout
        _stop_process(cid, parse_signal(record.stop_signal), grace, st.status == state.PAUSED)
        return cid


def _stop_process(cid: str, number: int, grace: float, paused: bool) -> None:
    try:
        waiter = attach.Client(cid, {"op": "wait"})
    except InvalidState:
        return  # the monitor is already gone
    with waiter:
        _send_signal(cid, number)
        if paused:
            _thaw(cid)
        waiter.sock.settimeout(None if grace < 0 else grace)
        try:
            waiter.wait_exit()
            return
        except (TimeoutError, BlockingIOError):  # a zero timeout makes the socket non-blocking
            pass
        waiter.sock.settimeout(None)
        _send_signal(cid, signal_module.SIGKILL)
        waiter.wait_exit()


def kill(ref: str, sig: str | int = "KILL") -> str:
    number = sig if isinstance(sig, int) else parse_signal(sig)
    with operation(ref) as cid:
        st = reconcile(cid)
        if st.status not in (state.RUNNING, state.PAUSED):
            raise Conflict(f"Cannot kill container: {ref}: Container {cid} is not running")
        record = store.load(cid)
        if number in (signal_module.SIGKILL, parse_signal(record.stop_signal)):
            with state.updating(paths.container(cid)) as current:
                current.manually_stopped = True
        if number == signal_module.SIGKILL:
            _stop_process(cid, number, -1, st.status == state.PAUSED)
        else:
            _send_signal(cid, number)
        return cid


def restart(ref: str, timeout: int | None = None) -> str:
    cid = stop(ref, timeout)
    return start(cid)


def _thaw(cid: str) -> None:
    cgroups.open_cgroup(cid).thaw()
    with state.updating(paths.container(cid)) as current:
        if current.status == state.PAUSED:
            current.status = state.RUNNING


def pause(ref: str) -> str:
    with operation(ref) as cid:
        st = reconcile(cid)
        if st.status == state.PAUSED:
            raise Conflict(f"Container {cid} is already paused")
        if st.status != state.RUNNING:
            raise Conflict(f"Container {cid} is not running")
        cgroups.open_cgroup(cid).freeze()
        with state.updating(paths.container(cid)) as current:
            current.status = state.PAUSED
        return cid


def unpause(ref: str) -> str:
    with operation(ref) as cid:
        st = reconcile(cid)
        if st.status != state.PAUSED:
            raise Conflict(f"Container {cid} is not paused")
        _thaw(cid)
        return cid


def wait(ref: str) -> int:
    """Block until the container stops; return its exit code."""
    cid = store.resolve(ref)
    st = reconcile(cid)
    if st.status in state.ACTIVE:
        try:
            with attach.Client(cid, {"op": "wait"}) as waiter:
                result = waiter.wait_exit()
                if "exit" in result:
                    return int(result["exit"])
        except InvalidState:
            pass
        for _ in range(100):  # the monitor hung up: read what it recorded
            st = reconcile(cid)
            if st.status not in state.ACTIVE:
                break
            time.sleep(0.02)
    return state.load(paths.container(cid)).exit_code

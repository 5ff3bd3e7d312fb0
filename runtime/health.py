"""Health checks: the image's HEALTHCHECK (or ``--health-*``) run by the container's monitor.

Drives timerfd_create(2) for the probe schedule and pidfd_open(2) for the probe's exit,
behind one epoll fd, so the monitor's single-threaded selector loop polls the whole
check as one "service" (``fileno()``/``on_readable()``). A probe is an exec into the
container (``runtime.exec``, no TTY, stdout and stderr into one pipe, kept up to 4 KiB as
dockerd does); a probe that outlives its Timeout is killed and counts as a failure.

Owns ``health.json`` in the container directory (``{Status, FailingStreak, Log}``,
Docker's ``State.Health``), replaced atomically after every probe; the Log keeps the last
five results and survives restarts. It never restarts or stops an unhealthy container
(neither does dockerd outside swarm) and never runs a probe while none is configured.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime import logs, state, syscalls
from runtime.errors import InvalidSpec, MoorageError

SECOND = 1_000_000_000
DEFAULT_INTERVAL = 30 * SECOND
DEFAULT_TIMEOUT = 30 * SECOND
DEFAULT_RETRIES = 3
MINIMUM_DURATION = 1_000_000  # Docker's containertypes.MinimumDuration: 1ms
MAX_OUTPUT = 4096  # dockerd's maxOutputLen
MAX_LOG_ENTRIES = 5
STARTING, HEALTHY, UNHEALTHY, NONE = "starting", "healthy", "unhealthy", "none"
STATUSES = (STARTING, HEALTHY, UNHEALTHY, NONE)


@dataclass(frozen=True)
class Check:
    """An effective health check, durations in nanoseconds with defaults applied."""

    argv: tuple[str, ...]
    interval: int
    timeout: int
    start_period: int
    start_interval: int  # 0: Interval throughout
    retries: int


# ------------------------------------------------------------------ configuration


def user_healthcheck(spec: Any) -> dict[str, Any] | None:
    """The ``--health-*`` flags as a Docker ``Healthcheck``; None when none was given."""
    if spec.no_healthcheck:
        return {"Test": ["NONE"]}
    if not (
        spec.health_cmd
        or spec.health_interval
        or spec.health_timeout
        or spec.health_start_period
        or spec.health_retries
    ):
        return None
    check: dict[str, Any] = {"Test": ["CMD-SHELL", spec.health_cmd] if spec.health_cmd else []}
    for key, value in (
        ("Interval", spec.health_interval),
        ("Timeout", spec.health_timeout),
        ("StartPeriod", spec.health_start_period),
        ("Retries", spec.health_retries),
    ):
        if value:  # unset stays out, as Docker's omitempty fields do
            check[key] = value
    return check


def merged(spec: Any, image_config: dict[str, Any]) -> dict[str, Any] | None:
    """The container's ``Config.Healthcheck``: the flags over the image's, as dockerd merges."""
    image = image_config.get("Healthcheck") or None
    user = user_healthcheck(spec)
    if user is None:
        return dict(image) if image else None
    if image:
        for key in ("Test", "Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
            if not user.get(key) and image.get(key):
                user[key] = image[key]
    return user


def validate(spec: Any) -> None:
    """The flags' own checks (the docker CLI's wording), then the daemon's on the values."""
    given = bool(
        spec.health_cmd
        or spec.health_interval
        or spec.health_timeout
        or spec.health_start_period
        or spec.health_retries
    )
    if spec.no_healthcheck and given:
        raise InvalidSpec("--no-healthcheck conflicts with --health-* options")
    for flag, value in (
        ("--health-interval", spec.health_interval),
        ("--health-timeout", spec.health_timeout),
        ("--health-start-period", spec.health_start_period),
        ("--health-retries", spec.health_retries),
    ):
        if value < 0:
            raise InvalidSpec(f"{flag} cannot be negative")
    for name, value in (
        ("Interval", spec.health_interval),
        ("Timeout", spec.health_timeout),
        ("StartPeriod", spec.health_start_period),
    ):
        if 0 < value < MINIMUM_DURATION:
            raise InvalidSpec(f"{name} in Healthcheck cannot be less than 1ms")


def effective(spec: Any, image_config: dict[str, Any]) -> Check | None:
    """What the monitor runs, or None: no check, an empty test, or ``NONE``."""
    config = merged(spec, image_config)
    if not config or not config.get("Test") or config["Test"][0] == "NONE":
        return None
    test = list(config["Test"])
    if test[0] == "CMD-SHELL":
        shell = list(image_config.get("Shell") or ["/bin/sh", "-c"])
        argv = shell + [" ".join(test[1:])]
    elif test[0] == "CMD":
        argv = test[1:]
    else:
        argv = test  # an API client's bare argv; dockerd treats it the same way
    if not argv:
        return None
    return Check(
        argv=tuple(argv),
        interval=config.get("Interval") or DEFAULT_INTERVAL,
        timeout=config.get("Timeout") or DEFAULT_TIMEOUT,
        start_period=config.get("StartPeriod") or 0,
        # Only when set: dockerd 20.10 has no StartInterval, and 25+ defaulting
        # it to 5s would slow down a short --health-interval in the start period.
        start_interval=config.get("StartInterval") or 0,
        retries=config.get("Retries") or DEFAULT_RETRIES,
    )


# ------------------------------------------------------------------ the record on disk


def health_path(directory: Path) -> Path:
    return directory / "health.json"


def read(directory: Path) -> dict[str, Any] | None:
    try:
        data = state.read_json(health_path(directory))
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def document(record: Any, st: state.State) -> dict[str, Any] | None:
    """``State.Health`` for inspect and ps; None for a container without a check."""
    if effective(record.spec, record.image_config) is None:
        return None
    found = read(record.directory)
    if found is None:
        if st.status not in state.ACTIVE:
            return None  # never started: dockerd sets Health up at start
        found = {"Status": STARTING, "FailingStreak": 0, "Log": []}
    return found


def status_of(record: Any, st: state.State) -> str:
    """The ``ps --filter health=`` value: starting, healthy, unhealthy or none."""
    doc = document(record, st)
    return str(doc["Status"]) if doc else NONE


def go_duration(nanos: int) -> str:
    """Go's ``time.Duration.String`` for whole and fractional units (``1s``, ``500ms``)."""
    if nanos < 1000:
        return f"{nanos}ns"
    if nanos < 1_000_000:
        return f"{nanos / 1000:g}µs"
    if nanos < SECOND:
        return f"{nanos / 1_000_000:g}ms"
    seconds = nanos / SECOND
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{int(minutes)}m{text}"
    return text


# ------------------------------------------------------------------ the monitor's side


@dataclass
class _Probe:
    helper_pid: int
    pidfd: int
    out_fd: int
    started: float
    output: bytearray
    timed_out: bool = False


class HealthMonitor:
    """One container's check while it runs; the monitor polls it as a service."""

    def __init__(self, cid: str, directory: Path, check: Check, started_at: float) -> None:
        self.cid = cid
        self.directory = directory
        self.check = check
        self.started_at = started_at
        self.selector = selectors.DefaultSelector()
        self.timer = syscalls.timerfd_create()
        self.selector.register(self.timer, selectors.EVENT_READ, "timer")
        self.probe: _Probe | None = None
        previous = read(directory) or {}
        # A (re)start begins again at "starting" but keeps the log, as dockerd does.
        self.health: dict[str, Any] = {
            "Status": STARTING,
            "FailingStreak": 0,
            "Log": list(previous.get("Log") or []),
        }
        self._save()
        syscalls.timerfd_settime(self.timer, self._next_delay())

    @classmethod
    def start(cls, record: Any, started_at: float) -> HealthMonitor | None:
        check = effective(record.spec, record.image_config)
        if check is None:
            return None
        return cls(record.id, record.directory, check, started_at)

    def fileno(self) -> int:
        return self.selector.fileno()

    def on_readable(self) -> None:
        try:
            for key, _ in self.selector.select(0):
                if key.data == "timer":
                    self._on_timer()
                elif key.data == "output":
                    self._read_output()
                elif key.data == "exit":
                    self._on_probe_exit()
        except (MoorageError, OSError):
            # A failed check (say, health.json on a full disk) must not take the
            # container's monitor down with it: log it, try again next interval.
            traceback.print_exc()
            if self.probe is None:
                syscalls.timerfd_settime(self.timer, self._next_delay())

    def close(self) -> None:
        """Stop checking: kill a probe in flight and release every fd."""
        if self.probe:
            self._kill_probe(self.probe)
            self._forget_probe(self.probe, reap_within=1.0)
        self.selector.close()
        os.close(self.timer)

    # -- scheduling

    def _next_delay(self) -> float:
        """Interval between probes; StartInterval while starting within the start period."""
        check = self.check
        in_start_period = time.time() - self.started_at < check.start_period / SECOND
        if self.health["Status"] == STARTING and in_start_period and check.start_interval:
            return check.start_interval / SECOND
        return check.interval / SECOND

    def _on_timer(self) -> None:
        try:
            os.read(self.timer, 8)
        except BlockingIOError:
            return
        probe = self.probe
        if probe is None:
            self._start_probe()
        elif not probe.timed_out:
            self._kill_probe(probe)
            probe.timed_out = True
            self._close_output(probe)
            self._record(
                probe.started,
                -1,
                f"Health check exceeded timeout ({go_duration(self.check.timeout)})",
            )
            syscalls.timerfd_settime(self.timer, self._next_delay())
        else:  # the killed probe has not exited yet (a frozen cgroup): skip this round
            self._kill_probe(probe)
            syscalls.timerfd_settime(self.timer, self._next_delay())

    # -- one probe

    def _start_probe(self) -> None:
        started = time.time()
        read_fd, write_fd = os.pipe()
        try:
            # Imported here: every monitor and `ps` imports this module, few probe.
            from runtime import exec as exec_module

            process = exec_module.exec_process(
                self.cid, list(self.check.argv), stdin=-1, stdout=write_fd, stderr=write_fd
            )
        except (MoorageError, OSError) as e:
            os.close(read_fd)
            os.close(write_fd)
            self._record(started, -1, str(e))
            syscalls.timerfd_settime(self.timer, self._next_delay())
            return
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        probe = _Probe(
            process.helper_pid, os.pidfd_open(process.helper_pid), read_fd, started, bytearray()
        )
        self.probe = probe
        self.selector.register(read_fd, selectors.EVENT_READ, "output")
        self.selector.register(probe.pidfd, selectors.EVENT_READ, "exit")
        syscalls.timerfd_settime(self.timer, self.check.timeout / SECOND)

    def _read_output(self) -> bool:
        probe = self.probe
        if probe is None or probe.out_fd < 0:
            return False
        try:
            data = os.read(probe.out_fd, 65536)
        except BlockingIOError:
            return False
        if not data:
            self._close_output(probe)
            return False
        # Read on past the cap: a probe blocked on a full pipe would only time out.
        room = MAX_OUTPUT - len(probe.output)
        if room > 0:
            probe.output += data[:room]
        return True

    def _on_probe_exit(self) -> None:
        probe = self.probe
        if probe is None:
            return
        while self._read_output():  # what it printed before exiting
            pass
        code = self._forget_probe(probe, reap_within=None)
        if probe.timed_out:
            return  # already recorded as a timeout when it was killed
        self._record(probe.started, code, probe.output.decode(errors="replace"))
        syscalls.timerfd_settime(self.timer, self._next_delay())

    def _close_output(self, probe: _Probe) -> None:
        if probe.out_fd >= 0:
            self.selector.unregister(probe.out_fd)
            os.close(probe.out_fd)
            probe.out_fd = -1

    def _kill_probe(self, probe: _Probe) -> None:
        """SIGKILL the probe's process group, then its helper (which would reap it)."""
        try:
            with open(f"/proc/{probe.helper_pid}/task/{probe.helper_pid}/children") as f:
                children = [int(p) for p in f.read().split()]
        except OSError:
            children = []
        for child in children:  # the command called setsid(): its pgid is its pid
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child, signal.SIGKILL)
        if not children:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(probe.pidfd, signal.SIGKILL)

    def _forget_probe(self, probe: _Probe, reap_within: float | None) -> int:
        """Reap the helper (waiting at most ``reap_within`` seconds if given); its exit code."""
        self._close_output(probe)
        code = -1
        deadline = time.monotonic() + (reap_within or 0.0)
        while True:
            try:
                pid, status = os.waitpid(probe.helper_pid, 0 if reap_within is None else os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                code = os.waitstatus_to_exitcode(status)
                code = 128 - code if code < 0 else code
                break
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(probe.pidfd, signal.SIGKILL)
                break
            time.sleep(0.02)
        self.selector.unregister(probe.pidfd)
        os.close(probe.pidfd)
        self.probe = None
        return code

    # -- results

    def _record(self, started: float, code: int, output: str) -> None:
        """dockerd's handleProbeResult: streaks, the start period, the last five results."""
        health = self.health
        if code == 0:
            health["FailingStreak"] = 0
            health["Status"] = HEALTHY
        else:
            in_start_period = started - self.started_at < self.check.start_period / SECOND
            if not (health["Status"] == STARTING and in_start_period):
                health["FailingStreak"] += 1
                if health["FailingStreak"] >= self.check.retries:
                    health["Status"] = UNHEALTHY
        entry = {
            "Start": logs.timestamp(started),
            "End": logs.timestamp(time.time()),
            "ExitCode": code,
            "Output": output,
        }
        health["Log"] = (health["Log"] + [entry])[-MAX_LOG_ENTRIES:]
        self._save()

    def _save(self) -> None:
        state.write_json(health_path(self.directory), self.health)

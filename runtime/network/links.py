"""Bridges, veth pairs, addresses and routes, through rtnetlink.

Drives rtnetlink(7) in the host network namespace and, for a container's side, inside
its namespace: ``inside(pid)`` setns(2)es the calling thread into ``/proc/<pid>/ns/net``
and back (the network namespace is per thread, so this is safe on the monitor's single
thread and on a CLI). Owns no files. Never names a link itself: callers pass names made
from ``paths.link_prefix()`` so ``gc`` and the tests can find them. "Already gone"
(ENODEV, ENOENT) counts as success when deleting.

Everything a container start or stop does goes through ``netlink`` (a small client of
our own); pyroute2, whose import costs a quarter of a second, is imported only by
``names_inside`` (``network connect``), which no start needs.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from typing import Any

from runtime import syscalls
from runtime.errors import KernelError
from runtime.network import netlink
from runtime.network.netlink import Netlink


@contextlib.contextmanager
def _iproute(operation: str) -> Iterator[Any]:
    """pyroute2's IPRoute, imported here only, with its errors translated."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError
    try:
        with IPRoute() as ip:
            yield ip
    except NetlinkError as e:
        raise KernelError(operation, int(e.code or 0), str(e)) from e
    except OSError as e:
        raise KernelError.from_oserror(operation, e) from e


@contextlib.contextmanager
def inside(pid: int) -> Iterator[None]:
    """Run the block in the network namespace of ``pid``, then come back."""
    try:
        host = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise KernelError.from_oserror("open host network namespace", e) from e
    try:
        try:
            target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise KernelError.from_oserror("open container network namespace", e) from e
        try:
            syscalls.setns(target, syscalls.CLONE_NEWNET)
        finally:
            os.close(target)
        try:
            yield
        finally:
            syscalls.setns(host, syscalls.CLONE_NEWNET)
    finally:
        os.close(host)


def exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def names() -> list[str]:
    """Every link of the host namespace (sysfs, mounted in it: no netlink needed)."""
    try:
        return sorted(os.listdir("/sys/class/net"))
    except FileNotFoundError:
        return []


def ensure_bridge(name: str, gateway: str, prefixlen: int) -> bool:
    """Make the bridge with the gateway address and bring it up; True if it was made."""
    if exists(name):
        return False
    with Netlink() as nl:
        try:
            nl.request(netlink.new_link(name, "bridge"))
        except KernelError as e:
            if e.errno != errno.EEXIST:   # a concurrent start made it first
                raise
            return False
        nl.request(netlink.new_address(nl.index(name), gateway, prefixlen))
        nl.request(netlink.set_up(name))
    return True


def delete(name: str) -> bool:
    """Delete a link (a veth takes its peer along); False if it was not there."""
    with Netlink() as nl:
        return nl.delete(name)


def add_veth(host_name: str, bridge: str, pid: int, ifname: str, mac: str) -> None:
    """A veth pair: ``host_name`` up on ``bridge``, its peer ``ifname`` (MAC ``mac``,
    down until ``configure_inside``) in ``pid``'s netns. One message: all or nothing."""
    with Netlink() as nl:
        nl.request(netlink.new_veth(host_name, ifname, pid, mac, nl.index(bridge)))


def configure_inside(pid: int, ifname: str, address: str, prefixlen: int,
                     gateway: str | None) -> None:
    """Address ``ifname`` inside the container, bring it up, route by ``gateway`` if set."""
    # The socket must be opened after the setns: it stays in the namespace it began in.
    with inside(pid), Netlink() as nl:
        # lo too, now rather than when the init gets there: the embedded DNS server
        # binds 127.0.0.11 in here before the init runs.
        nl.request(netlink.set_up("lo"))
        index = nl.index(ifname)
        nl.request(netlink.new_address(index, address, prefixlen))
        nl.request(netlink.set_up(ifname, index))
        if gateway:
            nl.request(netlink.replace_default_route(index, gateway))


def names_inside(pid: int) -> list[str]:
    # Not sysfs: /sys shows the namespace it was mounted in, not the thread's.
    with inside(pid), _iproute("list links in container") as ip:
        return [link.get_attr("IFLA_IFNAME") for link in ip.get_links()]


def enable_forwarding() -> None:
    """Routing between the bridges and the host's uplink needs ip_forward (as dockerd)."""
    path = "/proc/sys/net/ipv4/ip_forward"
    try:
        with open(path) as f:
            if f.read().strip() == "1":
                return
        with open(path, "w") as f:
            f.write("1\n")
    except OSError as e:
        raise KernelError.from_oserror("enable ip_forward", e) from e

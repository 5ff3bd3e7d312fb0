"""Bridges, veth pairs, addresses and routes, through rtnetlink.

Drives rtnetlink(7) in the host network namespace and, for a container's side, inside
its namespace: ``inside(pid)`` setns(2)es the calling thread into ``/proc/<pid>/ns/net``
and back (the network namespace is per thread, so this is safe on the monitor's single
thread and on a CLI). Owns no files. Never names a link itself: callers pass names made
from ``paths.link_prefix()`` so ``gc`` and the tests can find them. "Already gone"
(ENODEV, ENOENT) counts as success when deleting.

Everything goes through ``netlink`` (a small client of our own): pyroute2's import
costs a quarter of a second. IPv6 addresses are added only on networks created with
``--ipv6``; ``ipv6_available`` probes whether the host allows them at all.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator

from runtime import syscalls
from runtime.errors import KernelError, MissingFeature
from runtime.network import netlink
from runtime.network.netlink import Netlink


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


def ensure_bridge(
    name: str, gateway: str, prefixlen: int, gateway6: str = "", prefixlen6: int = 0
) -> bool:
    """Make the bridge with the gateway address(es) and bring it up; True if made."""
    if exists(name):
        return False
    with Netlink() as nl:
        try:
            nl.request(netlink.new_link(name, "bridge"))
        except KernelError as e:
            if e.errno != errno.EEXIST:  # a concurrent start made it first
                raise
            return False
        index = nl.index(name)
        nl.request(netlink.new_address(index, gateway, prefixlen))
        if gateway6:
            _enable_ipv6(name)
            nl.request(netlink.new_address(index, gateway6, prefixlen6))
        nl.request(netlink.set_up(name))
    return True


def ipv6_available() -> bool:
    """Whether this network namespace takes IPv6 addresses (the module is loaded and
    ``net.ipv6.conf.all.disable_ipv6`` is 0)."""
    try:
        with open("/proc/sys/net/ipv6/conf/all/disable_ipv6") as f:
            return f.read().strip() == "0"
    except OSError:
        return False


def _enable_ipv6(ifname: str) -> None:
    """Clear ``disable_ipv6`` on one link (the thread's namespace: /proc/sys/net is the
    opener's), as dockerd does for the links of an IPv6 network; write only if set."""
    try:
        _sysctl(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6", "0", f"enable IPv6 on {ifname}")
    except KernelError as e:
        if e.errno != errno.ENOENT:
            raise
        raise MissingFeature(
            "ipv6", errno.EAFNOSUPPORT, "this kernel has no IPv6: the network cannot be used"
        ) from e


def _sysctl(path: str, value: str, operation: str) -> None:
    """Write ``value`` unless it is there already (a write costs more than a read)."""
    try:
        with open(path) as f:
            if f.read().strip() == value:
                return
        with open(path, "w") as f:
            f.write(value + "\n")
    except OSError as e:
        raise KernelError.from_oserror(operation, e) from e


def delete(name: str) -> bool:
    """Delete a link (a veth takes its peer along); False if it was not there."""
    with Netlink() as nl:
        return nl.delete(name)


def add_veth(host_name: str, bridge: str, pid: int, ifname: str, mac: str) -> None:
    """A veth pair: ``host_name`` up on ``bridge``, its peer ``ifname`` (MAC ``mac``,
    down until ``configure_inside``) in ``pid``'s netns. One message: all or nothing."""
    with Netlink() as nl:
        nl.request(netlink.new_veth(host_name, ifname, pid, mac, nl.index(bridge)))


def configure_inside(
    pid: int,
    ifname: str,
    address: str,
    prefixlen: int,
    gateway: str | None,
    address6: str = "",
    prefixlen6: int = 0,
    gateway6: str | None = None,
) -> None:
    """Address ``ifname`` inside the container (and ``address6`` if set), bring it up,
    route by ``gateway`` (and ``gateway6``) if set."""
    # The socket must be opened after the setns: it stays in the namespace it began in.
    with inside(pid), Netlink() as nl:
        # lo too, now rather than when the init gets there: the embedded DNS server
        # binds 127.0.0.11 in here before the init runs.
        nl.request(netlink.set_up("lo"))
        index = nl.index(ifname)
        nl.request(netlink.new_address(index, address, prefixlen))
        if address6:
            _enable_ipv6(ifname)
            nl.request(netlink.new_address(index, address6, prefixlen6))
        nl.request(netlink.set_up(ifname, index))
        if gateway:
            nl.request(netlink.replace_default_route(index, gateway))
        if gateway6 and address6:
            nl.request(netlink.replace_default_route(index, gateway6))


def enable_forwarding() -> None:
    """Routing between the bridges and the host's uplink needs ip_forward (as dockerd)."""
    _sysctl("/proc/sys/net/ipv4/ip_forward", "1", "enable ip_forward")

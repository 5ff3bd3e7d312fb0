"""A small rtnetlink(7) client for the per-container hot path: veths, addresses, routes.

Why it exists: every container start on a bridge network plugs a veth pair, and
``import pyroute2`` alone took ~265 ms in the monitor (``python -X importtime``:
pyroute2/__init__ imports every protocol it speaks, ndb, ipdb, conntrack and asyncio
with them), more than half of what ``docker run --rm busybox true`` takes in all
(~480 ms). This module
needs ``socket`` and ``struct`` only, and speaks the few messages a start and a stop
send, on a plain ``socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)``:

- ``RTM_NEWLINK``: a veth pair (``IFLA_LINKINFO`` → ``IFLA_INFO_KIND`` "veth",
  ``IFLA_INFO_DATA`` → ``VETH_INFO_PEER`` with its own ifinfomsg, name, MAC and
  ``IFLA_NET_NS_PID``), host end already on its bridge (``IFLA_MASTER``) and up; a
  bridge.
- ``RTM_SETLINK``: a link up, by index or name. ``RTM_DELLINK``: a link, by name (a
  veth takes its peer along). ``RTM_GETLINK``: a link's index, by name.
- ``RTM_NEWADDR``: an IPv4 address with its broadcast, as ``ip addr add ... brd +``; an
  IPv6 address with ``IFA_F_NODAD`` (as Docker: usable at once, not after the ~2 s of
  duplicate address detection, which on a bridge of our own can find nobody).
- ``RTM_NEWROUTE``: replace the IPv4 or IPv6 default route.

Every request carries ``NLM_F_ACK`` and its own sequence number; an ``NLMSG_ERROR``
with an errno becomes ``KernelError``, with the kernel's reason when it gives one
(``NETLINK_EXT_ACK``). A socket talks to the network namespace its
thread was in when it was opened, so open one inside ``links.inside(pid)`` to configure
a container. The message builders are pure functions (the unit tests compare their
bytes with pyroute2's encoding); ``Netlink`` sends them. Owns no files; never dumps
tables (``links`` keeps pyroute2 for listing, which no start needs).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from typing import NamedTuple

from runtime.errors import KernelError

NETLINK_ROUTE = 0

NLMSG_ERROR = 2
NLMSG_DONE = 3

SOL_NETLINK = 270
NETLINK_CAP_ACK = 10  # the kernel echoes only our header in an error, not the body
NETLINK_EXT_ACK = 11  # ... and adds its own sentence ("Unknown device type", ...)
NLM_F_CAPPED = 0x100  # in an NLMSG_ERROR's header
NLM_F_ACK_TLVS = 0x200
NLMSGERR_ATTR_MSG = 1

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400

RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_SETLINK = 19
RTM_NEWADDR = 20
RTM_NEWROUTE = 24

IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MASTER = 10
IFLA_LINKINFO = 18
IFLA_NET_NS_PID = 19
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1

IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_BROADCAST = 4

IFA_F_NODAD = 0x02

RTA_OIF = 4
RTA_GATEWAY = 5
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3  # what ``ip route`` leaves unsaid, as on a Docker container
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1

IFF_UP = 0x1

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")  # family, pad, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table,
#                                          protocol, scope, type, flags
_RTATTR = struct.Struct("=HH")  # len, type
_ERRNO = struct.Struct("=i")


class Request(NamedTuple):
    """One rtnetlink request, everything but the header's length and sequence."""

    type: int
    flags: int
    body: bytes
    operation: str  # for the KernelError: "create veth mf-1234", ...


def _align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, value: bytes) -> bytes:
    """An rtattr: header, value, padding to 4 bytes (the length leaves the padding out)."""
    length = _RTATTR.size + len(value)
    return _RTATTR.pack(length, kind) + value + b"\0" * (_align(length) - length)


def text(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def ifinfomsg(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, change)


def encode(request: Request, seq: int) -> bytes:
    """The bytes to send: nlmsghdr (``NLM_F_REQUEST | NLM_F_ACK`` added) and the body."""
    flags = request.flags | NLM_F_REQUEST | NLM_F_ACK
    return (
        _NLMSGHDR.pack(_NLMSGHDR.size + len(request.body), request.type, flags, seq, 0)
        + request.body
    )


def _mac(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def new_veth(name: str, peer: str, peer_pid: int, peer_mac: str, master: int) -> Request:
    """``name`` on bridge ``master`` and up; ``peer`` in ``peer_pid``'s netns, down.

    The peer cannot be brought up in the same message: the kernel opens it before it
    has linked the two ends and fails with ENOTCONN.
    """
    peer_body = (
        ifinfomsg()
        + text(IFLA_IFNAME, peer)
        + attr(IFLA_ADDRESS, _mac(peer_mac))
        + u32(IFLA_NET_NS_PID, peer_pid)
    )
    info = text(IFLA_INFO_KIND, "veth") + attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_body))
    body = (
        ifinfomsg(flags=IFF_UP, change=IFF_UP)
        + text(IFLA_IFNAME, name)
        + u32(IFLA_MASTER, master)
        + attr(IFLA_LINKINFO, info)
    )
    return Request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, f"create veth {name}")


def new_link(name: str, kind: str) -> Request:
    """A link of ``kind`` with its defaults (a bridge: no STP), down."""
    body = ifinfomsg() + text(IFLA_IFNAME, name) + attr(IFLA_LINKINFO, text(IFLA_INFO_KIND, kind))
    return Request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, f"create {kind} {name}")


def set_up(name: str, index: int = 0) -> Request:
    """Link ``index``, or when 0 the link called ``name``, up."""
    body = ifinfomsg(index, flags=IFF_UP, change=IFF_UP) + (
        b"" if index else text(IFLA_IFNAME, name)
    )
    return Request(RTM_SETLINK, 0, body, f"set link {name} up")


def del_link(name: str) -> Request:
    return Request(RTM_DELLINK, 0, ifinfomsg() + text(IFLA_IFNAME, name), f"delete link {name}")


def get_link(name: str) -> Request:
    return Request(RTM_GETLINK, 0, ifinfomsg() + text(IFLA_IFNAME, name), f"look up link {name}")


def new_address(index: int, address: str, prefixlen: int) -> Request:
    """An address on link ``index``: IPv4 with the subnet's broadcast below /31, IPv6
    without duplicate address detection."""
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        body = _IFADDRMSG.pack(
            socket.AF_INET6, prefixlen, IFA_F_NODAD, RT_SCOPE_UNIVERSE, index
        ) + attr(IFA_ADDRESS, ip.packed)
        return Request(
            RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, f"add address {address}/{prefixlen}"
        )
    body = (
        _IFADDRMSG.pack(socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
        + attr(IFA_LOCAL, ip.packed)
        + attr(IFA_ADDRESS, ip.packed)
    )
    if prefixlen < 31:
        network = ipaddress.IPv4Network(f"{address}/{prefixlen}", strict=False)
        body += attr(IFA_BROADCAST, network.broadcast_address.packed)
    return Request(
        RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, f"add address {address}/{prefixlen}"
    )


def replace_default_route(index: int, gateway: str) -> Request:
    ip = ipaddress.ip_address(gateway)
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    body = (
        _RTMSG.pack(family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
        + attr(RTA_GATEWAY, ip.packed)
        + u32(RTA_OIF, index)
    )
    return Request(
        RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, body, f"set default route via {gateway}"
    )


class Netlink:
    """One NETLINK_ROUTE socket, in the network namespace of the thread that opened it."""

    def __init__(self) -> None:
        try:
            self.sock = socket.socket(
                socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE
            )
            self.sock.bind((0, 0))
            for option in (NETLINK_CAP_ACK, NETLINK_EXT_ACK):
                self.sock.setsockopt(SOL_NETLINK, option, 1)
        except OSError as e:
            raise KernelError.from_oserror("open rtnetlink socket", e) from e
        self.seq = 0

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def request(self, request: Request) -> list[bytes]:
        """Send, wait for the ack; returns the replies' payloads (nlmsghdr cut off)."""
        self.seq += 1
        seq = self.seq
        try:
            self.sock.sendto(encode(request, seq), (0, 0))  # (0, 0): the kernel
            replies: list[bytes] = []
            while True:
                data = self.sock.recv(65536)
                offset = 0
                while offset + _NLMSGHDR.size <= len(data):
                    length, kind, flags, got_seq, _ = _NLMSGHDR.unpack_from(data, offset)
                    payload = data[offset + _NLMSGHDR.size : offset + length]
                    offset += _align(length) if length else len(data)
                    if got_seq != seq:
                        continue  # an answer to an earlier request given up on
                    if kind == NLMSG_ERROR:
                        err = -_ERRNO.unpack_from(payload)[0]
                        if err:
                            raise KernelError(request.operation, err, _extended_ack(payload, flags))
                        return replies
                    if kind == NLMSG_DONE:
                        return replies
                    replies.append(payload)
        except OSError as e:
            raise KernelError.from_oserror(request.operation, e) from e

    def index(self, name: str) -> int:
        """The index of link ``name``; KernelError with ENODEV if there is none."""
        reply = self.request(get_link(name))[0]
        return int(_IFINFOMSG.unpack_from(reply)[2])

    def delete(self, name: str) -> bool:
        """Delete link ``name``; False if it was not there (ENODEV)."""
        try:
            self.request(del_link(name))
        except KernelError as e:
            if e.errno in (errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True


def _extended_ack(payload: bytes, flags: int) -> str:
    """The kernel's sentence about an error (NETLINK_EXT_ACK), or ""."""
    if not flags & NLM_F_ACK_TLVS:
        return ""
    echoed = _NLMSGHDR.size if flags & NLM_F_CAPPED else _NLMSGHDR.unpack_from(payload, 4)[0]
    offset = 4 + _align(echoed)
    while offset + _RTATTR.size <= len(payload):
        length, kind = _RTATTR.unpack_from(payload, offset)
        if length < _RTATTR.size:
            break
        if kind == NLMSGERR_ATTR_MSG:
            return (
                payload[offset + _RTATTR.size : offset + length]
                .rstrip(b"\0")
                .decode(errors="replace")
            )
        offset += _align(length)
    return ""

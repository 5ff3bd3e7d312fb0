"""The rtnetlink messages of runtime.network.netlink, byte for byte against pyroute2.

pyroute2 is a fair oracle: it is the encoder the hot path used before, and the kernel
accepted its messages. Each test builds the same message both ways (same attributes in
the same order) and compares the bytes, header included.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from runtime.network import netlink

SEQ = 42
REQUEST_ACK = netlink.NLM_F_REQUEST | netlink.NLM_F_ACK
CREATE_EXCL = REQUEST_ACK | netlink.NLM_F_CREATE | netlink.NLM_F_EXCL


def pyroute2_bytes(msg: Any, kind: int, header_flags: int, /, **fields: Any) -> bytes:
    for key, value in fields.items():
        msg[key] = value
    msg["header"]["type"] = kind
    msg["header"]["flags"] = header_flags
    msg["header"]["sequence_number"] = SEQ
    msg.encode()
    return bytes(msg.data)


def test_a_veth_pair_into_a_pid_namespace_encodes_as_pyroute2_does() -> None:
    ours = netlink.encode(
        netlink.new_veth("mf-1234abcd", "eth0", 4321, "02:42:0a:f5:00:02", 7), SEQ
    )
    peer = {
        "attrs": [
            ("IFLA_IFNAME", "eth0"),
            ("IFLA_ADDRESS", "02:42:0a:f5:00:02"),
            ("IFLA_NET_NS_PID", 4321),
        ]
    }
    theirs = pyroute2_bytes(
        ifinfmsg(),
        netlink.RTM_NEWLINK,
        CREATE_EXCL,
        flags=1,
        change=1,
        attrs=[
            ("IFLA_IFNAME", "mf-1234abcd"),
            ("IFLA_MASTER", 7),
            (
                "IFLA_LINKINFO",
                {
                    "attrs": [
                        ("IFLA_INFO_KIND", "veth"),
                        ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", peer)]}),
                    ]
                },
            ),
        ],
    )
    assert ours == theirs


def test_a_bridge_encodes_as_pyroute2_does() -> None:
    ours = netlink.encode(netlink.new_link("mf-br0", "bridge"), SEQ)
    theirs = pyroute2_bytes(
        ifinfmsg(),
        netlink.RTM_NEWLINK,
        CREATE_EXCL,
        attrs=[
            ("IFLA_IFNAME", "mf-br0"),
            ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]}),
        ],
    )
    assert ours == theirs


def test_link_up_by_name_and_by_index_encode_as_pyroute2_does() -> None:
    by_name = pyroute2_bytes(
        ifinfmsg(),
        netlink.RTM_SETLINK,
        REQUEST_ACK,
        flags=1,
        change=1,
        attrs=[("IFLA_IFNAME", "lo")],
    )
    by_index = pyroute2_bytes(
        ifinfmsg(), netlink.RTM_SETLINK, REQUEST_ACK, index=5, flags=1, change=1, attrs=[]
    )
    assert netlink.encode(netlink.set_up("lo"), SEQ) == by_name
    assert netlink.encode(netlink.set_up("eth0", 5), SEQ) == by_index


@pytest.mark.parametrize(
    ("request_for", "kind"),
    [
        (netlink.del_link, netlink.RTM_DELLINK),
        (netlink.get_link, netlink.RTM_GETLINK),
    ],
)
def test_delete_and_lookup_by_name_encode_as_pyroute2_does(request_for: Any, kind: int) -> None:
    theirs = pyroute2_bytes(
        ifinfmsg(), kind, REQUEST_ACK, attrs=[("IFLA_IFNAME", "mf-a-fifteen-ch")]
    )
    assert netlink.encode(request_for("mf-a-fifteen-ch"), SEQ) == theirs


def test_an_address_carries_local_address_and_broadcast_as_pyroute2_encodes_them() -> None:
    ours = netlink.encode(netlink.new_address(3, "10.245.0.2", 16), SEQ)
    theirs = pyroute2_bytes(
        ifaddrmsg(),
        netlink.RTM_NEWADDR,
        CREATE_EXCL,
        family=socket.AF_INET,
        prefixlen=16,
        index=3,
        attrs=[
            ("IFA_LOCAL", "10.245.0.2"),
            ("IFA_ADDRESS", "10.245.0.2"),
            ("IFA_BROADCAST", "10.245.255.255"),
        ],
    )
    assert ours == theirs


def test_a_point_to_point_address_has_no_broadcast() -> None:
    ours = netlink.encode(netlink.new_address(3, "10.9.0.1", 31), SEQ)
    theirs = pyroute2_bytes(
        ifaddrmsg(),
        netlink.RTM_NEWADDR,
        CREATE_EXCL,
        family=socket.AF_INET,
        prefixlen=31,
        index=3,
        attrs=[("IFA_LOCAL", "10.9.0.1"), ("IFA_ADDRESS", "10.9.0.1")],
    )
    assert ours == theirs


def test_the_default_route_replaces_in_the_main_table_as_pyroute2_encodes_it() -> None:
    ours = netlink.encode(netlink.replace_default_route(2, "10.245.0.1"), SEQ)
    theirs = pyroute2_bytes(
        rtmsg(),
        netlink.RTM_NEWROUTE,
        REQUEST_ACK | netlink.NLM_F_CREATE | netlink.NLM_F_REPLACE,
        family=socket.AF_INET,
        table=254,
        proto=netlink.RTPROT_BOOT,
        scope=0,
        type=1,
        attrs=[("RTA_GATEWAY", "10.245.0.1"), ("RTA_OIF", 2)],
    )
    assert ours == theirs


def test_attributes_are_padded_to_four_bytes_and_their_length_leaves_padding_out() -> None:
    encoded = netlink.text(netlink.IFLA_IFNAME, "eth0")  # 4 + 5 bytes, padded to 12
    assert len(encoded) == 12
    assert struct.unpack_from("=HH", encoded) == (9, netlink.IFLA_IFNAME)
    assert encoded[4:] == b"eth0\0\0\0\0"


def test_the_header_length_counts_the_whole_message() -> None:
    data = netlink.encode(netlink.del_link("x"), 7)
    length, kind, flags, seq, pid = struct.unpack_from("=IHHII", data)
    assert (length, kind, flags, seq, pid) == (len(data), netlink.RTM_DELLINK, REQUEST_ACK, 7, 0)

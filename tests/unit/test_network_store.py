"""Networks on disk, IPAM and the nft script, without root: files and text only."""

from __future__ import annotations

import pytest

from runtime import paths
from runtime.errors import Conflict, InvalidSpec, NameInUse, NotFound
from runtime.network import ipam, nat, store


@pytest.fixture(autouse=True)
def private_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MOORAGE_ROOT", str(tmp_path))
    monkeypatch.setenv("MOORAGE_DEFAULT_SUBNET", "10.231.0.0/16")
    monkeypatch.setenv("MOORAGE_ADDRESS_POOL", "10.232.0.0/14")
    monkeypatch.setattr(store, "_host_routes", lambda: [])


def test_the_built_in_networks_exist_on_first_use():
    names = [n.name for n in store.list_networks()]
    assert names == ["bridge", "host", "none"]
    bridge = store.get("bridge")
    assert (bridge.subnet, bridge.gateway) == ("10.231.0.0/16", "10.231.0.1")
    assert store.get(bridge.id[:6]).name == "bridge"
    assert not bridge.user_defined and store.get("none").driver == "null"


def test_new_networks_take_the_next_free_16_from_the_pool():
    first = store.create("one")
    second = store.create("two")
    assert (first.subnet, second.subnet) == ("10.232.0.0/16", "10.233.0.0/16")
    assert first.bridge.startswith(paths.link_prefix() + "br-") and len(first.bridge) <= 15


@pytest.mark.parametrize(
    "subnet, error",
    [
        ("10.231.4.0/24", "overlaps"),
        ("10.300.0.0/16", "invalid CIDR"),
        ("10.240.0.0", "invalid CIDR"),
        ("fd00::/64", "invalid CIDR"),
    ],
)
def test_bad_or_overlapping_subnets_are_refused(subnet, error):
    with pytest.raises(InvalidSpec, match=error):
        store.create("bad", subnet=subnet)
    with pytest.raises(NotFound):
        store.get("bad")


def test_a_name_is_taken_once_and_a_gateway_must_be_inside():
    store.create("dup", subnet="10.240.0.0/24")
    with pytest.raises(NameInUse):
        store.create("dup", subnet="10.241.0.0/24")
    with pytest.raises(InvalidSpec, match="not within subnet"):
        store.create("gw", subnet="10.242.0.0/24", gateway="10.243.0.1")


def test_ipam_gives_distinct_addresses_honours_requests_and_releases():
    network = store.create("pool", subnet="10.240.1.0/29", ip_range="10.240.1.0/29")
    a = ipam.allocate(network, "a" * 64)
    b = ipam.allocate(network, "b" * 64)
    assert (a, b) == ("10.240.1.2", "10.240.1.3")
    assert ipam.allocate(network, "c" * 64, "10.240.1.6") == "10.240.1.6"
    with pytest.raises(Conflict, match="already in use"):
        ipam.allocate(network, "d" * 64, "10.240.1.6")
    with pytest.raises(InvalidSpec, match="does not belong"):
        ipam.allocate(network, "d" * 64, "10.240.2.6")
    ipam.allocate(network, "d" * 64)
    ipam.allocate(network, "e" * 64)
    with pytest.raises(Conflict, match="no available"):
        ipam.allocate(network, "f" * 64)
    assert ipam.release(network, "a" * 64) == ["10.240.1.2"]
    assert ipam.allocate(network, "f" * 64) == "10.240.1.2"
    assert ipam.release_unless(network, {"f" * 64}) and ipam.allocations(network) == {
        "10.240.1.2": "f" * 64
    }


def test_requested_addresses_only_on_user_networks():
    with pytest.raises(InvalidSpec, match="user defined networks only"):
        ipam.check_requested(store.get("bridge"), "10.231.0.9")


def test_the_nft_script_masquerades_isolates_and_seals_internal_networks():
    open_net = store.create("open", subnet="10.240.2.0/24")
    sealed = store.create("sealed", subnet="10.240.3.0/24", internal=True)
    text = nat.script([store.get("bridge"), open_net, sealed])
    assert text.startswith(f"table ip {nat.table()} {{}}\nflush table ip {nat.table()}\n")
    assert f'ip saddr 10.240.2.0/24 oifname != "{open_net.bridge}" masquerade' in text
    assert "10.240.3.0/24" not in text  # no egress for the internal one
    assert (
        f'iifname "{open_net.bridge}" oifname != "{open_net.bridge}" oifname @bridges drop' in text
    )
    assert f'iifname "{sealed.bridge}" oifname != "{sealed.bridge}" drop' in text

"""One validator for every frame a test sees leaving the dataplane (VPP ``assert_packet_checksums_valid``).

``assert_valid(frame)`` parses the frame with scapy and checks, layer by layer, that every length
field agrees with the bytes that follow it and that every checksum (IPv4 header, TCP, UDP, ICMP,
ICMPv6, at any tunnel depth) equals what scapy recomputes. It returns the parsed packet, so a
test reads ``pkt = assert_valid(frame)`` and goes on asserting fields.

Ethernet padding is accepted only up to the 60-byte minimum frame, and only when asked for: our
dataplane trims frames to their IP packet, so its output normally has none.
"""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, _ICMPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet
from scapy.utils import checksum

ETHER_MIN = 60  # shortest Ethernet frame without FCS


def assert_valid(frame: bytes, *, allow_padding: bool = False) -> Ether:
    """Assert every length and checksum in ``frame`` is right; return it parsed."""
    pkt = Ether(frame)
    payload = pkt.payload
    if isinstance(payload, ARP):
        assert len(frame) >= 14 + 28, f"ARP frame of {len(frame)} bytes"
        return pkt
    assert isinstance(payload, (IP, IPv6)), f"not IP: {pkt.summary()}"
    extra = len(frame) - 14 - _ip_length(payload)
    padded_ok = allow_padding and len(frame) == ETHER_MIN and extra > 0
    assert extra == 0 or padded_ok, (
        f"{len(frame) - 14} bytes after Ethernet, the IP header says {extra} fewer"
    )
    _check_ip(payload)
    return pkt


def _ip_length(layer: Packet) -> int:
    return int(layer.len) if isinstance(layer, IP) else 40 + int(layer.plen)


def _check_ip(layer: Packet) -> None:
    """Check one IP layer (its header, lengths, and what it carries, recursively for tunnels)."""
    raw = bytes(layer)
    if isinstance(layer, IP):
        header = int(layer.ihl) * 4
        assert header >= 20, f"IPv4 IHL {layer.ihl}"
        assert checksum(raw[:header]) == 0, f"IPv4 header checksum {layer.chksum:#06x} is wrong"
    else:
        header = 40
    assert _ip_length(layer) <= len(raw), f"IP length {_ip_length(layer)} beyond the {len(raw)} bytes there"
    inner = layer.payload
    if isinstance(inner, (IP, IPv6)):
        assert _ip_length(inner) == _ip_length(layer) - header, (
            "inner packet does not fill the tunnel payload"
        )
        _check_ip(inner)
        return
    if isinstance(inner, UDP):
        assert int(inner.len) == len(bytes(inner)), f"UDP length {inner.len} != {len(bytes(inner))} bytes"
        if isinstance(layer, IP) and inner.chksum == 0:
            return  # no checksum over IPv4 (RFC 768)
    if isinstance(inner, (TCP, UDP, ICMP)):
        _recomputed_equal(layer, type(inner), "chksum")
    elif isinstance(inner, _ICMPv6):
        _recomputed_equal(layer, type(inner), "cksum")


def _recomputed_equal(ip_layer: Packet, cls: type[Packet], field: str) -> None:
    """The transport checksum under ``ip_layer`` equals scapy's recomputation (pseudo-header included)."""
    probe = ip_layer.copy()
    got = getattr(probe[cls], field)
    setattr(probe[cls], field, None)
    want = getattr(type(ip_layer)(bytes(probe))[cls], field)
    assert got == want, f"{cls.__name__} checksum {got:#06x}, expected {want:#06x}"

"""dhcp: the DHCPv4 server that gives each VM its one address (DPSERVICE.md §4.2).

In:  IPv4 UDP frames to port 67 from a VF (``conntrack`` sends them here).
Out: ``tx`` back to the rx port with the OFFER (for a DISCOVER) or ACK (for any REQUEST: there are
     no leases to track, the address is the interface's); drop otherwise.

The VM gets a /32 (mask 255.255.255.255), an infinite lease and, through option 121 (RFC 3442), a
link route to 169.254.0.0/16 plus a default route via the gateway 169.254.0.1, so it reaches
the gateway without an on-link subnet. Options go out in dpservice's order: 53, 51, 54, 121, 1,
26, 3 (PXE only), 6, 12, 255. A REQUEST teaches the port's VM MAC (its Ethernet source).

PXE: option 77 exactly ``iPXE`` asks for the HTTP boot file, option 60 containing
``PXEClient:Arch:00007`` for the TFTP loader; the last such option in the request wins. Differences
from dpservice, on purpose: dpservice keeps the detected PXE mode in a *static* variable, so after one
PXE request every later request on any port gets PXE answers; here the mode is per request. And a
PXE request on an interface without an IPv4 PXE server gets the plain answer (dpservice would
write whatever its address union held into siaddr and the file URL).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from ipaddress import IPv4Address, IPv4Network

from kubevpc_agent.config import AgentConfig
from kubevpc_agent.graph.batch import Batch
from kubevpc_agent.protocols.dhcp import (
    BOOTP_LEN,
    IPXE_USER_CLASS,
    MAGIC_COOKIE,
    PXE_TFTP_PATH,
    PXE_VENDOR_CLASS,
    Bootp,
    BootpOp,
    MessageType,
    OptionCode,
    PxeMode,
    build_option,
    build_reply_frame,
    encode_classless_routes,
    parse_bootp,
    parse_options,
)
from kubevpc_agent.protocols.ether import ETHER_LEN, EtherType
from kubevpc_agent.protocols.ipv4 import FRAGMENT_MASK, IPV4, IPV4_LEN
from kubevpc_agent.protocols.udp import DHCP_SERVER_PORT, UDP, UDP_LEN
from kubevpc_agent.protocols.udp import PROTO as UDP_PROTO
from kubevpc_agent.tables.model import GATEWAY_IPV4, Interface
from kubevpc_agent.tables.responder import GatewayResponder, ReplyNext
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.vm_mac import PortMacs

GATEWAY = GATEWAY_IPV4.packed
BROADCAST_MAC = b"\xff" * 6
BROADCAST_IP = b"\xff" * 4
INFINITE_LEASE = b"\xff\xff\xff\xff"  # seconds; RFC 2131 §3.3: 0xffffffff means infinity
HOST_MASK = b"\xff\xff\xff\xff"  # a /32: the VM has no on-link subnet
# room for options in a 1500-byte frame: 1500 - Ether 14 - IPv4 20 - UDP 8 - BOOTP fixed 240
MAX_OPTIONS_LEN = 1500 - ETHER_LEN - IPV4_LEN - UDP_LEN - BOOTP_LEN
FILE_LEN = 128  # BOOTP ``file`` field, NUL-terminated
LINK_LOCAL = IPv4Network("169.254.0.0/16")
VIRTSVC_NET = IPv4Network("169.254.1.0/24")  # link-local space of virtual services (§4.13)


Next = ReplyNext  # DROP, TX


class Counter(IntEnum):
    OFFERED = 0
    ACKED = 1
    NO_INTERFACE = 2
    NOT_BOOTREQUEST = 3
    UNHANDLED_TYPE = 4
    MALFORMED = 5
    REPLY_TOO_LARGE = 6
    PXE_WITHOUT_IPV4_SERVER = 7


COUNTER_HELP: Mapping[IntEnum, str] = {
    Counter.OFFERED: "DHCPOFFERs sent (answers to DISCOVER)",
    Counter.ACKED: "DHCPACKs sent (answers to REQUEST); each also sets the port's VM MAC",
    Counter.NO_INTERFACE: "Requests on a port without an interface with IPv4, or not from a VF (dropped)",
    Counter.NOT_BOOTREQUEST: "BOOTP messages whose op is not BOOTREQUEST (dropped)",
    Counter.UNHANDLED_TYPE: "Message types other than DISCOVER and REQUEST (dropped)",
    Counter.MALFORMED: "Truncated or inconsistent IPv4/UDP/BOOTP, bad options, no message type (dropped)",
    Counter.REPLY_TOO_LARGE: "Replies whose options would not fit a 1500-byte frame (dropped)",
    Counter.PXE_WITHOUT_IPV4_SERVER: "PXE/iPXE requests answered without boot data: no IPv4 PXE server",
}

REPLY_TYPE: dict[int, MessageType] = {
    MessageType.DISCOVER: MessageType.OFFER,
    MessageType.REQUEST: MessageType.ACK,
}


def detect_pxe_mode(options: list[tuple[int, bytes]]) -> PxeMode:
    """The boot mode the request's class options ask for (the last matching option wins)."""
    mode = PxeMode.NONE
    for code, value in options:
        if code == OptionCode.USER_CLASS and value == IPXE_USER_CLASS:
            mode = PxeMode.HTTP
        elif code == OptionCode.VENDOR_CLASS_ID and PXE_VENDOR_CLASS in value:
            mode = PxeMode.TFTP
    return mode


class Dhcp(GatewayResponder):
    """DHCPv4 server; see the module docstring."""

    name = "dhcp"
    COUNTER_HELP = COUNTER_HELP

    def __init__(
        self, state: AgentState, macs: PortMacs, config: AgentConfig, *, virtual_services: bool = False
    ) -> None:
        """``virtual_services``: the agent runs virtual services, so VMs also get a route to them."""
        super().__init__(state, macs, config)
        routes = [(LINK_LOCAL, IPv4Address(0)), (IPv4Network("0.0.0.0/0"), GATEWAY_IPV4)]
        if virtual_services:
            routes.append((VIRTSVC_NET, GATEWAY_IPV4))
        # the options that are the same for every VM and message type, in reply order after 53 and 51
        self._common_options = (
            build_option(OptionCode.SERVER_ID, GATEWAY)
            + build_option(OptionCode.CLASSLESS_ROUTE, encode_classless_routes(routes))
            + build_option(OptionCode.SUBNET_MASK, HOST_MASK)
            + build_option(OptionCode.INTERFACE_MTU, config.dhcp_mtu.to_bytes(2, "big"))
        )
        dns = b"".join(a.packed for a in config.dhcp_dns)
        self._dns_option = build_option(OptionCode.DNS, dns) if dns else b""

    def answer(self, batch: Batch, i: int) -> tuple[Counter, bytes | None]:
        port_id = int(batch.rx_port[i])
        iface = self.state.interface_by_port(port_id)
        if not self.from_vf(port_id) or iface is None or iface.ipv4 is None:
            return Counter.NO_INTERFACE, None
        frame = bytes(batch.frame(i))

        # Ether + IPv4 + UDP to port 67, bounded by the IPv4 total length (not Ethernet padding)
        if len(frame) < ETHER_LEN + IPV4_LEN + UDP_LEN or frame[12:14] != EtherType.IPV4.to_bytes(2, "big"):
            return Counter.MALFORMED, None
        ver_ihl, tos, total_len, ident, frag, ttl, proto, _, _, _ = IPV4.unpack_from(frame, ETHER_LEN)
        ihl = (ver_ihl & 0x0F) * 4
        end = ETHER_LEN + total_len
        if (
            ver_ihl >> 4 != 4
            or ihl < IPV4_LEN
            or proto != UDP_PROTO
            or end > len(frame)
            or frag & FRAGMENT_MASK
        ):
            return Counter.MALFORMED, None
        udp_at = ETHER_LEN + ihl
        if udp_at + UDP_LEN > end:
            return Counter.MALFORMED, None
        _, dport, _, _ = UDP.unpack_from(frame, udp_at)
        request = parse_bootp(frame[udp_at + UDP_LEN : end])
        if dport != DHCP_SERVER_PORT or request is None:
            return Counter.MALFORMED, None

        if request.op != BootpOp.REQUEST:
            return Counter.NOT_BOOTREQUEST, None
        options = parse_options(frame[udp_at + UDP_LEN + BOOTP_LEN : end])
        msg_type = next((v[0] for c, v in options or () if c == OptionCode.MESSAGE_TYPE and v), None)
        if options is None or msg_type is None:
            return Counter.MALFORMED, None
        reply_type = REPLY_TYPE.get(msg_type)
        if reply_type is None:
            return Counter.UNHANDLED_TYPE, None

        client_mac = frame[6:12]
        pxe_mode = detect_pxe_mode(options)
        if pxe_mode is not PxeMode.NONE and not _has_ipv4_pxe(iface):
            self.tally[Counter.PXE_WITHOUT_IPV4_SERVER] += 1
            pxe_mode = PxeMode.NONE
        message = self._build_reply(request, reply_type, client_mac, iface, pxe_mode)
        if message is None:
            return Counter.REPLY_TOO_LARGE, None
        reply = build_reply_frame(
            eth_dst=BROADCAST_MAC if pxe_mode else client_mac,
            eth_src=self.macs.own_mac(port_id),
            ip_src=GATEWAY,
            ip_dst=BROADCAST_IP if pxe_mode else iface.ipv4.packed,
            tos=tos,
            ident=ident,
            frag=frag,
            ttl=ttl,
            message=message,
        )
        if reply_type is MessageType.ACK:
            self.macs.learn(port_id, client_mac)
        return (Counter.ACKED if reply_type is MessageType.ACK else Counter.OFFERED), reply

    def _build_reply(
        self, request: Bootp, reply_type: MessageType, client_mac: bytes, iface: Interface, pxe_mode: PxeMode
    ) -> bytes | None:
        """The BOOTP reply with its options; None if the options do not fit."""
        assert iface.ipv4 is not None
        siaddr, file = GATEWAY, request.file
        if pxe_mode is not PxeMode.NONE:
            assert iface.pxe is not None
            siaddr = iface.pxe.next_server.packed
            boot = (
                PXE_TFTP_PATH
                if pxe_mode is PxeMode.TFTP
                # no slash inserted between server and file name, as in dpservice
                else f"http://{iface.pxe.next_server}{iface.pxe.boot_filename}"
            )
            file = boot.encode()[: FILE_LEN - 1].ljust(FILE_LEN, b"\0")
        try:
            options = (
                build_option(OptionCode.MESSAGE_TYPE, bytes((reply_type,)))
                + build_option(OptionCode.LEASE_TIME, INFINITE_LEASE)
                + self._common_options
                + (build_option(OptionCode.ROUTER, GATEWAY) if pxe_mode is not PxeMode.NONE else b"")
                + self._dns_option
                + (build_option(OptionCode.HOSTNAME, iface.hostname.encode()) if iface.hostname else b"")
                + bytes((OptionCode.END,))
            )
        except ValueError:
            return None
        if len(options) > MAX_OPTIONS_LEN:
            return None
        reply = Bootp(
            op=BootpOp.REPLY,
            htype=request.htype,
            hlen=request.hlen,
            hops=request.hops,
            xid=request.xid,
            secs=request.secs,
            flags=request.flags,
            ciaddr=request.ciaddr,
            yiaddr=iface.ipv4.packed,
            siaddr=siaddr,
            giaddr=GATEWAY,
            chaddr=client_mac + request.chaddr[6:],
            sname=request.sname,
            file=file,
            magic=MAGIC_COOKIE,
        )
        return reply.pack() + options


def _has_ipv4_pxe(iface: Interface) -> bool:
    return iface.pxe is not None and isinstance(iface.pxe.next_server, IPv4Address)

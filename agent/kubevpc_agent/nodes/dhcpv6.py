"""dhcpv6: the DHCPv6 server that gives each VM its one IPv6 address (DPSERVICE.md §4.3).

In:  IPv6 UDP frames to port 547 from a VF (``conntrack`` sends them here).
Out: ``tx`` back to the rx port; drop otherwise.

SOLICIT → ADVERTISE (even with Rapid Commit, as dpservice); REQUEST and RELEASE → REPLY; CONFIRM →
REPLY without options. Options, in order: Server ID, Client ID (echoed), IA_NA (the client's IAID,
T1 = T2 = infinity, one IAADDR with the VM's address, infinite lifetimes and a success status),
Rapid Commit (echoed), DNS servers (always, possibly empty), Boot File URL for PXE (vendor class
containing ``PXEClient:Arch:00007``: TFTP loader) or iPXE (first user class ``iPXE``: the HTTP boot
file). An interface without IPv6 answers SOLICIT and REQUEST with a REPLY holding only the status
NoAddrsAvail, so the client stops waiting; everything else is dropped there.

Server DUID: dpservice sends DUID-LL with hardware type 0xABCD and *the client's* MAC, so every
client sees a different server. We keep the type and hardware type but use the *port's own* MAC:
the server on a link is one stable identity (RFC 8415 §11), and hardware type 0xABCD keeps it
distinct from a client DUID-LL (type 1, Ethernet) even where the port and the VM share a MAC.
Options are parsed by their real lengths (dpservice skips a zero-length option at the very end,
such as a final Rapid Commit).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from ipaddress import IPv6Address

from kubevpc_agent.config import AgentConfig
from kubevpc_agent.graph.batch import Batch
from kubevpc_agent.protocols import ipv6, udp
from kubevpc_agent.protocols.dhcp import IPXE_USER_CLASS, PXE_TFTP_PATH, PXE_VENDOR_CLASS, PxeMode
from kubevpc_agent.protocols.dhcpv6 import (
    HEADER,
    HEADER_LEN,
    IA_NA_FIXED,
    IA_NA_FIXED_LEN,
    INFINITY,
    MessageType,
    OptionCode,
    StatusCode,
    build_duid_ll,
    build_ia_na,
    build_iaaddr,
    build_option,
    build_status_code,
    first_user_class,
    parse_options,
    vendor_class_data,
)
from kubevpc_agent.protocols.ether import ETHER_LEN, EtherType, build_ether
from kubevpc_agent.tables.model import GATEWAY_IPV6, Interface
from kubevpc_agent.tables.responder import GatewayResponder, ReplyNext
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.vm_mac import PortMacs

GATEWAY = GATEWAY_IPV6.packed
SERVER_DUID_HW_TYPE = 0xABCD  # dpservice's value: not an IANA hardware type, so never a client's
MAX_CLIENT_ID_LEN = 128  # bytes of DUID dpservice accepts; longer Client IDs are malformed
UDP_AT = ETHER_LEN + ipv6.IPV6_LEN
MAX_REPLY_LEN = ETHER_LEN + 1500  # the VM link's MTU; longer replies (huge DNS lists) are dropped
MESSAGE_AT = UDP_AT + udp.UDP_LEN


Next = ReplyNext  # DROP, TX


class Counter(IntEnum):
    ADVERTISED = 0
    REPLIED = 1
    NO_ADDRS_AVAIL = 2
    NO_INTERFACE = 3
    UNHANDLED_TYPE = 4
    MALFORMED = 5
    PXE_WITHOUT_IPV6_SERVER = 6
    REPLY_TOO_LARGE = 7


COUNTER_HELP: Mapping[IntEnum, str] = {
    Counter.ADVERTISED: "ADVERTISEs sent (answers to SOLICIT)",
    Counter.REPLIED: "REPLYs sent to REQUEST, RELEASE and CONFIRM",
    Counter.NO_ADDRS_AVAIL: "REPLYs with status NoAddrsAvail (interface without IPv6)",
    Counter.NO_INTERFACE: "Messages on a port without an interface, or not from a VF (dropped)",
    Counter.UNHANDLED_TYPE: "Message types not answered (dropped)",
    Counter.MALFORMED: "Truncated or inconsistent IPv6/UDP/DHCPv6, or invalid options (dropped)",
    Counter.PXE_WITHOUT_IPV6_SERVER: "PXE/iPXE requests answered without boot URL: no IPv6 PXE server",
    Counter.REPLY_TOO_LARGE: "Replies that would not fit a 1500-byte IPv6 packet (dropped)",
}

REPLY_TYPE: dict[int, MessageType] = {
    MessageType.SOLICIT: MessageType.ADVERTISE,
    MessageType.REQUEST: MessageType.REPLY,
    MessageType.RELEASE: MessageType.REPLY,
    MessageType.CONFIRM: MessageType.REPLY,
}


class Dhcpv6(GatewayResponder):
    """DHCPv6 server; see the module docstring."""

    name = "dhcpv6"
    COUNTER_HELP = COUNTER_HELP

    def __init__(self, state: AgentState, macs: PortMacs, config: AgentConfig) -> None:
        super().__init__(state, macs, config)
        self._dns_option = build_option(OptionCode.DNS_SERVERS, b"".join(a.packed for a in config.dhcpv6_dns))

    def answer(self, batch: Batch, i: int) -> tuple[Counter, bytes | None]:
        port_id = int(batch.rx_port[i])
        iface = self.state.interface_by_port(port_id)
        if not self.from_vf(port_id) or iface is None:
            return Counter.NO_INTERFACE, None
        frame = bytes(batch.frame(i))

        # Ether + IPv6 (no extension headers) + UDP to 547, bounded by the IPv6 payload length
        header = ipv6.parse_frame(frame, udp.PROTO, udp.UDP_LEN + HEADER_LEN)
        if header is None:
            return Counter.MALFORMED, None
        end = header.end
        _, dport, _, _ = udp.UDP.unpack_from(frame, UDP_AT)
        if dport != udp.DHCPV6_SERVER_PORT:
            return Counter.MALFORMED, None
        msg_type, transaction_id = HEADER.unpack_from(frame, MESSAGE_AT)
        options = parse_options(frame[MESSAGE_AT + HEADER_LEN : end])
        if options is None:
            return Counter.MALFORMED, None

        if iface.ipv6 is None:
            # tell the client explicitly, so that it stops waiting (SOLICIT and REQUEST only)
            if msg_type not in (MessageType.SOLICIT, MessageType.REQUEST):
                return Counter.UNHANDLED_TYPE, None
            status = build_status_code(StatusCode.NO_ADDRS_AVAIL)
            return Counter.NO_ADDRS_AVAIL, self._reply(
                frame, port_id, MessageType.REPLY, transaction_id, status
            )

        reply_type = REPLY_TYPE.get(msg_type)
        if reply_type is None:
            return Counter.UNHANDLED_TYPE, None
        counter = Counter.ADVERTISED if reply_type is MessageType.ADVERTISE else Counter.REPLIED
        if msg_type == MessageType.CONFIRM:
            return counter, self._reply(frame, port_id, reply_type, transaction_id, b"")
        reply_options = self._reply_options(options, port_id, iface)
        if reply_options is None:
            return Counter.MALFORMED, None
        reply = self._reply(frame, port_id, reply_type, transaction_id, reply_options)
        if len(reply) > MAX_REPLY_LEN:
            return Counter.REPLY_TOO_LARGE, None
        return counter, reply

    def _reply(
        self, request: bytes, port_id: int, reply_type: MessageType, transaction_id: bytes, options: bytes
    ) -> bytes:
        """The reply frame: back to the requester's MAC and address, from the gateway, UDP 547 → 546."""
        vtc_flow, _, _, hop_limit, client_ip, _ = ipv6.IPV6.unpack_from(request, ETHER_LEN)
        message = HEADER.pack(reply_type, transaction_id) + options
        return (
            build_ether(request[6:12], self.macs.own_mac(port_id), EtherType.IPV6)
            + ipv6.build_ipv6(
                GATEWAY,
                client_ip,
                udp.PROTO,
                udp.UDP_LEN + len(message),
                hop_limit=hop_limit,
                vtc_flow=vtc_flow,
            )
            + udp.build_udp(GATEWAY, client_ip, udp.DHCPV6_SERVER_PORT, udp.DHCPV6_CLIENT_PORT, message)
        )

    def _reply_options(
        self, options: list[tuple[int, bytes]], port_id: int, iface: Interface
    ) -> bytes | None:
        """Options of an ADVERTISE or REPLY to SOLICIT/REQUEST/RELEASE; None if the request's are invalid."""
        assert iface.ipv6 is not None
        client_id = ia_na = rapid_commit = b""
        pxe_mode = PxeMode.NONE
        for code, value in options:
            if code == OptionCode.CLIENTID:
                if len(value) > MAX_CLIENT_ID_LEN:
                    return None
                client_id = build_option(OptionCode.CLIENTID, value)
            elif code == OptionCode.IA_NA:
                if len(value) < IA_NA_FIXED_LEN:
                    return None
                iaid = IA_NA_FIXED.unpack_from(value)[0]
                address = build_iaaddr(
                    iface.ipv6.packed, INFINITY, INFINITY, build_status_code(StatusCode.SUCCESS)
                )
                ia_na = build_ia_na(iaid, INFINITY, INFINITY, address)
            elif code == OptionCode.RAPID_COMMIT:
                if value:
                    return None
                rapid_commit = build_option(OptionCode.RAPID_COMMIT)
            elif code == OptionCode.VENDOR_CLASS and PXE_VENDOR_CLASS in vendor_class_data(value):
                pxe_mode = PxeMode.TFTP
            elif code == OptionCode.USER_CLASS and first_user_class(value) == IPXE_USER_CLASS:
                pxe_mode = PxeMode.HTTP

        boot_file = b""
        if pxe_mode is not PxeMode.NONE:
            pxe = iface.pxe
            if pxe is None or not isinstance(pxe.next_server, IPv6Address):
                self.tally[Counter.PXE_WITHOUT_IPV6_SERVER] += 1
            else:
                path = PXE_TFTP_PATH if pxe_mode is PxeMode.TFTP else pxe.boot_filename
                scheme = "tftp" if pxe_mode is PxeMode.TFTP else "http"
                url = f"{scheme}://[{pxe.next_server}]/{path}".encode()
                boot_file = build_option(OptionCode.BOOTFILE_URL, url)

        server_id = build_option(
            OptionCode.SERVERID, build_duid_ll(SERVER_DUID_HW_TYPE, self.macs.own_mac(port_id))
        )
        return server_id + client_id + ia_na + rapid_commit + self._dns_option + boot_file

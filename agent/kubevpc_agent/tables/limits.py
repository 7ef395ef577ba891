"""Table limits of the agent, and why each has the value it has (documented in docs/agent.md).

Most are dpservice's (DPSERVICE.md §7), so an orchestrator that works against dpservice never
meets a different ceiling here, and the error it sees when a table is full is dpservice's code for
that table. Routes are the deliberate exception: dpservice's per-VNI RIB holds about 511 IPv4
routes (1024 rte_rib nodes); ours is a dict per VNI and family, bounded only to keep one VNI from
exhausting memory.
"""

from __future__ import annotations

MAX_ID_LEN = 63  # interface / LB / firewall rule id, hostname: dpservice's 64-byte C strings
MAX_PXE_FILENAME_LEN = 31  # DHCP boot file name: dpservice's 32-byte buffer
MAX_VNI = 0xFFFFFF  # VNIs are 24 bit (VXLAN-sized), checked for load balancers as in dpservice

MAX_VNIS = 512  # VNIs with route tables at once (DP_VNI_MAX_TABLE_SIZE) -> VNI_INIT4 (361)
MAX_ROUTES_PER_VNI = 1 << 20  # per VNI and address family -> ROUTE_INSERT (303); ~0.7 GiB of
# Python objects at the worst case, far above the 100,000 per VNI we promise (dpservice: ~511)
MAX_VNF = 1000  # underlay addresses owned by this node (DP_VNF_MAX_TABLE_SIZE) -> VNF_INSERT (401)
MAX_LOAD_BALANCERS = 256  # DP_LB_TABLE_MAX -> OUT_OF_MEMORY (208), the code dpservice's full hash gives
MAX_LB_TARGETS = 64  # per load balancer (DP_LB_MAX_IPS_PER_VIP) -> BACKIP_ADD (423)
MAX_LB_PORTS = 15  # (protocol, port) pairs per LB: dpservice rejects 16 or more (INVALID_ARGUMENT)
MAX_NAT_ENTRIES = 126 * 32  # SNAT and DNAT tables, 4,032 keys each (DP_NAT_TABLE_MAX)
# -> SNAT_CREATE (342) / DNAT_CREATE (322)
MAX_NEIGHBOR_NATS = 126 * 32  # dpservice's list is unbounded; we cap it like the NAT tables
# -> OUT_OF_MEMORY (208), what dpservice answers when its allocation fails
MAX_FIREWALL_RULES_PER_INTERFACE = 1024  # dpservice: unbounded linked list. Rules are evaluated
# in order once per new flow, so a bound keeps flow setup time bounded -> OUT_OF_MEMORY (208)
MAX_CAPTURE_INTERFACES = 16  # CaptureStart: DP_CAPTURE_MAX_PORT_NUM (INVALID_ARGUMENT above it)

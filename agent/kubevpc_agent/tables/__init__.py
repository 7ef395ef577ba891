"""Control-plane state the datapath reads: interfaces, VNIs, routes, NAT, LB, firewall.

Built in the control plane (validated, precomputed), replicated to the dataplane process as
commands, and read by graph nodes without locks.
"""

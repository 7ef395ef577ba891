"""kopf handlers: the only modules that import kopf's decorators.

``kopf run -m kubevpc_operator.handlers`` (or ``kubevpc-operator``) imports this package, which
registers every handler below.
"""

from kubevpc_operator.handlers import lifecycle, load_balancers, nat_gateways, network_interfaces, vpcs

__all__ = ["lifecycle", "load_balancers", "nat_gateways", "network_interfaces", "vpcs"]

"""kubevpc operator: turns VPC, NetworkInterface, LoadBalancer and NATGateway objects into agent calls.

Layers (enforced by import-linter): ``handlers`` (kopf) → ``agents`` (gRPC effects) → ``planning``
(pure desired-vs-observed diffs) → ``models`` (typed views of the custom resources).
"""

GROUP = "kubevpc.dev"
VERSION = "v1alpha1"
FINALIZER = "kubevpc.dev/finalizer"

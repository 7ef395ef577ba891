"""kubevpc agent: a per-node VPC dataplane that speaks dpservice's gRPC API."""

__version__ = "0.1.0"

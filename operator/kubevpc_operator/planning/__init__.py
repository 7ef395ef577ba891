"""Pure planning: desired state from the cluster view, and (desired, observed) -> ordered operations.

Nothing here performs I/O or imports kopf, gRPC or the Kubernetes client (import-linter enforces
it), so every function is tested with plain data.
"""

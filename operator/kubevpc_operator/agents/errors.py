"""One exception class per way an agent call can fail.

The applier and the node syncer decide on these: ``AgentUnavailableError`` and ``AgentNotInitializedError``
are transient (retry, re-check initialization); ``AgentRejectedError`` is one operation the agent
refused (its dpservice status code says why); ``AgentInvalidArgumentError`` means the operator sent
something the agent cannot parse, which validation should have caught.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base class: any failed call to a node's agent."""

    def __init__(self, node: str, message: str) -> None:
        self.node = node
        super().__init__(f"agent on {node}: {message}")


class NoAgentError(AgentError):
    """No endpoint is known for the node (no agent pod there, or not configured)."""

    def __init__(self, node: str) -> None:
        super().__init__(node, "no agent endpoint is known for this node")


class AgentUnavailableError(AgentError):
    """The agent did not answer (connection refused, timeout, TLS failure): retry later."""


class AgentNotInitializedError(AgentError):
    """The agent answered ABORTED "not initialized": it restarted and must be initialized."""

    def __init__(self, node: str) -> None:
        super().__init__(node, "not initialized")


class AgentInvalidArgumentError(AgentError):
    """gRPC INVALID_ARGUMENT: a request the agent cannot parse (a bug or a gap in validation)."""


class AgentRejectedError(AgentError):
    """The agent refused the operation; ``code``/``name`` are its dpservice status."""

    def __init__(self, node: str, code: int, name: str, what: str = "") -> None:
        self.code = code
        self.name = name
        suffix = f" ({what})" if what else ""
        super().__init__(node, f"rejected with {code} {name}{suffix}")

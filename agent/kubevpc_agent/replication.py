"""How the control plane hands applied commands to the dataplane process.

The contract between the gRPC side (``api/``) and the dataplane (``kubevpc_agent.dataplane``):
every command that succeeded on the control plane's authoritative ``AgentState`` is passed to
:meth:`DataplaneLink.send`, in order, exactly once; the dataplane applies it to its replica between
two batches (docs/architecture.md). ``send`` must not block for long (the gRPC side processes one
call at a time) and must not raise for a command the replica cannot apply: a replica that started
from the same state and applied the same commands cannot fail.
"""

from __future__ import annotations

from typing import Protocol

from kubevpc_agent.tables.commands import Command


class DataplaneLink(Protocol):
    """The control plane's end of the command channel to the dataplane."""

    def send(self, command: Command) -> None:
        """Forward one applied command (in apply order)."""
        ...

    def close(self) -> None:
        """Stop forwarding; the dataplane is shutting down or gone."""
        ...


class NullLink:
    """No dataplane: commands are dropped (control-plane-only runs, tests, benchmarks)."""

    def __init__(self) -> None:
        self.sent = 0

    def send(self, command: Command) -> None:
        self.sent += 1

    def close(self) -> None:
        pass


class RecordingLink:
    """Keeps every command (tests replay them on a replica)."""

    def __init__(self) -> None:
        self.commands: list[Command] = []

    def send(self, command: Command) -> None:
        self.commands.append(command)

    def close(self) -> None:
        pass

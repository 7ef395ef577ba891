"""The control plane's end of the pipe to the dataplane worker process.

One duplex pipe carries, downstream, the table commands (applied by the worker between two
batches, in order) and a few control messages; upstream, the worker's start-up result and the
counter snapshots the metrics endpoint asks for. Sends happen from gRPC and metrics threads, so
every use of the pipe holds one lock. A stats request carries a sequence number so that a reply
that arrives after its caller gave up is discarded instead of answering the next request.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from kubevpc_agent.dataplane.snapshot import DataplaneSnapshot


class DataplaneError(RuntimeError):
    """The dataplane worker failed to start or is gone."""


@dataclass(frozen=True, slots=True)
class StatsRequest:
    seq: int


@dataclass(frozen=True, slots=True)
class StatsReply:
    seq: int
    snapshot: DataplaneSnapshot


@dataclass(frozen=True, slots=True)
class Stop:
    """Finish the current batch, close the ports and exit."""


@dataclass(frozen=True, slots=True)
class Barrier:
    """Answered once every message sent before it has been applied (tests, orderly shutdown)."""

    seq: int


@dataclass(frozen=True, slots=True)
class BarrierReply:
    seq: int


@dataclass(frozen=True, slots=True)
class Started:
    """The worker built its graph and is polling its ports."""

    pid: int
    cpu: int | None
    notes: tuple[str, ...] = ()  # what it could not set up (CPU steering), for the log


@dataclass(frozen=True, slots=True)
class Failed:
    """The worker could not start (or crashed); ``error`` is the traceback text."""

    error: str


class DataplaneProcess:
    """A running dataplane worker: a :class:`~kubevpc_agent.replication.DataplaneLink`."""

    def __init__(self, pid: int, conn: Connection) -> None:
        self.pid = pid
        self._conn = conn
        self._lock = threading.Lock()
        self._seq = 0
        self._exit_status: int | None = None
        self.started: Started | None = None

    # --- start-up --------------------------------------------------------------------------------

    def wait_started(self, timeout: float = 30.0) -> Started:
        """Block until the worker reports that it runs; raise :class:`DataplaneError` if it failed."""
        with self._lock:
            message = self._recv(timeout, "start")
        if isinstance(message, Failed):
            self._reap(timeout=5)
            raise DataplaneError(f"dataplane worker failed to start:\n{message.error}")
        if not isinstance(message, Started):
            raise DataplaneError(f"unexpected first message from the worker: {message!r}")
        self.started = message
        return message

    # --- DataplaneLink ---------------------------------------------------------------------------

    def send(self, command: object) -> None:
        """Queue a table command for the worker (applied in order, between batches)."""
        with self._lock:
            try:
                self._conn.send(command)
            except (OSError, EOFError) as exc:
                raise DataplaneError(f"dataplane worker is gone: {exc}") from exc

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker (it closes the ports, which removes the TAP devices) and reap it."""
        with self._lock:
            with contextlib.suppress(OSError, EOFError, ValueError):
                self._conn.send(Stop())
            self._reap(timeout)
            self._conn.close()

    # --- queries ---------------------------------------------------------------------------------

    def stats(self, timeout: float = 2.0) -> DataplaneSnapshot | None:
        """A counter snapshot taken by the worker between two batches; None if it does not answer."""
        with self._lock:
            self._seq += 1
            seq = self._seq
            try:
                self._conn.send(StatsRequest(seq))
                deadline = time.monotonic() + timeout
                while True:
                    reply = self._recv(deadline - time.monotonic(), "stats")
                    if isinstance(reply, StatsReply) and reply.seq == seq:
                        return reply.snapshot
            except (DataplaneError, OSError, EOFError):
                return None

    def barrier(self, timeout: float = 5.0) -> None:
        """Return once the worker applied everything sent so far."""
        with self._lock:
            self._seq += 1
            seq = self._seq
            self._conn.send(Barrier(seq))
            deadline = time.monotonic() + timeout
            while True:
                reply = self._recv(deadline - time.monotonic(), "barrier")
                if isinstance(reply, BarrierReply) and reply.seq == seq:
                    return

    def is_alive(self) -> bool:
        if self._exit_status is not None:
            return False
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            return True
        self._exit_status = status
        return False

    # --- internals -------------------------------------------------------------------------------

    def _recv(self, timeout: float, what: str) -> Any:
        if timeout <= 0 or not self._conn.poll(timeout):
            raise DataplaneError(f"dataplane worker did not answer ({what}) in time")
        try:
            return self._conn.recv()
        except EOFError as exc:
            raise DataplaneError("dataplane worker is gone") from exc

    def _reap(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.is_alive():
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    _, self._exit_status = os.waitpid(self.pid, 0)
                return
            time.sleep(0.01)

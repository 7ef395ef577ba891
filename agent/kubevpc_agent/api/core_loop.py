"""A single-threaded gRPC server loop on gRPC's core (``grpc._cython.cygrpc``), for throughput.

Why: the control plane's CreateRoute rate is bounded by per-call CPU, and the stock Python
servers spend most of it outside our code: ``grpc.server`` hands every call from its polling thread
to a worker thread through condition variables, ``grpc.aio`` through an event loop. Measured on
the 2-core machine, this loop (one thread polls the completion queue, runs the handler and posts
the reply) needs about half the server CPU per unary call of the synchronous server (docs/agent.md).
It also gives dpservice's processing model for free: one thread, calls strictly one at a time.

It uses the same core calls as ``grpc/_server.py`` (request_call, start_server_batch with receive /
send operations, shutdown); :func:`available` checks that this grpcio still has them, and
``server.py`` falls back to ``grpc.server`` when it does not (or when ``KUBEVPC_GRPC_ENGINE=grpc``).

What it serves: unary methods (bytes in, :class:`Reply` out) and the health service's ``Watch``
stream, whose watchers are kept in the loop and sent a message whenever the status changes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from grpc_health.v1 import health_pb2

from kubevpc_agent.api.health import KNOWN_SERVICES, HealthServicer

log = logging.getLogger(__name__)

cygrpc: Any
try:  # an internal module: everything below degrades to "not available"
    from grpc._cython import cygrpc  # type: ignore[attr-defined,no-redef]
except ImportError:  # pragma: no cover - every grpcio we support has it
    cygrpc = None

POLL_SECONDS = 0.05  # longest wait before the loop looks at the health status again
_FLAGS = 0
_OK, _NOT_FOUND, _INTERNAL, _UNIMPLEMENTED = 0, 5, 13, 12  # gRPC status codes


@dataclass(frozen=True, slots=True)
class Reply:
    """A unary call's outcome: a payload with status OK, or an error status without one."""

    payload: bytes | None
    code: int = _OK
    details: str = ""


UnaryHandler = Callable[[bytes], Reply]

_REQUIRED = {
    "Server": ("add_http2_port", "register_completion_queue", "request_call", "start", "shutdown",
               "cancel_all_calls", "destroy"),
    "Call": ("start_server_batch",),
    "CompletionQueue": ("poll",),
}  # fmt: skip
_OPERATIONS = ("ReceiveMessageOperation", "SendInitialMetadataOperation", "SendMessageOperation",
               "SendStatusFromServerOperation", "ReceiveCloseOnServerOperation")  # fmt: skip


def available() -> bool:
    """Whether this grpcio's core module offers what the loop uses."""
    if cygrpc is None:
        return False
    for cls, names in _REQUIRED.items():
        if not all(hasattr(getattr(cygrpc, cls, None), n) for n in names):
            return False
    return all(hasattr(cygrpc, op) for op in _OPERATIONS) and hasattr(cygrpc, "CompletionType")


class _Watcher:
    """One open health ``Watch`` stream."""

    __slots__ = ("call", "sending", "sent")

    def __init__(self, call: Any, status: int) -> None:
        self.call = call
        self.sent = status
        self.sending = False


class CoreLoopServer:
    """See the module docstring. ``start`` runs the loop in a thread; ``stop`` drains and ends it."""

    def __init__(
        self, unary: dict[str, UnaryHandler], health: HealthServicer, options: Sequence[tuple[str, Any]]
    ) -> None:
        self._unary = {path.encode(): h for path, h in unary.items()}  # "/package.Service/Method"
        self._health = health
        self._cq = cygrpc.CompletionQueue()
        self._server = cygrpc.Server(tuple(options), False)
        self._server.register_completion_queue(self._cq)
        self._watchers: set[_Watcher] = set()
        self._request_tag = object()
        self._shutdown_tag = object()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._done = threading.Event()

    def add_port(self, address: str, credentials: Any = None) -> int:
        """Bind ``address``; ``credentials`` is a ``grpc.ServerCredentials`` for TLS."""
        if credentials is None:
            return int(self._server.add_http2_port(address.encode()))
        return int(self._server.add_http2_port(address.encode(), credentials._credentials))

    def start(self) -> None:
        self._server.start()
        self._server.request_call(self._cq, self._cq, self._request_tag)
        self._thread = threading.Thread(target=self._run, name="grpc-core-loop", daemon=True)
        self._thread.start()

    def stop(self, grace: float) -> None:
        """Stop taking calls, let running ones finish for ``grace`` seconds, then cancel the rest."""
        if self._thread is None:
            return
        time.sleep(2 * POLL_SECONDS)  # let the loop send the last health status to watchers
        self._stopping = True
        self._server.shutdown(self._cq, self._shutdown_tag)
        if not self._done.wait(grace):
            self._server.cancel_all_calls()
            self._done.wait(5)
        self._thread.join(5)
        self._thread = None

    # --- the loop -----------------------------------------------------------------------------------

    def _run(self) -> None:
        last_status = self._health.status
        try:
            while True:
                event = self._cq.poll(time.time() + POLL_SECONDS)
                if event.completion_type != cygrpc.CompletionType.queue_timeout:
                    tag = event.tag
                    if tag is self._shutdown_tag:
                        break
                    try:
                        self._dispatch(tag, event)
                    except Exception:
                        log.exception("gRPC event %r failed", tag)
                if self._health.status != last_status:
                    last_status = self._health.status
                    for watcher in list(self._watchers):
                        self._send_watch(watcher)
        finally:
            self._server.cancel_all_calls()
            self._server.destroy()
            self._done.set()

    def _dispatch(self, tag: Any, event: Any) -> None:
        if tag is self._request_tag:
            if not event.success:  # the server is shutting down
                return
            if not self._stopping:
                self._server.request_call(self._cq, self._cq, self._request_tag)
            self._new_call(event.call, event.call_details.method)
        elif isinstance(tag, tuple):
            kind, call, arg = tag
            if kind == "request":
                self._request(call, arg, event)
            elif kind == "watch-sent":
                arg.sending = False
                if event.success and arg in self._watchers:
                    self._send_watch(arg)
            elif kind == "watch-closed":
                self._watchers.discard(arg)
            # "finished": the call is complete, nothing left to do

    def _new_call(self, call: Any, method: bytes) -> None:
        handler = self._unary.get(method)
        if handler is None and method != b"/grpc.health.v1.Health/Watch":
            self._finish(call, Reply(None, _UNIMPLEMENTED, "Method not found!"))
            return
        call.start_server_batch((cygrpc.ReceiveMessageOperation(_FLAGS),), ("request", call, handler))

    def _request(self, call: Any, handler: UnaryHandler | None, event: Any) -> None:
        if not event.success:
            return
        data = event.batch_operations[0].message()
        if data is None:
            self._finish(call, Reply(None, _UNIMPLEMENTED, "requires exactly one request message"))
            return
        if handler is None:
            self._watch(call, data)
            return
        try:
            reply = handler(data)
        except Exception:
            log.exception("handler failed")
            reply = Reply(None, _INTERNAL, "internal error")
        self._finish(call, reply)

    def _finish(self, call: Any, reply: Reply) -> None:
        ops = [cygrpc.SendInitialMetadataOperation(None, _FLAGS)]
        if reply.payload is not None:
            ops.append(cygrpc.SendMessageOperation(reply.payload, _FLAGS))
        ops.append(cygrpc.SendStatusFromServerOperation(None, reply.code, reply.details.encode(), _FLAGS))
        ops.append(cygrpc.ReceiveCloseOnServerOperation(_FLAGS))
        call.start_server_batch(tuple(ops), ("finished", call, None))

    # --- health Watch --------------------------------------------------------------------------------

    def _watch(self, call: Any, data: bytes) -> None:
        try:
            service = health_pb2.HealthCheckRequest.FromString(data).service
        except Exception:
            self._finish(call, Reply(None, _INTERNAL, "Exception deserializing request!"))
            return
        if service not in KNOWN_SERVICES:
            self._finish(call, Reply(None, _NOT_FOUND, "Service not found"))
            return
        watcher = _Watcher(call, self._health.status)
        self._watchers.add(watcher)
        call.start_server_batch(
            (cygrpc.ReceiveCloseOnServerOperation(_FLAGS),), ("watch-closed", call, watcher)
        )
        payload = health_pb2.HealthCheckResponse(status=watcher.sent).SerializeToString()
        watcher.sending = True
        ops = (
            cygrpc.SendInitialMetadataOperation(None, _FLAGS),
            cygrpc.SendMessageOperation(payload, _FLAGS),
        )
        call.start_server_batch(ops, ("watch-sent", call, watcher))

    def _send_watch(self, watcher: _Watcher) -> None:
        status = self._health.status
        if watcher.sending or status == watcher.sent:
            return
        watcher.sent = status
        watcher.sending = True
        payload = health_pb2.HealthCheckResponse(status=status).SerializeToString()
        ops = (cygrpc.SendMessageOperation(payload, _FLAGS),)
        watcher.call.start_server_batch(ops, ("watch-sent", watcher.call, watcher))

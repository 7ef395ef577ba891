"""The agent's gRPC server: DPDKironcore + grpc.health.v1 on one server.

Calls are processed one at a time, as in dpservice, so the state is never seen half-changed and
no locks are needed. Two engines, picked by measurement (docs/agent.md has the figures; per-call
CPU is what bounds CreateRoute/s here):

* ``core`` (default): :mod:`~kubevpc_agent.api.core_loop`, one thread on gRPC's core completion
  queue that also runs the handlers: about half the CPU per unary call of ``grpc.server``;
* ``grpc``: the stock synchronous ``grpc.server`` with one worker thread for DPDKironcore and a
  pool of its own for health ``Watch`` streams (which block for their lifetime); it spent a third
  less CPU per call than ``grpc.aio``. Used when the core module lacks what the loop needs, or
  with ``KUBEVPC_GRPC_ENGINE=grpc``.

Handlers are registered from the service descriptor (a generic handler per method) rather than
through the generated servicer base class, so the RPC table cannot drift from the proto.

Listening: ``host:port`` / ``[v6]:port`` or ``unix:/path``; plaintext, or TLS with client
certificates required (mutual TLS) when a certificate, key and client CA are configured.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from dpdkironcore.v1 import dpdk_pb2 as pb
from kubevpc_agent.api import core_loop
from kubevpc_agent.api.health import NOT_SERVING, SERVICE_NAME, HealthServicer
from kubevpc_agent.api.servicer import RpcAbortError, Servicer

log = logging.getLogger(__name__)

KEEPALIVE_TIME_MS = 15_000  # as dpservice (GRPC_ARG_KEEPALIVE_TIME_MS)
MAX_MESSAGE = 256 << 20  # bytes; lists of 100,000+ routes are ~5 MB (gRPC's default cap is 4 MB)
WATCH_THREADS = 16  # health Watch streams served at once (more wait for a free thread)

SERVER_OPTIONS = [
    ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.so_reuseport", 0),  # a second agent on the same port must fail, not share it
]


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for mutual TLS: our certificate and key, and the CA client certificates chain to."""

    cert: str
    key: str
    client_ca: str

    def credentials(self) -> grpc.ServerCredentials:
        with open(self.cert, "rb") as c, open(self.key, "rb") as k, open(self.client_ca, "rb") as ca:
            return grpc.ssl_server_credentials(
                [(k.read(), c.read())], root_certificates=ca.read(), require_client_auth=True
            )


def _method_handler(servicer: Servicer, method: str, request_type: Any, response_type: Any) -> Any:
    call = servicer.call

    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return call(method, request, response_type)
        except RpcAbortError as exc:
            context.abort(exc.code, exc.message)
        except Exception:
            log.exception("%s failed", method)
            context.abort(grpc.StatusCode.INTERNAL, "internal error")

    return grpc.unary_unary_rpc_method_handler(
        handle,
        request_deserializer=request_type.FromString,
        response_serializer=response_type.SerializeToString,
    )


def dpdk_service_handler(servicer: Servicer) -> grpc.GenericRpcHandler[Any, Any]:
    """Every method of ``dpdkironcore.v1.DPDKironcore``, routed to ``servicer``."""
    service = pb.DESCRIPTOR.services_by_name["DPDKironcore"]
    handlers = {}
    for m in service.methods:
        request_type, response_type = getattr(pb, m.input_type.name), getattr(pb, m.output_type.name)
        handlers[m.name] = _method_handler(servicer, m.name, request_type, response_type)
    return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)


def health_service_handler(
    health: HealthServicer, watch_pool: futures.ThreadPoolExecutor
) -> grpc.GenericRpcHandler[Any, Any]:
    """``grpc.health.v1.Health``; ``Watch`` runs on ``watch_pool`` (gRPC's per-behavior pool hook)."""

    def watch(request: Any, context: grpc.ServicerContext) -> Any:
        return health.watch(request, context)

    watch_behavior: Callable[..., Any] = watch
    watch_behavior.experimental_thread_pool = watch_pool  # type: ignore[attr-defined]
    wire = {
        "request_deserializer": health_pb2.HealthCheckRequest.FromString,
        "response_serializer": health_pb2.HealthCheckResponse.SerializeToString,
    }
    handlers = {
        "Check": grpc.unary_unary_rpc_method_handler(health.check, **wire),
        "Watch": grpc.unary_stream_rpc_method_handler(watch_behavior, **wire),
    }
    return grpc.method_handlers_generic_handler("grpc.health.v1.Health", handlers)


def core_handlers(servicer: Servicer, health: HealthServicer) -> dict[str, core_loop.UnaryHandler]:
    """The unary methods for the core loop: full method path -> bytes in, reply out."""
    service = pb.DESCRIPTOR.services_by_name["DPDKironcore"]
    handlers: dict[str, core_loop.UnaryHandler] = {}
    for m in service.methods:
        request_type, response_type = getattr(pb, m.input_type.name), getattr(pb, m.output_type.name)
        handlers[f"/{SERVICE_NAME}/{m.name}"] = _core_handler(servicer, m.name, request_type, response_type)

    def check(data: bytes) -> core_loop.Reply:
        request = health_pb2.HealthCheckRequest.FromString(data)
        return core_loop.Reply(health.check(request, None).SerializeToString())  # type: ignore[arg-type]

    handlers["/grpc.health.v1.Health/Check"] = check
    return handlers


def _core_handler(
    servicer: Servicer, method: str, request_type: Any, response_type: Any
) -> core_loop.UnaryHandler:
    call = servicer.call

    def handle(data: bytes) -> core_loop.Reply:
        try:
            request = request_type.FromString(data)
        except Exception:
            return core_loop.Reply(
                None, grpc.StatusCode.INTERNAL.value[0], "Exception deserializing request!"
            )
        try:
            return core_loop.Reply(call(method, request, response_type).SerializeToString())
        except RpcAbortError as exc:
            return core_loop.Reply(None, exc.code.value[0], exc.message)
        except Exception:
            log.exception("%s failed", method)
            return core_loop.Reply(None, grpc.StatusCode.INTERNAL.value[0], "internal error")

    return handle


def engine_name() -> str:
    """The engine ``AgentServer`` will use (see the module docstring)."""
    wanted = os.environ.get("KUBEVPC_GRPC_ENGINE", "core")
    return "core" if wanted == "core" and core_loop.available() else "grpc"


class AgentServer:
    """The started gRPC server, its health service, and the address it bound."""

    def __init__(self, servicer: Servicer, listen: str, tls: TlsFiles | None = None) -> None:
        self.servicer = servicer
        self.listen = listen
        self.tls = tls
        self.health = HealthServicer()
        self.port = 0  # TCP port actually bound (useful with port 0)
        self.engine = engine_name()
        self._server: grpc.Server | None = None
        self._core: core_loop.CoreLoopServer | None = None
        self._watch_pool = futures.ThreadPoolExecutor(WATCH_THREADS, thread_name_prefix="health-watch")

    def _prepare_address(self) -> str:
        address = self.listen
        if address.startswith("unix:"):
            path = address.removeprefix("unix:").removeprefix("//")
            if os.path.exists(path):
                os.unlink(path)  # a stale socket of a previous run
        return address

    def start(self) -> None:
        if self.engine == "core":
            core = core_loop.CoreLoopServer(
                core_handlers(self.servicer, self.health), self.health, SERVER_OPTIONS
            )
            credentials = self.tls.credentials() if self.tls is not None else None
            self.port = core.add_port(self._prepare_address(), credentials)
            if self.port == 0:
                raise RuntimeError(f"cannot listen on {self.listen}")
            core.start()
            self._core = core
        else:
            self._start_grpc()
        log.info(
            "gRPC listening on %s%s (%s engine)",
            self.listen,
            " (mutual TLS)" if self.tls else "",
            self.engine,
        )

    def _start_grpc(self) -> None:
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="dpdk-api"), options=SERVER_OPTIONS
        )
        server.add_generic_rpc_handlers(
            (dpdk_service_handler(self.servicer), health_service_handler(self.health, self._watch_pool))
        )
        address = self._prepare_address()
        if self.tls is not None:
            self.port = server.add_secure_port(address, self.tls.credentials())
        else:
            self.port = server.add_insecure_port(address)
        server.start()
        self._server = server

    def stop(self, grace: float = 2.0) -> None:
        """Report NOT_SERVING, then stop accepting calls and finish the running ones."""
        self.health.set_status(NOT_SERVING)
        if self._core is not None:
            self._core.stop(grace)
            self._core = None
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
        self._watch_pool.shutdown(wait=False, cancel_futures=True)

"""``grpc.health.v1.Health`` as dpservice serves it (``src/grpc/dp_grpc_health.cpp``).

SERVING from the moment the server starts (Initialize does not matter), NOT_SERVING once shutdown
begins. Only ``""`` and ``"dpdkironcore.v1.DPDKironcore"`` are known: ``Check`` answers
SERVICE_UNKNOWN (gRPC OK) for any other name, ``Watch`` ends with NOT_FOUND "Service not found".
``Watch`` sends the current status, then every change. The stock servicer of
``grpcio-health-checking`` differs in exactly those two answers, so we only reuse its messages.

``Watch`` streams block a thread each for their lifetime; the server runs them on their own pool
(see ``server.py``) so they never hold up the single thread that serves the DPDKironcore calls.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

SERVICE_NAME = "dpdkironcore.v1.DPDKironcore"
KNOWN_SERVICES = frozenset(("", SERVICE_NAME))
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
CANCEL_POLL = 0.5  # seconds between checks whether a watcher went away


class HealthServicer:
    """One status for the whole server; see the module docstring."""

    def __init__(self) -> None:
        self._status: int = SERVING
        self._changed = threading.Condition()

    @property
    def status(self) -> int:
        return self._status

    def set_status(self, status: int) -> None:
        """Change the status and wake every ``Watch``."""
        with self._changed:
            if status != self._status:
                self._status = status
                self._changed.notify_all()

    def check(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.service not in KNOWN_SERVICES:
            return health_pb2.HealthCheckResponse(status=SERVICE_UNKNOWN)
        return health_pb2.HealthCheckResponse(status=self._status)

    def watch(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        if request.service not in KNOWN_SERVICES:
            context.abort(grpc.StatusCode.NOT_FOUND, "Service not found")
        sent = self._status
        yield health_pb2.HealthCheckResponse(status=sent)
        while context.is_active():
            with self._changed:
                if self._status == sent:
                    self._changed.wait(timeout=CANCEL_POLL)
                current = self._status
            if current != sent:
                sent = current
                yield health_pb2.HealthCheckResponse(status=sent)

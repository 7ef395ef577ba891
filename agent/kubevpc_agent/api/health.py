"""``grpc.health.v1.Health`` as dpservice serves it (``src/grpc/dp_grpc_health.cpp``).

SERVING from the moment the server starts (Initialize does not matter), NOT_SERVING once shutdown
begins. Only ``""`` and ``"dpdkironcore.v1.DPDKironcore"`` are known: ``Check`` answers
SERVICE_UNKNOWN (gRPC OK) for any other name, ``Watch`` ends with NOT_FOUND "Service not found".
``Watch`` sends the current status, then every change. The stock servicer of
``grpcio-health-checking`` differs in exactly those two answers, so we only reuse its messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVICE_NAME = "dpdkironcore.v1.DPDKironcore"
KNOWN_SERVICES = frozenset(("", SERVICE_NAME))
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class HealthServicer(health_pb2_grpc.HealthServicer):  # type: ignore[misc]  # untyped generated base
    """One status for the whole server; see the module docstring."""

    def __init__(self) -> None:
        self._status: int = SERVING
        self._changed = asyncio.Event()

    @property
    def status(self) -> int:
        return self._status

    def set_status(self, status: int) -> None:
        """Change the status and wake every ``Watch`` (call on the server's event loop)."""
        if status != self._status:
            self._status = status
            self._changed.set()
            self._changed = asyncio.Event()

    async def Check(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:  # noqa: N802
        if request.service not in KNOWN_SERVICES:
            return health_pb2.HealthCheckResponse(status=SERVICE_UNKNOWN)
        return health_pb2.HealthCheckResponse(status=self._status)

    async def Watch(  # noqa: N802
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        if request.service not in KNOWN_SERVICES:
            await context.abort(grpc.StatusCode.NOT_FOUND, "Service not found")
        sent = self._status
        yield health_pb2.HealthCheckResponse(status=sent)
        while True:
            await self._changed.wait()
            if self._status != sent:
                sent = self._status
                yield health_pb2.HealthCheckResponse(status=sent)

"""The CLI's connection to a DPDKironcore server, and the three kinds of failure it reports.

A *server* error is an in-band ``Status`` with a non-zero code (205 ``NO_VM``); a *gRPC* error is
a non-OK gRPC status (INVALID_ARGUMENT and its text, ABORTED "not initialized", UNAVAILABLE);
a *client* error is ours (bad flags, cannot connect). dpservice-cli reports each as a JSON
``Error`` document with ``spec.source`` = ``server`` / ``grpc`` / ``client``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from dpdkironcore.v1 import dpdk_pb2_grpc as pbg
from kubevpc_agent.cli.flags import ClientError

MAX_MESSAGE = 256 << 20  # long lists (100,000 routes) exceed gRPC's default 4 MB


class ServerError(Exception):
    """A non-zero in-band status."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"[error code {code}] {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Connection:
    """Where and how to reach the server."""

    address: str
    timeout: float = 4.0  # seconds to wait for the connection (dpservice-cli: --connect-timeout 4s)
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""

    def channel(self) -> grpc.Channel:
        options = [("grpc.max_receive_message_length", MAX_MESSAGE)]
        if self.tls_ca:
            creds = grpc.ssl_channel_credentials(
                root_certificates=_read(self.tls_ca),
                private_key=_read(self.tls_key) if self.tls_key else None,
                certificate_chain=_read(self.tls_cert) if self.tls_cert else None,
            )
            channel = grpc.secure_channel(self.address, creds, options=options)
        else:
            channel = grpc.insecure_channel(self.address, options=options)
        try:
            grpc.channel_ready_future(channel).result(timeout=self.timeout)
        except grpc.FutureTimeoutError:
            channel.close()
            raise ClientError(f"error connecting to {self.address}: context deadline exceeded") from None
        return channel


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc.strerror}") from None


class Client:
    """Calls one RPC and turns an in-band error status into :class:`ServerError`."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.stub = pbg.DPDKironcoreStub(channel)

    def call(self, method: str, request: Any, *, ignore: tuple[int, ...] = ()) -> Any:
        rpc: Callable[[Any], Any] = getattr(self.stub, method)
        response = rpc(request)
        code = response.status.code
        if code and code not in ignore:
            raise ServerError(code, response.status.message)
        return response

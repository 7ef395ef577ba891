"""The agent process: configuration -> ports -> dataplane -> gRPC server, and back down on a signal.

Start-up order matters: the ports (TAP devices are created here) and the dataplane worker (a
forked process that takes the ports over) come before the gRPC server, so no client ever talks to
an agent that cannot forward yet, and the fork happens before gRPC starts its threads. On SIGTERM
or SIGINT the health service turns NOT_SERVING, the server stops taking calls and finishes the
running one, the dataplane stops, and the ports close: the TAP devices vanish with the process.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from typing import Any

from kubevpc_agent.api.server import AgentServer, TlsFiles
from kubevpc_agent.api.servicer import Servicer
from kubevpc_agent.cmdline import describe
from kubevpc_agent.config import AgentConfig
from kubevpc_agent.dataplane import start_dataplane
from kubevpc_agent.metrics import MetricsServer, serve_metrics
from kubevpc_agent.ports.factory import open_ports
from kubevpc_agent.replication import DataplaneLink, NullLink
from kubevpc_agent.tables.state import AgentState

log = logging.getLogger("kubevpc_agent")

DATAPLANE_CHECK_SECONDS = 1.0  # how often the control plane checks that the dataplane worker lives


class JsonFormatter(logging.Formatter):
    """``--log-format=json``: one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(config: AgentConfig) -> None:
    handler = logging.StreamHandler(sys.stdout)
    if config.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


def tls_files(config: AgentConfig) -> TlsFiles | None:
    if config.grpc_tls_cert and config.grpc_tls_key and config.grpc_tls_ca:
        return TlsFiles(config.grpc_tls_cert, config.grpc_tls_key, config.grpc_tls_ca)
    return None


def serve(config: AgentConfig, link: DataplaneLink, stop: threading.Event | None = None) -> int:
    """Run the gRPC server until SIGTERM/SIGINT (or ``stop``); 1 if the dataplane died first."""
    stop = stop or threading.Event()
    state = AgentState(config)
    server = AgentServer(Servicer(state, link), config.grpc_listen, tls_files(config))
    metrics: MetricsServer | None = None
    stats = getattr(link, "stats", None)
    if config.metrics_listen and stats is not None:
        metrics = serve_metrics(config.metrics_listen, stats)
        log.info("metrics on %s (port %d)", config.metrics_listen, metrics.port)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    is_alive = getattr(link, "is_alive", None)
    code = 0
    try:
        server.start()
        while not stop.wait(DATAPLANE_CHECK_SECONDS):
            if is_alive is not None and not is_alive():
                log.error("the dataplane worker is gone: stopping so that the agent restarts cleanly")
                code = 1
                break
        log.info("stopping: health NOT_SERVING, finishing calls")
    finally:
        server.stop()
        if metrics is not None:
            metrics.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def run(config: AgentConfig) -> int:
    """The whole agent; returns the process exit code."""
    setup_logging(config)
    log.info("kubevpc-agent starting: %s", describe(config))
    if config.extra:
        ignored = ", ".join(f"{k}={v}" if v else k for k, v in config.extra.items())
        log.info("accepted and ignored: %s", ignored)
    ports = open_ports(config)
    link: DataplaneLink = NullLink()
    code = 1
    try:
        link = start_dataplane(config, ports) if ports else NullLink()
        code = serve(config, link)
    finally:
        link.close()
        for port in ports:
            port.close()
    log.info("kubevpc-agent stopped")
    return code

"""The dataplane process: forked from the agent before its gRPC server starts.

``start_dataplane(config, ports)`` forks one worker process that inherits the open ports (TAP
fds, ring sockets), pins it to the dataplane CPU, steers the kernel's receive work for those
devices to the other CPUs, and returns the control plane's :class:`DataplaneProcess` link once
the worker has built its graph. The worker runs :class:`~kubevpc_agent.dataplane.worker.Worker`
until the link is closed, the control plane goes away, or it receives SIGTERM.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from multiprocessing import Pipe
from multiprocessing.connection import Connection

from kubevpc_agent.config import AgentConfig
from kubevpc_agent.dataplane.cpu import (
    choose_dataplane_cpu,
    other_cpus,
    pin_current_process,
    steer_receive_away,
)
from kubevpc_agent.dataplane.link import DataplaneError, DataplaneProcess, Failed, Started
from kubevpc_agent.dataplane.worker import DataplaneOptions, GraphBuilder, Worker
from kubevpc_agent.graph.port import Port

__all__ = ["DataplaneError", "DataplaneOptions", "DataplaneProcess", "start_dataplane"]

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def start_dataplane(
    config: AgentConfig,
    ports: Sequence[Port],
    options: DataplaneOptions | None = None,
    build_graph: GraphBuilder | None = None,
    start_timeout: float = 30.0,
) -> DataplaneProcess:
    """Fork the dataplane worker over ``ports`` and wait until it runs.

    The ports belong to the worker afterwards: this process closes its copies (a TAP device then
    lives exactly as long as the worker). Raises :class:`DataplaneError` if the worker cannot start.
    """
    options = options or DataplaneOptions()
    cpu = choose_dataplane_cpu(options.cpu) if options.pin else None
    notes: list[str] = []
    if cpu is not None:
        others = other_cpus(cpu)
        for port in ports:
            # netdevs only: frames reach us through their receive path. A TAP's receive path is
            # our own write(); RPS there would cost an inter-processor interrupt per frame on
            # the dataplane core (measured: 2.6 instead of 1.3 us per write), so TAPs keep the default.
            if port.spec.driver == "netdev":
                notes.extend(steer_receive_away(port.spec.ifname, others))
    parent_conn, child_conn = Pipe(duplex=True)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the worker
        parent_conn.close()
        code = 1
        try:
            code = _worker_main(
                config, ports, child_conn, options=options, build_graph=build_graph, cpu=cpu, notes=notes
            )
        finally:
            os._exit(code)
    child_conn.close()
    for port in ports:
        port.close()
    if cpu is not None:
        # keep the control plane (gRPC, metrics) off the dataplane core as well
        pin_current_process(other_cpus(cpu))
    link = DataplaneProcess(pid, parent_conn)
    started = link.wait_started(start_timeout)
    for note in started.notes:
        log.warning("dataplane CPU steering: %s", note)
    log.info("dataplane worker %d running on CPU %s", started.pid, started.cpu)
    return link


def _worker_main(
    config: AgentConfig,
    ports: Sequence[Port],
    conn: Connection,
    *,
    options: DataplaneOptions,
    build_graph: GraphBuilder | None,
    cpu: int | None,
    notes: list[str],
) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the control plane, which stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # never outlive the control plane
    if os.getppid() == 1:
        return 1
    try:
        if cpu is not None:
            pin_current_process({cpu})
        worker = Worker(config, ports, options, build_graph)
        worker.attach(conn)
        conn.send(Started(os.getpid(), cpu, tuple(notes)))
    except BaseException:
        conn.send(Failed(traceback.format_exc()))
        for port in ports:
            port.close()
        return 1
    try:
        worker.run()
    except BaseException:
        log.exception("dataplane worker crashed")
        return 1
    finally:
        worker.close()
    return 0

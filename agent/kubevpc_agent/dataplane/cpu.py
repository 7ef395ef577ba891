"""Keep the dataplane core for the dataplane: pin the worker, steer kernel receive work elsewhere.

BRIEF.md §6: when the kernel's receive softirq ran on the forwarder's core (RPS steered onto it),
every Python forwarder livelocked near 0 pps. So the worker is pinned to one CPU and, for every
netdev the agent opens (VF representors / veths, PFs), RPS is pointed at the *other* CPUs: frames
arriving there are processed by the kernel's receive softirq on those CPUs, not on ours. (TAPs
are left alone: their receive path is the worker's own ``write``, see ``start_dataplane``.) Where a
port has real interrupts (``/sys/class/net/<if>/device/msi_irqs``), their affinity is set the same
way. All of it is best effort: a container without write access to sysfs/procfs keeps the kernel's
defaults, and the worker logs what it could not change.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)


def choose_dataplane_cpu(requested: int | None = None) -> int | None:
    """The CPU for the worker: ``requested``, else the highest allowed one; None on a 1-CPU box."""
    allowed = sorted(os.sched_getaffinity(0))
    if requested is not None:
        if requested not in allowed:
            raise ValueError(f"CPU {requested} is not available (allowed: {allowed})")
        return requested
    return allowed[-1] if len(allowed) > 1 else None


def other_cpus(cpu: int) -> set[int]:
    return set(os.sched_getaffinity(0)) - {cpu}


def cpu_mask(cpus: Iterable[int]) -> str:
    """The hex CPU bitmap sysfs/procfs expect (comma-separated 32-bit groups)."""
    value = 0
    for c in cpus:
        value |= 1 << c
    groups = []
    while True:
        groups.append(f"{value & 0xFFFFFFFF:08x}")
        value >>= 32
        if not value:
            break
    return ",".join(reversed(groups))


def _same_device(ifname: str) -> bool:
    """Is ``/sys/class/net/<ifname>`` the netdev this thread's namespace calls ``ifname``?

    sysfs shows the namespace it was mounted in; a thread that switched namespaces (tests) must
    not steer a same-named device somewhere else.
    """
    try:
        sys_index = int(Path(f"/sys/class/net/{ifname}/ifindex").read_text())
        return sys_index == socket.if_nametoindex(ifname)
    except (OSError, ValueError):
        return False


def steer_receive_away(ifname: str, cpus: set[int]) -> list[str]:
    """Point RPS of every rx queue (and the IRQs) of ``ifname`` at ``cpus``; returns what failed."""
    failed: list[str] = []
    if not cpus or not _same_device(ifname):
        return [f"{ifname}: not steered (no other CPU, or not visible in sysfs)"]
    mask = cpu_mask(cpus)
    queues = sorted(Path(f"/sys/class/net/{ifname}/queues").glob("rx-*"))
    for queue in queues:
        try:
            (queue / "rps_cpus").write_text(mask)
        except OSError as exc:
            failed.append(f"{queue}/rps_cpus: {exc.strerror}")
    irq_dir = Path(f"/sys/class/net/{ifname}/device/msi_irqs")
    if irq_dir.is_dir():
        for irq in irq_dir.iterdir():
            try:
                Path(f"/proc/irq/{irq.name}/smp_affinity").write_text(mask)
            except OSError as exc:
                failed.append(f"irq {irq.name}: {exc.strerror}")
    return failed


def pin_current_process(cpus: set[int]) -> None:
    os.sched_setaffinity(0, cpus)

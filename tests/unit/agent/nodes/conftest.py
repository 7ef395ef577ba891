"""Fixtures for slow-path node tests: dpservice's test topology (see ``testkit.dp_topology``)."""

from __future__ import annotations

import pytest

from kubevpc_agent.config import AgentConfig
from kubevpc_agent.tables.model import Pxe
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.vm_mac import PortMacs
from testkit.dp_topology import CONFIG, PORTS, PXE_SERVER, VM1, VM2, VM3, bind, interface_of


@pytest.fixture
def config() -> AgentConfig:
    return CONFIG


@pytest.fixture
def state() -> AgentState:
    """dpservice's ``prepare_ifaces``: VM1/VM2 with PXE ``2001:dede::1`` (iPXE file ``ipxe``), VM3 without."""
    st = AgentState(CONFIG)
    pxe = Pxe(PXE_SERVER, "ipxe")
    bind(st, interface_of(VM1, pxe=pxe))
    bind(st, interface_of(VM2, pxe=pxe))
    bind(st, interface_of(VM3))
    return st


@pytest.fixture
def macs() -> PortMacs:
    return PortMacs(PORTS)

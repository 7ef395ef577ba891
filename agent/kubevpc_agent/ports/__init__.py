"""Port implementations behind :class:`kubevpc_agent.graph.port.Port`."""

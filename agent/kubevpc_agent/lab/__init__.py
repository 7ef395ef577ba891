"""Local topologies on one machine: namespaces as VMs and nodes, agents as processes.

Shared by the demo (``python -m kubevpc_agent.demo``), the privileged tests and the forwarding
benchmark, so all three build the same thing the same way. Needs root; nothing here runs in a
production agent.
"""

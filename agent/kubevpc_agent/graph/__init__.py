"""The packet graph runtime: batches flow from ports through nodes to ports.

No protocol knowledge lives here; nodes (``kubevpc_agent.nodes``) do the work.
"""

"""Effects: talking to the nodes' agents (gRPC client, endpoint pool, apply, observe, node syncers)."""

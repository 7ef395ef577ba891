"""Graph nodes, one module per node; module name == node name == counter label."""

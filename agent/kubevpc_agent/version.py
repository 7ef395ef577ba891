"""The version string the agent and the CLI report (dpservice reports a git-describe string).

GetVersion's ``service_protocol``/``service_version``, ``kubevpc-agent -- --version`` ("DP Service
version <v>") and ``kubevpc --version`` all print this one value, as dpservice's test runner
expects the service and its CLI to agree.
"""

from __future__ import annotations

from kubevpc_agent import __version__

SERVICE_VERSION = f"v{__version__}"

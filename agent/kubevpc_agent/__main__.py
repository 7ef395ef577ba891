"""``kubevpc-agent`` / ``python -m kubevpc_agent``: parse the command line, run the agent."""

from __future__ import annotations

import logging
import os
import sys

from kubevpc_agent.cmdline import CommandLineError, Exit, parse_command_line

# gRPC core's classic pollers let the thread that polls the completion queue do the socket I/O
# itself; with the EventEngine listener/endpoints every call also hops through EventEngine threads.
# Measured with the core-loop engine: ~25 % less server CPU per call (docs/agent.md). Must be set
# before grpc is imported; an explicit GRPC_EXPERIMENTS wins.
GRPC_EXPERIMENTS = "-event_engine_listener,-event_engine_for_all_other_endpoints"


def main(argv: list[str] | None = None) -> int:
    try:
        parsed = parse_command_line(sys.argv[1:] if argv is None else argv)
    except CommandLineError as exc:
        print(exc, file=sys.stderr)
        return 1
    if isinstance(parsed, Exit):
        sys.stdout.write(parsed.text)
        return parsed.code
    os.environ.setdefault("GRPC_EXPERIMENTS", GRPC_EXPERIMENTS)
    from kubevpc_agent.agent import run  # grpc and the dataplane only load when we really run

    try:
        return run(parsed)
    except Exception:  # a port, the dataplane or the listen address could not be set up
        logging.getLogger("kubevpc_agent").exception("kubevpc-agent failed")
        return 1


if __name__ == "__main__":
    sys.exit(main())

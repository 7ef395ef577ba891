"""``kubevpc-agent`` / ``python -m kubevpc_agent``: parse the command line, run the agent."""

from __future__ import annotations

import sys

from kubevpc_agent.cmdline import CommandLineError, Exit, parse_command_line


def main(argv: list[str] | None = None) -> int:
    try:
        parsed = parse_command_line(sys.argv[1:] if argv is None else argv)
    except CommandLineError as exc:
        print(exc, file=sys.stderr)
        return 1
    if isinstance(parsed, Exit):
        sys.stdout.write(parsed.text)
        return parsed.code
    from kubevpc_agent.agent import run  # grpc and the dataplane only load when we really run

    return run(parsed)


if __name__ == "__main__":
    sys.exit(main())

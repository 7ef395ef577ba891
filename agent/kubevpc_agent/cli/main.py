"""``kubevpc``: dpservice-cli's command line over any DPDKironcore server (ours or dpservice).

    kubevpc [--address=HOST:PORT] [-o json|yaml|table|name] <verb> <object> [--flags]

Verbs: create (add), get, list, delete (del), reset, init; ``stats`` reads the agent's metrics
endpoint instead of gRPC (kubevpc_agent.cli.stats). Exit codes as dpservice-cli: 0 done,
1 client or gRPC error, 2 server (in-band status) error; errors print an ``Error`` document on
stdout in json/yaml output. docs/cli.md lists every command.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import grpc

from kubevpc_agent.cli import stats
from kubevpc_agent.cli.client import Client, Connection, ServerError
from kubevpc_agent.cli.commands import COMMANDS, resolve
from kubevpc_agent.cli.flags import ClientError, Flag, bind, split_args
from kubevpc_agent.cli.render import FORMATS, render, render_error
from kubevpc_agent.version import SERVICE_VERSION

CLIENT_ERROR = 1
SERVER_ERROR = 2

DEFAULT_OUTPUT = {"create": "name", "delete": "name", "reset": "name"}  # others: table


def _global_flags() -> tuple[Flag, ...]:
    port = os.environ.get("DP_GRPC_PORT") or "1337"
    return (
        Flag("address", "string", f"localhost:{port}"),
        Flag("connect-timeout", "string", "4s"),
        Flag("output", "string", ""),
        Flag("pretty", "bool", False),
        Flag("wide", "bool", False),
        Flag("tls-cert", "string", ""),
        Flag("tls-key", "string", ""),
        Flag("tls-ca", "string", ""),
        Flag("help", "bool", False),
        Flag("version", "bool", False),
    )


def _seconds(duration: str) -> float:
    """A Go duration like ``4s``, ``500ms``, ``1m``."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0}
    for unit in ("ms", "s", "m"):
        if duration.endswith(unit):
            try:
                return float(duration[: -len(unit)]) * units[unit]
            except ValueError:
                break
    raise ClientError(
        f'invalid argument "{duration}" for "--connect-timeout" flag: time: invalid duration "{duration}"'
    )


def _output_for_errors(argv: Sequence[str]) -> str:
    """dpservice-cli decides the error format by scanning the arguments itself (default: name)."""
    for i, arg in enumerate(argv):
        if arg in ("--output", "-o") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(("--output=", "-o=")):
            return arg.split("=", 1)[1]
    return "name"


def usage() -> str:
    verbs: dict[str, list[str]] = {}
    for verb, name in COMMANDS:
        verbs.setdefault(verb, []).append(name)
    lines = ["Usage: kubevpc [--address=HOST:PORT] [-o json|yaml|table|name] <verb> <object> [flags]", ""]
    lines += [f"  {verb:<7} {', '.join(sorted(names))}" for verb, names in verbs.items()]
    lines.append("  stats   (the dataplane's counters from the agent's --metrics-listen endpoint)")
    return "\n".join(lines) + "\n"


def _stats(
    raw: Mapping[str, Any], values: Mapping[str, Any], global_names: set[str], rest: Sequence[str]
) -> int:
    """``kubevpc stats``: the dataplane's counters from the agent's metrics endpoint (not gRPC)."""
    if rest:
        raise ClientError(f"accepts 0 arg(s), received {len(rest)}")
    flags = (Flag("metrics-address", "string", stats.DEFAULT_METRICS_ADDRESS),)
    local = bind(flags, {k: v for k, v in raw.items() if k not in global_names})
    output = values["output"] or "table"
    if output not in ("table", "json", "yaml"):
        raise ClientError(f"error creating renderer: unknown renderer {output!r}")
    text = stats.fetch(local["metrics-address"], _seconds(values["connect-timeout"]))
    sys.stdout.write(stats.render(stats.summarize(text), output))
    return 0


def run(argv: Sequence[str]) -> int:
    error_output = _output_for_errors(argv)
    try:
        parsed = split_args(argv)
        global_flags = _global_flags()
        global_names = {f.name for f in global_flags}
        values = bind(global_flags, {k: v for k, v in parsed.raw.items() if k in global_names})
        if values["version"]:
            sys.stdout.write(f"dpservice-cli version {SERVICE_VERSION}\n")
            return 0
        if values["help"] or not parsed.words:
            sys.stdout.write(usage())
            return 0 if values["help"] else CLIENT_ERROR
        if parsed.words[0] == "stats":
            return _stats(parsed.raw, values, global_names, parsed.words[1:])
        verb, word, *rest = [*parsed.words, ""] if len(parsed.words) == 1 else parsed.words
        command = resolve(verb, word or verb)
        if rest:
            raise ClientError(f"accepts 0 arg(s), received {len(rest)}")
        local = bind(command.flags, {k: v for k, v in parsed.raw.items() if k not in global_names})
        output = values["output"] or DEFAULT_OUTPUT.get(command.verb, "table")
        if output not in FORMATS:
            raise ClientError(f"error creating renderer: unknown renderer {output!r}")
        connection = Connection(
            values["address"],
            _seconds(values["connect-timeout"]),
            values["tls-cert"],
            values["tls-key"],
            values["tls-ca"],
        )
        channel = connection.channel()
        try:
            document, operation = command.run(Client(channel), local)
        finally:
            channel.close()
        sys.stdout.write(render(document, output, operation, pretty=values["pretty"]))
        return 0
    except ServerError as exc:
        sys.stdout.write(render_error("server", exc.code, exc.message, error_output))
        return SERVER_ERROR
    except grpc.RpcError as exc:
        code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
        details = exc.details() if hasattr(exc, "details") else str(exc)
        sys.stdout.write(render_error("grpc", code.value[0], details or "", error_output))
        return CLIENT_ERROR
    except ClientError as exc:
        sys.stdout.write(render_error("client", 1000, str(exc), error_output))
        return CLIENT_ERROR


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()

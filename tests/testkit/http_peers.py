"""HTTP backends that say who they are and count who came, and clients that use many source ports.

Run as a script inside a namespace (standard library only, so no path set-up is needed)::

    python http_peers.py whoami ADDR PORT [NAME]
        answers every GET with "[NAME ]<client address> <client port>" (what a NAT or VIP made of
        the client), listening on ADDR (IPv4 or IPv6); prints "listening".
    python http_peers.py serve NAME PORT
        answers every GET with NAME (HTTP/1.1, keep-alive); GET /stats returns JSON
        {"name": NAME, "requests": n, "peers": {"<client port>": requests}}; prints "listening".
    python http_peers.py spread ADDR PORT SRC FIRST_SPORT COUNT REQUESTS PARALLEL
        COUNT connections from SRC:FIRST_SPORT.., REQUESTS GETs each on one keep-alive connection,
        PARALLEL at a time; prints one JSON object {"<sport>": [answers]} (an answer is the body,
        or "error: ..." when the request failed).
    python http_peers.py hold ADDR PORT SRC FIRST_SPORT COUNT
        opens COUNT keep-alive connections and sends one GET on each, prints {"<sport>": answer};
        then one more GET on every connection per "again" line on stdin (printing the same shape),
        until "quit".

Tests use it to see where a load balancer sends each connection: counted at the backends, and
seen by the client connection by connection.
"""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import socketserver
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

TIMEOUT = 5.0  # seconds per request: a dropped SYN or a reset must not hang the test


class Quiet(http.server.BaseHTTPRequestHandler):
    """A handler that logs nothing and answers 200 with a text body."""

    def answer(self, body: str) -> None:
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(name: str, port: int) -> None:
    lock = threading.Lock()
    peers: dict[str, int] = {}

    class Handler(Quiet):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path == "/stats":
                with lock:
                    body = json.dumps({"name": name, "requests": sum(peers.values()), "peers": peers})
            else:
                with lock:
                    key = str(self.client_address[1])
                    peers[key] = peers.get(key, 0) + 1
                body = name
            self.answer(body)

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 256

    with Server(("0.0.0.0", port), Handler) as server:
        print("listening", flush=True)
        server.serve_forever()


def whoami(address: str, port: int, name: str = "") -> None:
    class Handler(Quiet):
        def do_GET(self) -> None:
            seen = f"{self.client_address[0]} {self.client_address[1]}"
            self.answer(f"{name} {seen}" if name else seen)

    class Server(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        allow_reuse_address = True
        daemon_threads = True

    with Server((address, port), Handler) as server:
        print("listening", flush=True)
        server.serve_forever()


def start_whoami(ns: Any, address: str, port: int, name: str = "") -> subprocess.Popen[str]:
    """Run :func:`whoami` inside ``ns`` (a testkit ``Netns``) and return once it listens."""
    proc: subprocess.Popen[str] = ns.popen(sys.executable, __file__, "whoami", address, str(port), name)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"
    return proc


def _get(conn: http.client.HTTPConnection) -> str:
    try:
        conn.request("GET", "/")
        return conn.getresponse().read().decode()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        return f"error: {type(exc).__name__}"


def _connect(addr: str, port: int, src: str, sport: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(addr, port, timeout=TIMEOUT, source_address=(src, sport))


def spread(addr: str, port: int, src: str, first: int, count: int, requests: int, parallel: int) -> None:
    def one(sport: int) -> tuple[str, list[str]]:
        conn = _connect(addr, port, src, sport)
        answers = [_get(conn) for _ in range(requests)]
        conn.close()
        return str(sport), answers

    with ThreadPoolExecutor(parallel) as pool:
        results = dict(pool.map(one, range(first, first + count)))
    print(json.dumps(results), flush=True)


def hold(addr: str, port: int, src: str, first: int, count: int) -> None:
    conns = {str(sport): _connect(addr, port, src, sport) for sport in range(first, first + count)}
    with ThreadPoolExecutor(16) as pool:

        def round_() -> None:
            answers = dict(zip(conns, pool.map(_get, conns.values()), strict=True))
            print(json.dumps(answers), flush=True)

        round_()
        for line in sys.stdin:
            if line.strip() != "again":
                break
            round_()
    for conn in conns.values():
        conn.close()


def main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "whoami":
        whoami(args[0], int(args[1]), *args[2:3])
    elif mode == "serve":
        serve(args[0], int(args[1]))
    elif mode == "spread":
        spread(args[0], int(args[1]), args[2], *(int(a) for a in args[3:7]))
    elif mode == "hold":
        hold(args[0], int(args[1]), args[2], int(args[3]), int(args[4]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])

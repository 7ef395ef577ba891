"""TCP and UDP exchanges between VM namespaces, with the standard library only.

``python -m kubevpc_agent.lab.traffic serve tcp|udp ADDR PORT`` echoes (until killed);
``python -m kubevpc_agent.lab.traffic send tcp|udp ADDR PORT BYTES`` sends ``BYTES`` bytes, reads
the echo back, checks it is identical and prints one JSON line (bytes, seconds, Mbit/s); exit
code 0 only if every byte came back intact.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time


def _family(addr: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def serve(proto: str, addr: str, port: int) -> None:
    if proto == "tcp":
        with socket.socket(_family(addr), socket.SOCK_STREAM) as srv:
            srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            srv.bind((addr, port))
            srv.listen(8)
            print("listening", flush=True)
            while True:
                conn, _ = srv.accept()
                with conn:
                    while chunk := conn.recv(65536):
                        conn.sendall(chunk)
    else:
        with socket.socket(_family(addr), socket.SOCK_DGRAM) as srv:
            srv.bind((addr, port))
            print("listening", flush=True)
            while True:
                data, peer = srv.recvfrom(65536)
                srv.sendto(data, peer)


def send(proto: str, addr: str, port: int, nbytes: int, timeout: float = 10.0) -> bool:
    payload = os.urandom(nbytes)
    start = time.monotonic()
    if proto == "tcp":
        with socket.create_connection((addr, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            # Send and read the echo at the same time, so the figure is the path's throughput and
            # not round trips of a stop-and-wait exchange.
            sender = threading.Thread(target=conn.sendall, args=(payload,), daemon=True)
            sender.start()
            received = bytearray()
            while len(received) < nbytes:
                chunk = conn.recv(1 << 20)
                if not chunk:
                    break
                received += chunk
            sender.join(timeout)
            ok = bytes(received) == payload
    else:
        with socket.socket(_family(addr), socket.SOCK_DGRAM) as sock:
            sock.settimeout(2.0)
            received = bytearray()
            ok = True
            for off in range(0, nbytes, 1200):
                chunk = payload[off : off + 1200]
                for _attempt in range(5):
                    sock.sendto(chunk, (addr, port))
                    try:
                        data, _ = sock.recvfrom(65536)
                    except TimeoutError:
                        continue
                    if data == chunk:
                        received += data
                        break
                else:
                    ok = False
                    break
            ok = ok and bytes(received) == payload
    seconds = time.monotonic() - start
    print(json.dumps({"bytes": nbytes, "seconds": seconds, "mbit_s": nbytes * 8 / seconds / 1e6, "ok": ok}))
    return ok


def main(argv: list[str]) -> int:
    if len(argv) >= 4 and argv[0] == "serve":
        serve(argv[1], argv[2], int(argv[3]))
        return 0
    if len(argv) >= 5 and argv[0] == "send":
        return 0 if send(argv[1], argv[2], int(argv[3]), int(argv[4])) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

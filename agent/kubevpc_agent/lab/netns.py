"""Network namespaces, veth pairs and processes inside them, always cleaned up.

Every namespace is named ``kvpc-<purpose>-<random>`` so concurrent test runs never collide and
``make clean-netns`` finds leftovers. A :class:`NetnsPool` owns what it created: on ``close`` (also
after a failure) it kills the processes it started, then every process still inside its
namespaces, then deletes the namespaces (which removes the veth/TAP devices inside them).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

PREFIX = "kvpc-"


def unique_name(purpose: str, length: int = 15) -> str:
    """``kvpc-<purpose>-<random hex>`` cut to ``length`` characters (15 fits an ifname)."""
    rand = secrets.token_hex(4)
    base = f"{PREFIX}{purpose}"[: max(length - 7, 6)]
    return f"{base}-{rand}"[:length]


def sh(*args: str, check: bool = True, timeout: float = 30, input: str | None = None) -> str:
    """Run a command, return stdout; raise with stderr in the message when it fails."""
    proc = subprocess.run(
        list(args), check=False, capture_output=True, text=True, timeout=timeout, input=input
    )
    if check and proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, args, proc.stdout, proc.stderr)
    return proc.stdout


def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy; raise ``TimeoutError`` otherwise."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:
            last_exc = exc
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}") from last_exc
        time.sleep(interval)


class Netns:
    """One named network namespace."""

    def __init__(self, name: str, pool: NetnsPool | None = None) -> None:
        self.name = name
        self._pool = pool

    def __repr__(self) -> str:
        return f"Netns({self.name!r})"

    def argv(self, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(self, *cmd: str, check: bool = True, timeout: float = 30, input: str | None = None) -> str:
        """Run a command inside the namespace and return its stdout."""
        return sh(*self.argv(*cmd), check=check, timeout=timeout, input=input)

    def try_run(self, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*cmd), check=False, capture_output=True, text=True, timeout=timeout)

    def ping(self, target: str, count: int = 3, timeout: float = 10) -> bool:
        """``ping`` from this namespace: True when replies came within ``timeout`` seconds."""
        argv = ("ping", "-c", str(count), "-i", "0.2", "-W", "1", "-w", str(int(timeout)), target)
        return self.try_run(*argv, timeout=timeout + 5).returncode == 0

    def popen(self, *cmd: str, **kwargs: Any) -> subprocess.Popen[str]:
        """Start a process inside the namespace; the pool stops it on close."""
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.STDOUT)
        kwargs.setdefault("text", True)
        proc = subprocess.Popen(self.argv(*cmd), start_new_session=True, **kwargs)
        if self._pool is not None:
            self._pool.processes.append(proc)
        return proc

    def ip(self, *args: str, check: bool = True) -> str:
        return self.run("ip", *args, check=check)

    def sysctl(self, key: str, value: str | int) -> None:
        self.run("sysctl", "-qw", f"{key}={value}")

    def pids_gone(self) -> bool:
        return not self.pids()

    def pids(self) -> list[int]:
        out = sh("ip", "netns", "pids", self.name, check=False)
        return [int(p) for p in out.split()]


def stop_process_group(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 5.0) -> None:
    """Send ``sig`` to the process group of ``proc`` (started with a new session) and wait; SIGKILL
    the group if it has not exited within ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)


class NetnsPool:
    """Creates namespaces and veth pairs and removes all of it on :meth:`close`."""

    def __init__(self) -> None:
        self.namespaces: list[Netns] = []
        self.processes: list[subprocess.Popen[str]] = []
        self.root_links: list[str] = []  # devices left in the caller's namespace

    def __enter__(self) -> NetnsPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def netns(self, purpose: str) -> Netns:
        """A fresh namespace with loopback up."""
        ns = Netns(unique_name(purpose, 40), self)
        sh("ip", "netns", "add", ns.name)
        self.namespaces.append(ns)
        ns.ip("link", "set", "lo", "up")
        return ns

    def veth(self, a: str, ns_a: Netns | None, b: str, ns_b: Netns | None, up: bool = True) -> None:
        """A veth pair ``a`` (in ``ns_a``) <-> ``b`` (in ``ns_b``); None = the current namespace."""
        temp_a, temp_b = unique_name("va"), unique_name("vb")
        sh("ip", "link", "add", temp_a, "type", "veth", "peer", "name", temp_b)
        for temp, name, ns in ((temp_a, a, ns_a), (temp_b, b, ns_b)):
            if ns is None:
                sh("ip", "link", "set", temp, "name", name)
                self.root_links.append(name)
                if up:
                    sh("ip", "link", "set", name, "up")
            else:
                sh("ip", "link", "set", temp, "netns", ns.name)
                ns.ip("link", "set", temp, "name", name)
                if up:
                    ns.ip("link", "set", name, "up")

    def stop(self, proc: subprocess.Popen[str], timeout: float = 5.0) -> None:
        """SIGTERM a started process group, SIGKILL if it does not exit in time."""
        stop_process_group(proc, signal.SIGTERM, timeout)
        for stream in (proc.stdout, proc.stderr, proc.stdin):
            if stream is not None:
                stream.close()

    def close(self) -> None:
        for proc in reversed(self.processes):
            with contextlib.suppress(Exception):
                self.stop(proc)
        self.processes.clear()
        for ns in reversed(self.namespaces):
            for pid in ns.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                wait_for(ns.pids_gone, timeout=5, what=f"processes in {ns.name} to exit")
            sh("ip", "netns", "del", ns.name, check=False)
        self.namespaces.clear()
        for link in self.root_links:
            sh("ip", "link", "del", link, check=False)
        self.root_links.clear()


@contextlib.contextmanager
def netns_pool() -> Iterator[NetnsPool]:
    pool = NetnsPool()
    try:
        yield pool
    finally:
        pool.close()


def leftover_namespaces(names: Sequence[str] | None = None) -> list[str]:
    """Namespaces with our prefix that still exist (optionally only among ``names``)."""
    out = sh("ip", "netns", "list", check=False)
    present = [line.split()[0] for line in out.splitlines() if line.strip()]
    mine = [n for n in present if n.startswith(PREFIX)]
    return [n for n in mine if names is None or n in names]


CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def inside(ns: Netns) -> Iterator[None]:
    """Run the calling thread inside ``ns`` (sockets, TAPs and netlink opened here stay there)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/thread-self/ns/net", "rb") as home, open(f"/run/netns/{ns.name}", "rb") as target:
        if libc.setns(target.fileno(), CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({ns.name}): {os.strerror(err)}")
        try:
            yield
        finally:
            if libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns back: {os.strerror(err)}")

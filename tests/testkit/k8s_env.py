"""A real kube-apiserver backed by etcd, run as plain local processes for the `k8s` test tier.

This is what controller-runtime's envtest does (BRIEF §5): no kubelet, no controller-manager, so
pods never run; the operator and agents run as local processes against this API server and the
chart is installed for real. Certificates (CA, serving, an admin client in `system:masters`) and
the service-account signing key are generated per control plane, so RBAC and TokenRequest work as
in a cluster and tests can act with a chart's ServiceAccount credentials.

The binaries come from `hack/k8s-tools.sh`, which caches them outside the repository.
"""

from __future__ import annotations

import atexit
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TOOLS_ENV = "KUBEVPC_TOOLS"
DEFAULT_TOOLS_DIR = Path("/root/.cache/kubevpc/tools")
TOOLS_SCRIPT = "hack/k8s-tools.sh"
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
ADMIN_USER = "kubevpc-admin"


class ToolsMissingError(RuntimeError):
    """A binary of the k8s tier is not in the tools dir; `hack/k8s-tools.sh` builds it."""


class ControlPlaneError(RuntimeError):
    """etcd or kube-apiserver did not come up; the message carries the tail of their logs."""


def tools_bin_dir() -> Path:
    """The directory `hack/k8s-tools.sh` fills: `$KUBEVPC_TOOLS/bin`."""
    return Path(os.environ.get(TOOLS_ENV) or DEFAULT_TOOLS_DIR) / "bin"


def find_tool(name: str) -> Path:
    """Path of one of kube-apiserver, kubectl, etcd, helm in the tools dir, or a clear error."""
    path = tools_bin_dir() / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ToolsMissingError(
            f"{name} not found at {path}; run `bash {TOOLS_SCRIPT}` to build the k8s test tools"
            f" (set {TOOLS_ENV} to use another cache dir)"
        )
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files one control plane uses."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_signing_key: Path
    sa_public_key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _issue(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    extensions: Sequence[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path) -> Pki:
    """Generate a CA, the apiserver's serving cert, an admin client cert and the SA signing key."""
    directory.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubevpc-test-ca")])
    ca = _issue(
        ca_name,
        ca_key,
        ca_name,
        ca_key,
        [
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (_usage(cert_sign=True), True),
        ],
    )
    serving_key = ec.generate_private_key(ec.SECP256R1())
    service_ip = ipaddress.IPv4Network(SERVICE_CLUSTER_IP_RANGE)[1]
    serving = _issue(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
        serving_key,
        ca_name,
        ca_key,
        [
            (_usage(cert_sign=False), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.DNSName("kubernetes"),
                        x509.DNSName("kubernetes.default.svc"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.IPAddress(service_ip),
                    ]
                ),
                False,
            ),
        ],
    )
    admin_key = ec.generate_private_key(ec.SECP256R1())
    admin = _issue(
        x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                x509.NameAttribute(NameOID.COMMON_NAME, ADMIN_USER),
            ]
        ),
        admin_key,
        ca_name,
        ca_key,
        [
            (_usage(cert_sign=False), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
        ],
    )
    sa_key = ec.generate_private_key(ec.SECP256R1())
    pki = Pki(
        ca_cert=directory / "ca.crt",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        sa_signing_key=directory / "sa.key",
        sa_public_key=directory / "sa.pub",
    )
    pki.ca_cert.write_bytes(ca.public_bytes(pem))
    pki.serving_cert.write_bytes(serving.public_bytes(pem))
    _write_key(pki.serving_key, serving_key)
    pki.admin_cert.write_bytes(admin.public_bytes(pem))
    _write_key(pki.admin_key, admin_key)
    _write_key(pki.sa_signing_key, sa_key)
    pki.sa_public_key.write_bytes(
        sa_key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return pki


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_cert: Path,
    user: str,
    credentials: dict[str, str],
    namespace: str = "default",
) -> Path:
    """Write a one-context kubeconfig (JSON, which every YAML reader accepts)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "kubevpc-test", "cluster": {"server": server, "certificate-authority": str(ca_cert)}}
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [
            {
                "name": user,
                "context": {"cluster": "kubevpc-test", "user": user, "namespace": namespace},
            }
        ],
        "current-context": user,
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)
    return path


class _Process:
    """One child process with its log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


class KubeControlPlane:
    """etcd + kube-apiserver on loopback with free ports, a temp dir, and an admin kubeconfig.

    Use as a context manager, or call `start()` and `stop()`. `stop()` is safe to call at any
    point and removes the processes and the temp dir, also after a failed `start()`.
    """

    def __init__(self, *, startup_timeout: float = 60.0, keep_dir: bool | None = None) -> None:
        self.startup_timeout = startup_timeout
        self.keep_dir = os.environ.get("KUBEVPC_K8S_KEEP") == "1" if keep_dir is None else keep_dir
        self._dir: Path | None = None
        self._etcd: _Process | None = None
        self._apiserver: _Process | None = None
        self._pki: Pki | None = None
        self._server: str | None = None
        self._kubeconfig: Path | None = None
        self.startup_seconds: float | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> KubeControlPlane:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start etcd and kube-apiserver and wait until /readyz answers ok."""
        if self._dir is not None:
            raise RuntimeError("control plane already started")
        began = time.monotonic()
        etcd_bin, apiserver_bin = find_tool("etcd"), find_tool("kube-apiserver")
        self._dir = Path(tempfile.mkdtemp(prefix="kubevpc-k8s-"))
        atexit.register(self.stop)
        try:
            self._pki = make_pki(self._dir / "pki")
            etcd_url = self._start_etcd(etcd_bin)
            self._start_apiserver(apiserver_bin, etcd_url)
            self._wait_ready(began + self.startup_timeout)
            self._kubeconfig = write_kubeconfig(
                self._dir / "admin.kubeconfig",
                server=self.server,
                ca_cert=self._pki.ca_cert,
                user=ADMIN_USER,
                credentials={
                    "client-certificate": str(self._pki.admin_cert),
                    "client-key": str(self._pki.admin_key),
                },
            )
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Stop the apiserver, then etcd, and remove the temp dir (unless keep_dir)."""
        atexit.unregister(self.stop)
        for process in (self._apiserver, self._etcd):
            if process is not None:
                process.stop()
        self._apiserver = self._etcd = None
        if self._dir is not None and not self.keep_dir:
            shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None
        self._server = self._kubeconfig = self._pki = None

    def _start_etcd(self, etcd_bin: Path) -> str:
        assert self._dir is not None
        client_url = f"http://127.0.0.1:{free_port()}"
        peer_url = f"http://127.0.0.1:{free_port()}"
        self._etcd = _Process(
            "etcd",
            [
                str(etcd_bin),
                "--name=kubevpc-test",
                f"--data-dir={self._dir / 'etcd'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=kubevpc-test={peer_url}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
            self._dir / "etcd.log",
        )
        return client_url

    def _start_apiserver(self, apiserver_bin: Path, etcd_url: str) -> None:
        assert self._dir is not None and self._pki is not None
        port = free_port()
        self._server = f"https://127.0.0.1:{port}"
        pki = self._pki
        self._apiserver = _Process(
            "kube-apiserver",
            [
                str(apiserver_bin),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self._dir / 'apiserver-certs'}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                "--authorization-mode=RBAC",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={pki.sa_public_key}",
                f"--service-account-signing-key-file={pki.sa_signing_key}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,DefaultStorageClass,"
                "ResourceQuota,ValidatingAdmissionPolicy,ValidatingAdmissionWebhook,"
                "MutatingAdmissionWebhook",
                "--allow-privileged=true",
                "--profiling=false",
                "--v=1",
            ],
            self._dir / "kube-apiserver.log",
        )

    def _wait_ready(self, deadline: float) -> None:
        context = self.ssl_context()
        last = "no answer yet"
        while time.monotonic() < deadline:
            for process in (self._etcd, self._apiserver):
                if process is not None and process.exited():
                    raise ControlPlaneError(
                        f"{process.name} exited with {process.popen.returncode} during start:\n"
                        f"{process.log_tail()}"
                    )
            try:
                with urllib.request.urlopen(f"{self.server}/readyz", context=context, timeout=2) as r:
                    if r.status == 200:
                        return
                    last = f"HTTP {r.status}"
            except urllib.error.HTTPError as error:
                last = f"HTTP {error.code}: {error.read().decode(errors='replace')[-500:]}"
            except (OSError, ssl.SSLError) as error:
                last = repr(error)
            time.sleep(0.1)
        tail = self._apiserver.log_tail() if self._apiserver is not None else ""
        raise ControlPlaneError(f"kube-apiserver not ready in time ({last}):\n{tail}")

    # --- accessors ------------------------------------------------------------------------------

    @property
    def server(self) -> str:
        """The apiserver URL, https://127.0.0.1:<port>."""
        if self._server is None:
            raise RuntimeError("control plane not started")
        return self._server

    @property
    def kubeconfig(self) -> Path:
        """An admin kubeconfig (client cert in system:masters)."""
        if self._kubeconfig is None:
            raise RuntimeError("control plane not started")
        return self._kubeconfig

    @property
    def ca_cert(self) -> Path:
        if self._pki is None:
            raise RuntimeError("control plane not started")
        return self._pki.ca_cert

    @property
    def workdir(self) -> Path:
        """The temp dir holding certs, logs and kubeconfigs; removed on stop."""
        if self._dir is None:
            raise RuntimeError("control plane not started")
        return self._dir

    def ssl_context(self) -> ssl.SSLContext:
        """A TLS client context that trusts the test CA and presents the admin cert."""
        if self._pki is None:
            raise RuntimeError("control plane not started")
        context = ssl.create_default_context(cafile=str(self._pki.ca_cert))
        context.load_cert_chain(str(self._pki.admin_cert), str(self._pki.admin_key))
        return context

    # --- helpers for tests ----------------------------------------------------------------------

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this apiserver (admin unless `kubeconfig` is given)."""
        argv = [
            str(find_tool("kubectl")),
            f"--kubeconfig={kubeconfig or self.kubeconfig}",
            f"--cache-dir={self.workdir / 'kubectl-cache'}",
            *args,
        ]
        result = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode, argv, output=result.stdout, stderr=result.stderr
            )
        return result

    def create_namespace(self, prefix: str = "test") -> str:
        """Create a namespace with a unique name (there is no namespace controller to reuse them)."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.kubectl("create", "namespace", name)
        return name

    def service_account_kubeconfig(self, namespace: str, name: str, *, duration: str = "1h") -> Path:
        """A kubeconfig that authenticates as ServiceAccount `namespace/name`.

        The bearer token comes from the TokenRequest API (`kubectl create token`), so the process
        using it is subject to exactly the RBAC rules bound to that ServiceAccount.
        """
        token = self.kubectl(
            "create", "token", name, f"--namespace={namespace}", f"--duration={duration}"
        ).stdout.strip()
        user = f"system:serviceaccount:{namespace}:{name}"
        return write_kubeconfig(
            self.workdir / f"sa-{namespace}-{name}.kubeconfig",
            server=self.server,
            ca_cert=self.ca_cert,
            user=user,
            credentials={"token": token},
            namespace=namespace,
        )

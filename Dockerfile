# One image for both kubevpc processes (charts/kubevpc picks the command):
#   kubevpc-operator   the kopf operator (the default; runs as the non-root user "kubevpc", uid 10001)
#   kubevpc-agent      the dataplane agent (the chart runs it as root with NET_ADMIN/NET_RAW only)
#   kubevpc            the dpservice-cli compatible CLI
# Build: docker build -t ghcr.io/kubevpc/kubevpc:0.1.0 .

# --- build: install the project and its dependencies into a self-contained virtualenv -------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Only what `pip install .` needs (pyproject.toml names README.md as the long description).
COPY pyproject.toml README.md ./
COPY operator/ operator/
COPY agent/ agent/
COPY proto/ proto/
RUN python -m venv /opt/kubevpc \
    && /opt/kubevpc/bin/pip install . \
    && /opt/kubevpc/bin/python -c "import kubevpc_operator, kubevpc_agent, dpdkironcore.v1" \
    && test -x /opt/kubevpc/bin/kubevpc-operator -a -x /opt/kubevpc/bin/kubevpc-agent

# --- runtime: the virtualenv on a clean base, no compilers, no sources ---------------------------
FROM python:3.11-slim
LABEL org.opencontainers.image.title="kubevpc" \
      org.opencontainers.image.description="kubevpc operator and dpservice-compatible dataplane agent" \
      org.opencontainers.image.source="https://github.com/kubevpc/kubevpc" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/kubevpc /opt/kubevpc
ENV PATH=/opt/kubevpc/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# The operator's user; the uid matches operator.podSecurityContext.runAsUser in the chart.
RUN groupadd --system --gid 10001 kubevpc \
    && useradd --system --uid 10001 --gid kubevpc --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin kubevpc
USER 10001:10001
CMD ["kubevpc-operator"]

# kubevpc: one entry point for people and CI. `make demo` and `make test` set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS ?= $(or $(KUBEVPC_TOOLS),/root/.cache/kubevpc/tools)
export KUBEVPC_TOOLS := $(TOOLS)
export PATH := $(TOOLS)/bin:$(PATH)

APT_PACKAGES := busybox isc-dhcp-client iperf3 iproute2 netsniff-ng clang bpftool \
	tcpdump iputils-ping socat ethtool curl openssl procps

.PHONY: setup deps tools lint test test-fast demo proto bench clean-netns

setup: deps tools

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "apt-get install:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi
	@$(PYTHON) -c "import kubevpc_agent, kubevpc_operator, dpdkironcore.v1" 2>/dev/null || \
	  $(PYTHON) -m pip install -q -e '.[dev]'

tools:
	@./hack/k8s-tools.sh

lint:
	ruff check .
	mypy
	lint-imports

# Every tier. Under KUBEVPC_REQUIRE_ALL_TIERS=1 (set by .ci/run) a skipped privileged/k8s test fails the run.
test: setup lint
	$(PYTHON) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

test-fast: deps
	$(PYTHON) -m pytest -p no:cacheprovider -m "not privileged and not k8s and not slow" $(PYTEST_ARGS)

demo: deps
	$(PYTHON) -m kubevpc_agent.demo $(DEMO_ARGS)

proto:
	$(PYTHON) proto/generate.py

bench: deps
	$(PYTHON) -m benchmarks $(BENCH_ARGS)

clean-netns:
	@for ns in $$(ip netns list | awk '{print $$1}' | grep '^kvpc-'); do ip netns del $$ns; done

#!/usr/bin/env bash
# Build the binaries of the real-Kubernetes test tier (BRIEF §5) into a cache outside the repo:
# kube-apiserver, kubectl, etcd and helm, all from the Go module proxy at pinned versions.
#
# No package registry ships kube-apiserver, so it is built from a throw-away wrapper Go module that
# requires k8s.io/kubernetes and replaces every staging module (k8s.io/api, k8s.io/apiserver, ...)
# with its published v0.X.Y twin; the replace lines are generated from that version's own go.mod.
# Debian's etcd-server is 3.4, too old for this apiserver (it needs etcd >= 3.5), so etcd is built
# the same way. Idempotent: when every binary exists and reports its pinned version it does nothing.
#
# Usage: hack/k8s-tools.sh            (env: KUBEVPC_TOOLS=dir, default /root/.cache/kubevpc/tools)
#        hack/k8s-tools.sh --print-bin-dir
set -euo pipefail

K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
HELM_VERSION=v3.22.0

TOOLS="${KUBEVPC_TOOLS:-/root/.cache/kubevpc/tools}"
BIN="$TOOLS/bin"

if [[ "${1:-}" == "--print-bin-dir" ]]; then
    echo "$BIN"
    exit 0
fi

log() { echo "k8s-tools: $*" >&2; }

# --- fast path: every binary present and reporting its pinned version -------------------------
version_of() {  # prints the version a binary reports, empty when missing or broken
    local name="$1" exe="$BIN/$1"
    [[ -x "$exe" ]] || return 0
    case "$name" in
        kube-apiserver) "$exe" --version 2>/dev/null | awk '{print $2}' ;;
        kubectl) "$exe" version --client 2>/dev/null | awk '/Client Version:/ {print $3}' ;;
        etcd) "$exe" --version 2>/dev/null | awk '/etcd Version:/ {print "v"$3}' ;;
        helm) "$exe" version --template '{{.Version}}' 2>/dev/null ;;
    esac
}

pinned_of() {
    case "$1" in
        kube-apiserver | kubectl) echo "$K8S_VERSION" ;;
        etcd) echo "$ETCD_VERSION" ;;
        helm) echo "$HELM_VERSION" ;;
    esac
}

missing=()
for tool in kube-apiserver kubectl etcd helm; do
    have="$(version_of "$tool")"
    if [[ "$have" != "$(pinned_of "$tool")" ]]; then
        missing+=("$tool")
    fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
    log "up to date in $BIN (kubernetes $K8S_VERSION, etcd $ETCD_VERSION, helm $HELM_VERSION)"
    exit 0
fi

# --- slow path: build what is missing ---------------------------------------------------------
GO="$(command -v go || true)"
[[ -n "$GO" ]] || GO=/usr/local/go/bin/go
[[ -x "$GO" ]] || { log "no Go toolchain found (need go >= 1.26)"; exit 1; }

mkdir -p "$BIN" "$TOOLS/src"
export GOPATH="$TOOLS/go"
export GOMODCACHE="$TOOLS/go/pkg/mod"
export GOCACHE="$TOOLS/gocache"
export GOFLAGS="-trimpath -modcacherw -buildvcs=false"
export CGO_ENABLED=0
export GOWORK=off

# Two builders at once would fight over the same wrapper dirs; serialise on a lock file.
exec 9>"$TOOLS/.lock"
flock 9

log "building into $BIN: ${missing[*]} (go: $("$GO" version))"
started=$SECONDS

contains() { local x; for x in "${@:2}"; do [[ "$x" == "$1" ]] && return 0; done; return 1; }

write_wrapper() {  # write_wrapper DIR MODULE VERSION PKG... : a module that only requires MODULE
    local dir="$1" module="$2" version="$3"
    shift 3
    rm -rf "$dir"
    mkdir -p "$dir"
    {
        echo "module kubevpc.local/tools/$(basename "$dir")"
        echo
        echo "go 1.26.0"
        echo
        echo "require $module $version"
    } >"$dir/go.mod"
    {
        echo "//go:build tools"
        echo
        echo "// Package tools pins the commands this wrapper module builds."
        echo "package tools"
        echo
        echo "import ("
        local pkg
        for pkg in "$@"; do echo "	_ \"$pkg\""; done
        echo ")"
    } >"$dir/tools.go"
}

build_kubernetes() {
    local dir="$TOOLS/src/kubernetes-$K8S_VERSION" gomod twin minor
    twin="v0.${K8S_VERSION#v1.}"
    minor="${K8S_VERSION#v1.}"
    minor="${minor%%.*}"
    log "kubernetes $K8S_VERSION: reading its go.mod from the module proxy"
    gomod="$("$GO" mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
        sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
    [[ -f "$gomod" ]] || { log "could not download the go.mod of k8s.io/kubernetes@$K8S_VERSION"; exit 1; }

    write_wrapper "$dir" k8s.io/kubernetes "$K8S_VERSION" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
    # Keep the GODEBUG defaults kubernetes itself builds with.
    grep -E '^godebug ' "$gomod" >>"$dir/go.mod" || true
    {
        echo
        echo "// Each staging module replaced by its published twin, generated from k8s.io/kubernetes@$K8S_VERSION go.mod."
        echo "replace ("
        awk -v twin="$twin" '$2 == "=>" && $3 ~ /^\.\/staging\// {print "\t" $1 " => " $1 " " twin}' "$gomod"
        echo ")"
    } >>"$dir/go.mod"
    log "kubernetes: $(grep -c " => k8s.io/" "$dir/go.mod") staging modules replaced by their $twin twins"

    log "kubernetes: resolving dependencies (go mod tidy)"
    (cd "$dir" && "$GO" mod tidy)

    local pkg="k8s.io/component-base/version" cgo="k8s.io/client-go/pkg/version" ldflags="-s -w"
    local p
    for p in "$pkg" "$cgo"; do
        ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
        ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
    done
    log "kubernetes: go build kube-apiserver kubectl (takes many minutes on 2 cores)"
    (cd "$dir" && "$GO" build -ldflags "$ldflags" -o "$dir/out/" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl)
    mv -f "$dir/out/kube-apiserver" "$dir/out/kubectl" "$BIN/"
}

build_etcd() {
    local dir="$TOOLS/src/etcd-$ETCD_VERSION"
    # The etcd server command is the main package at the root of go.etcd.io/etcd/server/v3; its
    # go.mod has replace directives, so `go install pkg@version` refuses it: use a wrapper module.
    write_wrapper "$dir" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3
    log "etcd $ETCD_VERSION: resolving dependencies (go mod tidy)"
    (cd "$dir" && "$GO" mod tidy)
    log "etcd: go build"
    (cd "$dir" && "$GO" build -ldflags "-s -w" -o "$dir/out/etcd" go.etcd.io/etcd/server/v3)
    mv -f "$dir/out/etcd" "$BIN/etcd"
}

build_helm() {
    log "helm $HELM_VERSION: go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
    GOBIN="$TOOLS/src/helm-out" "$GO" install \
        -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
        "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
    mv -f "$TOOLS/src/helm-out/helm" "$BIN/helm"
}

if contains kube-apiserver "${missing[@]}" || contains kubectl "${missing[@]}"; then build_kubernetes; fi
if contains etcd "${missing[@]}"; then build_etcd; fi
if contains helm "${missing[@]}"; then build_helm; fi

for tool in kube-apiserver kubectl etcd helm; do
    have="$(version_of "$tool")"
    if [[ "$have" != "$(pinned_of "$tool")" ]]; then
        log "$tool reports '${have:-nothing}', expected $(pinned_of "$tool")"
        exit 1
    fi
done
log "done in $((SECONDS - started)) s: $BIN holds kube-apiserver/kubectl $K8S_VERSION, etcd $ETCD_VERSION, helm $HELM_VERSION"

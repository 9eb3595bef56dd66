#!/usr/bin/env bash
# scripts/deps.sh - make sure the Debian packages a make target needs are here.
#
#   scripts/deps.sh TARGET      TARGET: demo test bench sanitize install fuzz
#                               format all
#
# Checks every package of TARGET with dpkg-query. Nothing missing: prints
# nothing and exits 0. Something missing and running as root: runs
# `apt-get update` once, then installs the missing packages without
# questions; exits non-zero if that fails. Something missing and not root:
# prints the exact `sudo apt-get install` line to stderr and exits 1.
#
# Environment:
#   FLING_SKIP_DEPS=1   do nothing at all (non-Debian or hand-managed machines)
#
# Needs only bash, dpkg-query and apt-get: it runs before anything else is
# installed.
set -euo pipefail

if [[ "${FLING_SKIP_DEPS:-0}" == 1 ]]; then
    exit 0
fi

# ---- the package table ----------------------------------------------------
# Groups of packages; a target is a list of groups. To give a target more
# packages, add them to its group (or add a group and name it below).
declare -A GROUP=(
    # Compiling anything at all.
    [build]="gcc make cmake pkg-config"
    # What the library uses next (cheap, so every target pulls them in).
    [lib]="libuv1-dev libprotobuf-c-dev protobuf-c-compiler uthash-dev
           libyaml-dev libssl-dev"
    # The test suite (cmocka under ctest; graphviz checks `fling plan --dot`;
    # iproute2's ip makes cluster_partition_test's network namespace).
    [test]="libcmocka-dev valgrind graphviz iproute2 openssl"
    # Leader election on ZooKeeper: the C client library, and the server
    # the tests start (scripts/zk-test-server.sh).
    [zookeeper]="libzookeeper-mt-dev zookeeper"
    # The benchmarks and their peers: Erlang/OTP, and gRPC C++ (a C++
    # compiler, gRPC++ and protobuf headers, protoc and its gRPC plugin).
    [bench]="erlang-base g++ libgrpc++-dev libprotobuf-dev protobuf-compiler
             protobuf-compiler-grpc"
    # Sanitizer and libFuzzer runtimes: clang and its compiler-rt.
    # libclang-rt-dev follows Debian's default clang (libclang-rt-14-dev on
    # bookworm).
    [clang]="clang libclang-rt-dev"
    # The format check (scripts/check-format.sh) and `make format`:
    # Debian's default clang-format (clang-format-14 on bookworm), the
    # version the tree is formatted with.
    [format]="clang-format"
)

declare -A TARGET_GROUPS=(
    [demo]="build lib"
    [test]="build lib test zookeeper"
    [bench]="build lib bench"
    [sanitize]="build lib test zookeeper clang"
    [install]="build lib"
    [fuzz]="build lib clang"
    [format]="format"
    [all]="build lib test zookeeper bench clang format"
)

usage() {
    echo "usage: $0 TARGET   (TARGET: demo test bench sanitize install fuzz format all)" >&2
    exit 2
}

[[ $# -eq 1 ]] || usage
target=$1
[[ -n "${TARGET_GROUPS[$target]+set}" ]] || usage

# The packages of the target, each once, in table order.
wanted=()
declare -A seen=()
for g in ${TARGET_GROUPS[$target]}; do
    for p in ${GROUP[$g]}; do
        if [[ -z "${seen[$p]+set}" ]]; then
            seen[$p]=1
            wanted+=("$p")
        fi
    done
done

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps.sh: dpkg-query not found: this script knows only Debian packages." >&2
    echo "deps.sh: install these (or their equivalents) by hand, then rerun with FLING_SKIP_DEPS=1:" >&2
    echo "  ${wanted[*]}" >&2
    exit 1
fi

# is_installed PKG: true when PKG is installed for the native architecture
# (or is an architecture-independent package). A package of a foreign
# architecture only (e.g. libuv1-dev:i386) does not count.
native_arch=$(dpkg --print-architecture 2>/dev/null || true)
is_installed() {
    local status arch
    while IFS=$'\t' read -r status arch; do
        [[ "$status" == "install ok installed" ]] || continue
        if [[ -z "$native_arch" || "$arch" == "$native_arch" || "$arch" == all ]]; then
            return 0
        fi
    done < <(dpkg-query -W -f='${Status}\t${Architecture}\n' "$1" 2>/dev/null || true)
    return 1
}

missing=()
for p in "${wanted[@]}"; do
    is_installed "$p" || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    {
        echo "deps.sh: 'make $target' needs Debian packages that are not installed."
        echo "deps.sh: install them with (or set FLING_SKIP_DEPS=1 to skip this check):"
        echo "sudo apt-get install -y ${missing[*]}"
    } >&2
    exit 1
fi

echo "deps.sh: installing for '$target': ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Wait for a concurrent apt/dpkg (another deps.sh, unattended-upgrades)
# instead of failing at once.
apt_opts=(-o DPkg::Lock::Timeout=300)
# A failed update is not fatal by itself: the package lists may be recent
# enough. The install below decides.
if ! apt-get "${apt_opts[@]}" update </dev/null; then
    echo "deps.sh: warning: 'apt-get update' failed; trying the install anyway" >&2
fi
if ! apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" </dev/null; then
    echo "deps.sh: error: 'apt-get install ${missing[*]}' failed" >&2
    exit 1
fi

# apt-get succeeded; make sure it gave us what we asked for.
still=()
for p in "${missing[@]}"; do
    is_installed "$p" || still+=("$p")
done
if [[ ${#still[@]} -gt 0 ]]; then
    echo "deps.sh: error: still not installed after apt-get: ${still[*]}" >&2
    exit 1
fi
exit 0

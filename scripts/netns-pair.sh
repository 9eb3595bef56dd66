#!/usr/bin/env bash
# scripts/netns-pair.sh - a network namespace joined to the host by a veth
# pair, for partition tests and benchmarks.
#
#   scripts/netns-pair.sh create NAME ADDR_HOST ADDR_NS
#       make namespace NAME and a veth pair NAME-h (host) / NAME-n (in
#       NAME), address them ADDR_HOST and ADDR_NS (a /24 unless written
#       ADDR/PREFIX, e.g. 10.201.7.1/30), and bring both ends and the
#       namespace's lo up. Fails if NAME already exists.
#   scripts/netns-pair.sh down NAME    take the namespace end NAME-n down:
#       a silent partition. Seen from the host, packets to ADDR_NS are
#       dropped with no RST and no ICMP (the host end stays up, with its
#       route and a permanent neighbour entry, so no ARP fails either);
#       inside NAME, sends fail with "Network is unreachable".
#   scripts/netns-pair.sh up NAME      bring NAME-n up again, with its
#       address and route.
#   scripts/netns-pair.sh delete NAME  remove the namespace and the pair;
#       succeeds when they are already gone.
#
# Run a program inside with `ip netns exec NAME PROGRAM ...`. NAME is at
# most 13 characters of [A-Za-z0-9_] (interface names are at most 15).
# Needs root and iproute2's `ip`; exits 2 on bad usage, 1 on failure, with
# the reason on stderr.
#
# Why the namespace end: taking the host end down would drop the host's
# route to ADDR_NS, and the host would send to the default gateway instead.
set -euo pipefail

usage() {
    echo "usage: $0 create NAME ADDR_HOST ADDR_NS | down NAME | up NAME" \
        "| delete NAME" >&2
    exit 2
}

die() {
    echo "$0: $*" >&2
    exit 1
}

[[ $# -ge 2 ]] || usage
cmd=$1
name=$2

[[ "$name" =~ ^[A-Za-z0-9_]{1,13}$ ]] ||
    die "namespace name '$name' is not 1 to 13 characters of [A-Za-z0-9_]"
command -v ip >/dev/null 2>&1 ||
    die "'ip' is not installed; install iproute2 (apt-get install iproute2)"
[[ $(id -u) -eq 0 ]] ||
    die "$cmd of namespace '$name' needs root (uid 0); run it as root"

host_if="$name-h"
ns_if="$name-n"

# with_prefix ADDR: ADDR with /24 added when it has no prefix.
with_prefix() {
    if [[ "$1" == */* ]]; then echo "$1"; else echo "$1/24"; fi
}

ns_exists() {
    ip netns list | awk '{print $1}' | grep -qx -- "$name"
}

case "$cmd" in
create)
    [[ $# -eq 4 ]] || usage
    addr_host=$(with_prefix "$3")
    addr_ns=$(with_prefix "$4")
    ! ns_exists || die "namespace '$name' exists already; delete it first"
    ip netns add "$name" || die "cannot create namespace '$name'"
    # From here, undo everything on failure.
    trap '"$0" delete "$name" >/dev/null 2>&1 || true' ERR
    ip link add "$host_if" type veth peer name "$ns_if" netns "$name"
    ip addr add "$addr_host" dev "$host_if"
    ip link set "$host_if" up
    ip -n "$name" addr add "$addr_ns" dev "$ns_if"
    ip -n "$name" link set "$ns_if" up
    ip -n "$name" link set lo up
    # A permanent neighbour entry: with the link down, the host then sends
    # into the void instead of failing ARP and reporting "No route to host".
    mac=$(cat "/sys/class/net/$host_if/address")
    mac_ns=$(ip netns exec "$name" cat "/sys/class/net/$ns_if/address")
    ip neigh replace "${addr_ns%/*}" lladdr "$mac_ns" dev "$host_if" \
        nud permanent
    ip -n "$name" neigh replace "${addr_host%/*}" lladdr "$mac" \
        dev "$ns_if" nud permanent
    trap - ERR
    ;;
down)
    [[ $# -eq 2 ]] || usage
    ns_exists || die "namespace '$name' does not exist"
    ip -n "$name" link set "$ns_if" down
    ;;
up)
    [[ $# -eq 2 ]] || usage
    ns_exists || die "namespace '$name' does not exist"
    ip -n "$name" link set "$ns_if" up
    ;;
delete)
    [[ $# -eq 2 ]] || usage
    # Deleting the namespace destroys NAME-n, and with it NAME-h.
    if ns_exists; then
        ip netns delete "$name" || die "cannot delete namespace '$name'"
    fi
    if ip link show "$host_if" >/dev/null 2>&1; then
        ip link delete "$host_if" || die "cannot delete link '$host_if'"
    fi
    ;;
*)
    usage
    ;;
esac

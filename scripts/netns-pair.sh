#!/usr/bin/env bash
# scripts/netns-pair.sh - a network namespace joined to the host by a veth
# pair, for partition tests and benchmarks.
#
#   scripts/netns-pair.sh create NAME [ADDR_HOST ADDR_NS]
#       make namespace NAME and a veth pair NAME-h (host) / NAME-n (in
#       NAME), address them ADDR_HOST and ADDR_NS (a /24 unless written
#       ADDR/PREFIX, e.g. 10.201.7.1/30), and bring both ends and the
#       namespace's lo up. Fails if NAME already exists. Refuses (exit 3)
#       an address whose network overlaps an address or a route of the
#       host (`ip -4 addr`, `ip -4 route show table all`, the default
#       route aside). Without the addresses it picks a free /30 in
#       10.0.0.0/8, 172.16.0.0/12 or 100.64.0.0/10 (the first free one in
#       an order drawn from NAME) and prints "ADDR_HOST ADDR_NS" (no
#       prefix) on stdout. The check and the creation hold a lock
#       (/run/lock/fling-netns-pair.lock, /tmp when there is no
#       /run/lock), so two runs never take the same subnet; a network
#       that is reached only through the default route is not seen.
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
# Needs root and iproute2's `ip` (and util-linux's flock for create); exits
# 2 on bad usage, 1 on failure, 3 when an address is in use, with the
# reason on stderr.
#
# Why the namespace end: taking the host end down would drop the host's
# route to ADDR_NS, and the host would send to the default gateway instead.
set -euo pipefail

usage() {
    echo "usage: $0 create NAME [ADDR_HOST ADDR_NS] | down NAME | up NAME" \
        "| delete NAME" >&2
    exit 2
}

die() {
    echo "$0: $*" >&2
    exit 1
}

bad() {
    echo "$0: $*" >&2
    exit 2
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

# ip_int A.B.C.D: the address as an integer; exit 2 when it is not one.
ip_int() {
    local IFS=. o
    local -a oct
    [[ "$1" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] ||
        bad "'$1' is not an IPv4 address (A.B.C.D)"
    read -r -a oct <<<"$1"
    for o in "${oct[@]}"; do
        ((10#$o <= 255)) || bad "'$1' is not an IPv4 address (A.B.C.D)"
    done
    echo $(((10#${oct[0]} << 24) | (10#${oct[1]} << 16) |
        (10#${oct[2]} << 8) | 10#${oct[3]}))
}

# cidr_check ADDR/PREFIX: exit 2 unless a valid address and prefix 0..32.
cidr_check() {
    local a=${1%/*} p=${1#*/}
    if ! [[ "$p" =~ ^[0-9]{1,2}$ ]] || ((10#$p > 32)); then
        bad "'$1' has no prefix length 0 to 32"
    fi
    ip_int "$a" >/dev/null
}

# overlaps A/P B/Q: true when the two networks share an address.
overlaps() {
    local a b p=${1#*/} q=${2#*/} m mask
    a=$(ip_int "${1%/*}")
    b=$(ip_int "${2%/*}")
    m=$((p < q ? p : q))
    mask=$(((0xffffffff << (32 - m)) & 0xffffffff))
    [[ $m -gt 0 ]] || mask=0
    [[ $((a & mask)) -eq $((b & mask)) ]]
}

# host_nets: one line per IPv4 network of the host, "NET what": its
# addresses and its routes in every table, the default route aside.
host_nets() {
    ip -o -4 addr show | awk '{print $4, "address " $4 " of " $2}'
    # A route's type, when it has one, comes before its destination.
    ip -4 route show table all | awk '
        {
            line = $0
            sub(/ +$/, "", line)
            d = $1
        }
        d ~ /^(unicast|local|broadcast|multicast|unreachable)$/ ||
            d ~ /^(blackhole|prohibit|throw|nat|anycast)$/ { d = $2 }
        d == "default" { next }
        {
            if (d !~ /\//)
                d = d "/32"
            print d, "route \x27" line "\x27"
        }'
}

# in_use ADDR/PREFIX: prints what of the host it overlaps; false if none.
in_use() {
    local net what
    while read -r net what; do
        [[ -n "$net" ]] || continue
        if overlaps "$1" "$net"; then
            echo "$what"
            return 0
        fi
    done <<<"$nets"
    return 1
}

# pick_free: prints the host and namespace addresses (.1 and .2) of the
# first /30 free on the host, in an order drawn from NAME.
pick_free() {
    local seed i pool base size net
    seed=$(printf %s "$name" | cksum | awk '{print $1}')
    local -a bases=("10.0.0.0" "172.16.0.0" "100.64.0.0")
    local -a sizes=($((1 << 24)) $((1 << 20)) $((1 << 22)))
    for ((i = 0; i < 3 * 256; i++)); do
        pool=$((i % 3))
        base=$(ip_int "${bases[pool]}")
        size=${sizes[pool]}
        net=$((base + (((seed + i * 2654435761) % (size / 4)) * 4)))
        if ! in_use "$(int_ip $((net + 1)))/30" >/dev/null; then
            echo "$(int_ip $((net + 1))) $(int_ip $((net + 2)))"
            return 0
        fi
    done
    return 1
}

int_ip() {
    echo "$((($1 >> 24) & 255)).$((($1 >> 16) & 255)).$((($1 >> 8) & 255)).$(($1 & 255))"
}

case "$cmd" in
create)
    [[ $# -eq 2 || $# -eq 4 ]] || usage
    command -v flock >/dev/null 2>&1 ||
        die "'flock' is not installed; install util-linux"
    lock=/run/lock/fling-netns-pair.lock
    [[ -d /run/lock ]] || lock=/tmp/fling-netns-pair.lock
    exec 9>"$lock" || die "cannot open the lock file $lock"
    flock -w 60 9 || die "the lock $lock was held for 60 s; is a create stuck?"
    ! ns_exists || die "namespace '$name' exists already; delete it first"
    nets=$(host_nets)
    if [[ $# -eq 2 ]]; then
        picked=$(pick_free) || {
            echo "$0: no free /30 for namespace '$name' in 10.0.0.0/8," \
                "172.16.0.0/12 or 100.64.0.0/10; give ADDR_HOST ADDR_NS" >&2
            exit 3
        }
        addr_host="${picked% *}/30"
        addr_ns="${picked#* }/30"
    else
        addr_host=$(with_prefix "$3")
        addr_ns=$(with_prefix "$4")
        cidr_check "$addr_host"
        cidr_check "$addr_ns"
        for a in "$addr_host" "$addr_ns"; do
            if what=$(in_use "$a"); then
                echo "$0: address $a for namespace '$name' is in use on" \
                    "this host: it overlaps $what; choose a free subnet," \
                    "or give no addresses to have a free /30 picked" >&2
                exit 3
            fi
        done
    fi
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
    [[ $# -eq 4 ]] || echo "$picked"
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
    # Deleting the namespace destroys NAME-n, and with it NAME-h, but
    # asynchronously: NAME-h may vanish while it is deleted here too.
    if ns_exists; then
        ip netns delete "$name" || die "cannot delete namespace '$name'"
    fi
    if ip link show "$host_if" >/dev/null 2>&1; then
        ip link delete "$host_if" 2>/dev/null ||
            ! ip link show "$host_if" >/dev/null 2>&1 ||
            die "cannot delete link '$host_if'"
    fi
    ;;
*)
    usage
    ;;
esac

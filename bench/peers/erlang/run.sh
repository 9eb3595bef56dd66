#!/bin/sh
# bench/peers/erlang/run.sh - run the Erlang/OTP peers of fling's benchmarks.
#
#   bench/peers/erlang/run.sh [name...]
#
# Compiles fling_peer.erl into OUT_DIR (default: a fresh temporary
# directory, removed afterwards) and runs the named benchmarks (none = all).
# Figures go to stdout, one "<benchmark>.<metric> <value> <unit>" line each;
# everything else (compiler warnings included) goes to stderr. The exit
# status is erl's: 0 when every benchmark ran, 1 when one failed, 2 for an
# unknown name.
#
# +P 2000000 raises the process limit for actor.spawn's million processes;
# everything else is the VM's default (one scheduler per online core).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${OUT_DIR:-}" ]; then
    out=$OUT_DIR
    mkdir -p "$out"
else
    out=$(mktemp -d "${TMPDIR:-/tmp}/fling-peer.XXXXXX")
    trap 'rm -rf "$out"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
fi

erlc -o "$out" "$here/fling_peer.erl" >&2

status=0
erl -noshell +P 2000000 -pa "$out" -s fling_peer main "$@" -s init stop ||
    status=$?
exit "$status"

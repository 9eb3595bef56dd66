#!/usr/bin/env bash
# scripts/zk-test-server.sh - a throw-away ZooKeeper server for the tests.
#
#   scripts/zk-test-server.sh start DIR [PORT]   start a standalone server on
#                                   127.0.0.1 (PORT, or a free port), data in
#                                   DIR/data, log in DIR/zk.log; waits until
#                                   it answers `srvr`, then prints the port
#   scripts/zk-test-server.sh stop DIR   kill -9 the server started in DIR
#                                   (its pid is in DIR/zk.pid) and wait
#                                   until it is gone
#
# The server is Debian's `zookeeper` package (scripts/deps.sh test), run
# as org.apache.zookeeper.server.ZooKeeperServerMain with a 500 ms tick, so
# sessions may be as short as 1,000 ms. `start` again with the same DIR and
# PORT restarts it on the same data (the tests' "server comes back" case).
# Exits non-zero, with the reason on stderr, if the server is not up within
# ZK_START_TIMEOUT seconds (default 30).
set -euo pipefail

usage() {
    echo "usage: $0 start DIR [PORT] | stop DIR" >&2
    exit 2
}

[[ $# -ge 2 ]] || usage
cmd=$1
dir=$2

ZK_JAR=${ZK_JAR:-/usr/share/java/zookeeper.jar}

# srvr PORT: true when a server answers the four-letter word on PORT.
# A server still starting may accept and not answer: give it 1 s.
srvr() {
    local out
    out=$(timeout 1 bash -c \
        'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf srvr >&3 && cat <&3' \
        srvr "$1" 2>/dev/null) || return 1
    [[ "$out" == *"Mode: standalone"* ]]
}

# free_port: a port nobody listens on now (the kernel picks it).
free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
    else
        echo $((20000 + RANDOM % 20000))
    fi
}

case "$cmd" in
start)
    [[ -f "$ZK_JAR" ]] || {
        echo "zk-test-server: $ZK_JAR not found; install the Debian package 'zookeeper' (scripts/deps.sh test)" >&2
        exit 1
    }
    mkdir -p "$dir/data"
    port=${3:-$(free_port)}
    if [[ -f "$dir/zk.pid" ]] && kill -0 "$(cat "$dir/zk.pid")" 2>/dev/null; then
        echo "zk-test-server: a server started in $dir is still running (pid $(cat "$dir/zk.pid")); stop it first" >&2
        exit 1
    fi
    # 127.0.0.1 only, a short tick, no admin server (Jetty on 8080),
    # every four-letter word.
    cat >"$dir/zoo.cfg" <<CFG
tickTime=500
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=*
CFG
    java -Dzookeeper.admin.enableServer=false \
        -Dzookeeper.4lw.commands.whitelist='*' \
        -Dzookeeper.jmx.log4j.disable=true \
        -Xms32m -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        -cp "$ZK_JAR" org.apache.zookeeper.server.ZooKeeperServerMain \
        "$dir/zoo.cfg" >>"$dir/zk.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/zk.pid"
    deadline=$((SECONDS + ${ZK_START_TIMEOUT:-30}))
    until srvr "$port"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "zk-test-server: the server exited at start; see $dir/zk.log:" >&2
            tail -n 20 "$dir/zk.log" >&2
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            echo "zk-test-server: no answer on 127.0.0.1:$port within ${ZK_START_TIMEOUT:-30} s; see $dir/zk.log" >&2
            kill -9 "$pid" 2>/dev/null || true
            exit 1
        fi
        sleep 0.05
    done
    echo "$port"
    ;;
stop)
    [[ -f "$dir/zk.pid" ]] || exit 0
    pid=$(cat "$dir/zk.pid")
    kill -9 "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.02; done
    rm -f "$dir/zk.pid"
    ;;
*)
    usage
    ;;
esac

#!/usr/bin/env bash
# scripts/start-cluster.sh - start a fling cluster on this machine: one
# fling-jobmanager and N fling-taskmanagers (Flink's start-cluster.sh).
#
#   start-cluster.sh [-c CONFIG] [N]
#
# CONFIG: the cluster's configuration file (default:
# $FLING_CONF_DIR/config.yaml when FLING_CONF_DIR is set, else none: the
# defaults). N: how many TaskManagers (default 1). The TaskManagers are
# told the JobManager's bound port, so jobmanager.rpc.port: 0 works.
# Returns once every TaskManager is registered with the ResourceManager
# (exit 0), or stops what it started and exits 1 with the reason when a
# process dies or FLING_START_TIMEOUT seconds (default 60) pass.
#
# Environment:
#   FLING_BIN_DIR  where fling-jobmanager and fling-taskmanager are
#                  (default: beside this script, else $PATH)
#   FLING_LOG_DIR  log files, fling-<user>-jobmanager-0-<host>.log and
#                  fling-<user>-taskexecutor-<i>-<host>.log
#                  (default /tmp/fling-<user>/log)
#   FLING_PID_DIR  the pid file cluster.pid that stop-cluster.sh reads
#                  (default /tmp/fling-<user>)
set -euo pipefail

user=${USER:-$(id -un)}
host=$(hostname)
conf=""
if [[ -n "${FLING_CONF_DIR:-}" ]]; then
    conf="$FLING_CONF_DIR/config.yaml"
fi
if [[ $# -ge 2 && $1 == "-c" ]]; then
    conf=$2
    shift 2
fi
n=${1:-1}
if ! [[ $n =~ ^[0-9]+$ ]] || [[ $# -gt 1 ]]; then
    echo "usage: $0 [-c CONFIG] [N]" >&2
    exit 2
fi
if [[ -n $conf && ! -r $conf ]]; then
    echo "start-cluster.sh: cannot read configuration file '$conf'" >&2
    exit 1
fi

bin=${FLING_BIN_DIR:-$(cd "$(dirname "$0")" && pwd)}
jm_bin=$bin/fling-jobmanager
tm_bin=$bin/fling-taskmanager
if [[ ! -x $jm_bin ]]; then
    jm_bin=$(command -v fling-jobmanager || true)
    tm_bin=$(command -v fling-taskmanager || true)
fi
if [[ -z $jm_bin || -z $tm_bin ]]; then
    echo "start-cluster.sh: fling-jobmanager not found beside $0 nor in PATH; set FLING_BIN_DIR" >&2
    exit 1
fi

run_dir=/tmp/fling-$user
log_dir=${FLING_LOG_DIR:-$run_dir/log}
pid_dir=${FLING_PID_DIR:-$run_dir}
pid_file=$pid_dir/cluster.pid
timeout=${FLING_START_TIMEOUT:-60}
mkdir -p "$log_dir" "$pid_dir"

if [[ -s $pid_file ]]; then
    while read -r _ pid; do
        if kill -0 "$pid" 2>/dev/null; then
            echo "start-cluster.sh: a cluster started from $pid_file still runs (pid $pid); stop it with stop-cluster.sh" >&2
            exit 1
        fi
    done <"$pid_file"
fi
: >"$pid_file"

conf_args=()
[[ -n $conf ]] && conf_args=(-c "$conf")

fail() {
    echo "start-cluster.sh: $1" >&2
    FLING_PID_DIR=$pid_dir "$(dirname "$0")/stop-cluster.sh" >/dev/null 2>&1 || true
    exit 1
}

# The JobManager; its first line of stdout is its address. Its stderr
# goes to its log too (a fatal reason), appended as the log is.
jm_log=$log_dir/fling-$user-jobmanager-0-$host.log
jm_out=$pid_dir/jobmanager.out
# shellcheck disable=SC2094
"$jm_bin" "${conf_args[@]}" --log "$jm_log" >"$jm_out" 2>>"$jm_log" &
jm_pid=$!
echo "jobmanager $jm_pid" >>"$pid_file"
deadline=$((SECONDS + timeout))
address=""
while [[ -z $address ]]; do
    kill -0 "$jm_pid" 2>/dev/null || fail "the JobManager exited at once; see $jm_log"
    (( SECONDS < deadline )) || fail "the JobManager did not start within $timeout s; see $jm_log"
    address=$(head -n 1 "$jm_out" 2>/dev/null || true)
    [[ -n $address ]] || sleep 0.05
done
port=${address##*:}
echo "Started the JobManager: pid $jm_pid, $address, log $jm_log"

for ((i = 1; i <= n; i++)); do
    tm_log=$log_dir/fling-$user-taskexecutor-$i-$host.log
    # shellcheck disable=SC2094
    "$tm_bin" "${conf_args[@]}" -D "jobmanager.rpc.port=$port" --log "$tm_log" \
        >/dev/null 2>>"$tm_log" &
    echo "taskmanager $!" >>"$pid_file"
    echo "Started TaskManager $i: pid $!, log $tm_log"
done

# Registered: one "Registered TaskManager" line per TaskManager in the
# JobManager's log.
while :; do
    got=$(grep -c 'app: Registered TaskManager ' "$jm_log" || true)
    (( got >= n )) && break
    while read -r role pid; do
        kill -0 "$pid" 2>/dev/null || fail "the $role with pid $pid exited; see its log in $log_dir"
    done <"$pid_file"
    (( SECONDS < deadline )) || fail "$got of $n TaskManagers registered within $timeout s; see $jm_log"
    sleep 0.05
done
echo "Cluster up: JobManager $address with $n TaskManagers registered"

#!/usr/bin/env bash
# scripts/stop-cluster.sh - stop the cluster start-cluster.sh started, by
# the process ids in its pid file: the TaskManagers first, then the
# JobManager, each with SIGTERM and, if still running after
# FLING_STOP_TIMEOUT seconds (default 10), SIGKILL.
#
#   stop-cluster.sh
#
# Environment: FLING_PID_DIR as for start-cluster.sh (default
# /tmp/fling-<user>). Exits 0 once every process is gone (1 if one had to
# be killed), the pid file removed.
set -euo pipefail

user=${USER:-$(id -un)}
pid_dir=${FLING_PID_DIR:-/tmp/fling-$user}
pid_file=$pid_dir/cluster.pid
timeout=${FLING_STOP_TIMEOUT:-10}

if [[ ! -s $pid_file ]]; then
    echo "stop-cluster.sh: no cluster to stop ($pid_file is missing or empty)"
    exit 0
fi

status=0

# Whether pid still runs: a zombie (exited, not yet reaped by its parent)
# does not.
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

# Stops one process: SIGTERM, a bounded wait, then SIGKILL.
stop_one() {
    local role=$1 pid=$2
    alive "$pid" || return 0
    echo "Stopping the $role (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || return 0
    local deadline=$((SECONDS + timeout))
    while alive "$pid"; do
        if (( SECONDS >= deadline )); then
            echo "stop-cluster.sh: the $role (pid $pid) did not stop within $timeout s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
            status=1
            break
        fi
        sleep 0.05
    done
}

# TaskManagers in reverse order of start, then the JobManager.
mapfile -t lines < <(tac "$pid_file")
for line in "${lines[@]}"; do
    read -r role pid <<<"$line"
    [[ $role == taskmanager ]] && stop_one TaskManager "$pid"
done
for line in "${lines[@]}"; do
    read -r role pid <<<"$line"
    [[ $role == jobmanager ]] && stop_one JobManager "$pid"
done
rm -f "$pid_file" "$pid_dir/jobmanager.out"
exit $status

#!/usr/bin/env bash
# scripts/demo-cluster.sh - what `make demo` shows: a fling cluster on this
# machine running a job.
#
#   demo-cluster.sh BUILD_DIR
#
# Starts a fling-jobmanager on 127.0.0.1 (port 0: the port it prints on
# its first line) and two fling-taskmanagers with 2 slots each, prints the
# three graphs of examples/jobs/grep.json with parallelism 4 (fling plan),
# runs it with `fling run` over a generated input (the tasks' state
# changes as they happen), checks the part files against grep -F, and
# stops the cluster: also on Ctrl-C and on any failure, so that no process
# is left behind. Exit 0 only if the job finished with grep -F's output.
#
# Environment: FLING_DEMO_DIR, the folder for the input, the output and
# the logs (default: a new one under /tmp, removed at the end unless the
# demo failed).
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
build=$1
src=$(cd "$(dirname "$0")/.." && pwd)
fling=$build/apps/client/fling
jm_bin=$build/apps/jobmanager/fling-jobmanager
tm_bin=$build/apps/taskmanager/fling-taskmanager
for p in "$fling" "$jm_bin" "$tm_bin"; do
    if [[ ! -x $p ]]; then
        echo "demo-cluster.sh: $p is missing; build it first (make demo does)" >&2
        exit 1
    fi
done

keep=${FLING_DEMO_DIR:+yes}
dir=${FLING_DEMO_DIR:-$(mktemp -d /tmp/fling-demo-XXXXXX)}
mkdir -p "$dir"
pids=()
ok=no

# Stops what was started, by process id: SIGTERM, then SIGKILL after 5 s.
stop_cluster() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}

finish() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ ${#pids[@]} -gt 0 ]]; then
        echo "== Stopping the cluster"
        stop_cluster
    fi
    if [[ $ok == yes && -z $keep ]]; then
        rm -rf "$dir"
    elif [[ $ok != yes ]]; then
        echo "demo-cluster.sh: the demo failed; the logs are in $dir" >&2
        [[ $rc -eq 0 ]] && rc=1
    fi
    exit "$rc"
}
trap finish EXIT
trap 'echo; echo "demo-cluster.sh: interrupted" >&2; exit 130' INT TERM

# Waits up to 30 s for a line matching pattern in file; fails the demo
# if pid dies first.
wait_for() {
    local file=$1 pattern=$2 pid=$3
    for _ in $(seq 300); do
        if grep -q -- "$pattern" "$file" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "demo-cluster.sh: process $pid ended before '$pattern'; see $file" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "demo-cluster.sh: no '$pattern' in $file within 30 s" >&2
    return 1
}

# A generated input: 1,000,000 lines of log-like text (about 30 MB), the
# same every run (a Park-Miller generator: exact in awk's doubles).
input=$dir/input.txt
pattern="ERROR"
awk 'BEGIN {
    split("INFO INFO INFO WARN INFO ERROR INFO DEBUG", lv, " ");
    split("registered heartbeat deployed finished slot offered timeout", ev, " ");
    x = 42;
    for (i = 1; i <= 1000000; i++) {
        x = (x * 16807) % 2147483647;
        printf "%07d %s task-%d %s\n", i, lv[x % 8 + 1], int(x / 8) % 64, ev[int(x / 512) % 7 + 1];
    }
}' >"$input"

echo "== Starting a JobManager and two TaskManagers on 127.0.0.1"
"$jm_bin" -D jobmanager.rpc.address=127.0.0.1 -D jobmanager.rpc.port=0 \
    --log "$dir/jobmanager.log" >"$dir/jobmanager.out" 2>&1 &
jm=$!
pids+=("$jm")
wait_for "$dir/jobmanager.out" '^fling.tcp://' "$jm"
address=$(head -n 1 "$dir/jobmanager.out")
hostport=${address#fling.tcp://}
echo "JobManager at $address (pid $jm)"
for i in 1 2; do
    "$tm_bin" -D jobmanager.rpc.address=127.0.0.1 \
        -D "jobmanager.rpc.port=${hostport##*:}" \
        -D taskmanager.host=127.0.0.1 -D taskmanager.resource-id=tm$i \
        -D taskmanager.numberOfTaskSlots=2 \
        --log "$dir/taskmanager-$i.log" >"$dir/taskmanager-$i.out" 2>&1 &
    pids+=("$!")
    echo "TaskManager tm$i (pid $!)"
done
for i in 1 2; do
    wait_for "$dir/jobmanager.log" "Registered TaskManager tm$i " "$jm"
done
echo "Both TaskManagers are registered: 4 slots."

job=$src/examples/jobs/grep.json
args=(--input "$input" --pattern "$pattern" --output "$dir/out")
echo
echo "== The plan: fling plan -p 4 grep.json (StreamGraph, JobGraph, ExecutionGraph)"
"$fling" plan -p 4 "$job" "${args[@]}"

echo
echo "== Running it: fling run -m $hostport -p 4 grep.json --pattern $pattern"
"$fling" run -m "$hostport" -p 4 "$job" "${args[@]}"

echo
echo "== The result: the part files against grep -F"
ls "$dir/out"
want=$(grep -c -F -- "$pattern" "$input")
got=$(cat "$dir"/out/part-* | wc -l)
head -n 3 "$dir/out/part-0"
echo "..."
if cat "$dir"/out/part-{0,1,2,3} | cmp -s - <(grep -F -- "$pattern" "$input"); then
    echo "$got lines contain '$pattern', the same lines in the same order as grep -F finds ($want)."
else
    echo "demo-cluster.sh: the part files differ from grep -F's output ($got lines, grep -F has $want)" >&2
    exit 1
fi
ok=yes

#!/usr/bin/env bash
# scripts/bench.sh - run fling's benchmarks beside their Erlang peers.
#
#   scripts/bench.sh BUILD_DIR [name...]
#
# Runs BUILD_DIR/bench/fling_bench and bench/peers/erlang/run.sh with the
# same benchmark names (none = all), each FLING_BENCH_RUNS times (default
# 3), interleaved: fling run 1, erlang run 1, fling run 2, ... Both print
# lines "<benchmark>.<metric> <value> <unit>". The report shows the machine
# and the command, the raw output of every run, then one row per figure:
# the median of each side, the ratio and the target. It is printed and
# written to BUILD_DIR/bench-report.txt.
#
# Some benchmarks have no peer (FLING_ONLY below): the peer is not asked to
# run them, and their target compares them with another fling figure of the
# same run (kind "self"). Naming such a benchmark adds the one it is
# compared with to the run.
#
# Speed is never asserted: the exit status is 0 even when targets are
# missed, 1 when a benchmark program failed (non-zero exit or a hang), 2 for
# a bad command line. Without erl (or without the peer script) the peer is
# skipped with a note and only fling's figures are shown.
#
# Environment:
#   FLING_BENCH_RUNS     runs per side (default 3)
#   FLING_BENCH_TIMEOUT  seconds one program run may take (default 1800)
#   FLING_BENCH_ARGS     extra options for fling_bench (e.g. "--workers 2")
#   FLING_BENCH_PEER     the peer script (default bench/peers/erlang/run.sh)
set -u
export LC_ALL=C

# Targets: key, kind, threshold[, reference]. kind "ratio": fling/peer
# median >= threshold; kind "max": fling median <= threshold (absolute, in
# the figure's unit); kind "self": fling median / fling's median of the
# reference key, in the same run, >= threshold (a fling-vs-fling ratio).
TARGETS='
actor.counting.rate          ratio 5
actor.fanin.rate             ratio 5
actor.pingpong.rate          ratio 3
actor.threadring.rate        ratio 3
actor.ask.rate               ratio 3
actor.spawn.rate             ratio 10
actor.spawn.bytes_per_actor  max   256
rpc.local_call.rate          ratio 3
rpc.local_tell.rate          self  0.5 actor.counting.rate
'
# Benchmarks the peer does not have.
FLING_ONLY='rpc.local_tell'
# Units where less is better: the ratio column then shows peer/fling, so a
# number above 1 is fling's advantage either way.
LOWER_IS_BETTER_UNITS='bytes ns us ms s'

PEER_NAME=erlang

usage() {
    echo "usage: scripts/bench.sh BUILD_DIR [name...]" >&2
    echo "  env: FLING_BENCH_RUNS (default 3), FLING_BENCH_TIMEOUT," \
         "FLING_BENCH_ARGS" >&2
    exit 2
}

[ $# -ge 1 ] || usage
case $1 in -h|--help) usage ;; esac
BUILD=$1
shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$BUILD/bench/fling_bench
PEER=${FLING_BENCH_PEER:-$ROOT/bench/peers/$PEER_NAME/run.sh}
RUNS=${FLING_BENCH_RUNS:-3}
TIMEOUT=${FLING_BENCH_TIMEOUT:-1800}
read -r -a FLING_ARGS <<<"${FLING_BENCH_ARGS:-}"

if ! [[ $RUNS =~ ^[1-9][0-9]*$ ]]; then
    echo "bench.sh: FLING_BENCH_RUNS must be a positive integer" \
         "(got '$RUNS')" >&2
    exit 2
fi
if ! [[ $TIMEOUT =~ ^[1-9][0-9]*$ ]]; then
    echo "bench.sh: FLING_BENCH_TIMEOUT must be a positive integer" \
         "(got '$TIMEOUT')" >&2
    exit 2
fi
if [ ! -d "$BUILD" ] || [ ! -x "$BIN" ]; then
    echo "bench.sh: $BIN not found; build it first:" >&2
    echo "  cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release" \
         "-DFLING_BUILD_BENCH=ON && cmake --build $BUILD --target" \
         "fling_bench" >&2
    exit 2
fi
# Reject unknown names before running anything.
if ! KNOWN=$("$BIN" --list | awk '{print $1}'); then
    echo "bench.sh: $BIN --list failed" >&2
    exit 1
fi
for n in "$@"; do
    if ! grep -qxF -- "$n" <<<"$KNOWN"; then
        echo "bench.sh: unknown benchmark '$n'; known:" \
             "$(tr '\n' ' ' <<<"$KNOWN")" >&2
        exit 2
    fi
done

# NAMES: what both sides run (none = all). A "self" target needs its
# reference in the same run: add the reference's benchmark when it is
# missing. PEER_NAMES: NAMES without the benchmarks the peer lacks.
NAMES=("$@")
ADDED=()
if [ ${#NAMES[@]} -gt 0 ]; then
    while read -r key kind _ ref; do
        [ "$kind" = self ] || continue
        bench=${key%.*} refbench=${ref%.*}
        if printf '%s\n' "${NAMES[@]}" | grep -qxF -- "$bench" &&
           ! printf '%s\n' "${NAMES[@]}" | grep -qxF -- "$refbench"; then
            NAMES+=("$refbench")
            ADDED+=("$refbench (the reference of $key)")
        fi
    done <<<"$TARGETS"
fi
PEER_NAMES=()
for n in "${NAMES[@]}"; do
    grep -qwF -- "$n" <<<"$FLING_ONLY" || PEER_NAMES+=("$n")
done

REPORT=$BUILD/bench-report.txt
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fling-bench.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
: >"$TMP/data"      # side run key value unit, one line per figure
: >"$TMP/failures"  # one line per failed program run

# Which peer can run.
PEER_SKIP=""
if ! command -v erl >/dev/null 2>&1; then
    PEER_SKIP="erl not found in PATH"
elif [ ! -f "$PEER" ]; then
    PEER_SKIP="$PEER does not exist"
elif [ ${#NAMES[@]} -gt 0 ] && [ ${#PEER_NAMES[@]} -eq 0 ]; then
    PEER_SKIP="it has none of the benchmarks named ($FLING_ONLY: fling only)"
fi
HAVE_TIMEOUT=""
command -v timeout >/dev/null 2>&1 && HAVE_TIMEOUT=yes
PEER_CMD=("$PEER")
[ -f "$PEER" ] && [ ! -x "$PEER" ] && PEER_CMD=(bash "$PEER")

machine() {
    local cpu
    cpu=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo \
          2>/dev/null)
    [ -n "$cpu" ] || cpu=$(uname -m)
    echo "== machine"
    echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "host:     $(uname -n)"
    echo "cpu:      $cpu"
    echo "nproc:    $(nproc 2>/dev/null || echo '?')"
    echo "kernel:   $(uname -srvm)"
    echo "memory:   $(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' \
                      /proc/meminfo 2>/dev/null)"
    echo "loadavg:  $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)" \
         "(at start)"
    local rev
    rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
    if [ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -1)" ]
    then
        rev="$rev (work tree has uncommitted changes)"
    fi
    echo "fling:    $rev, build type" \
         "$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' \
            "$BUILD/CMakeCache.txt" 2>/dev/null || echo '?')," \
         "C compiler $(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' \
            "$BUILD/CMakeCache.txt" 2>/dev/null || echo '?')"
    if [ -z "$PEER_SKIP" ]; then
        echo "$PEER_NAME:   $(erl -noshell -eval 'io:format("OTP ~s, ERTS ~s, ~b schedulers online~n", [erlang:system_info(otp_release), erlang:system_info(version), erlang:system_info(schedulers_online)]), halt().' 2>&1 | head -1)"
    fi
    echo
    echo "== command"
    echo "report:   $(printf '%q ' "$0" "$BUILD" "$@")"
    echo "fling:    $(printf '%q ' "$BIN" "${FLING_ARGS[@]}" "${NAMES[@]}")"
    if [ -n "$PEER_SKIP" ]; then
        echo "$PEER_NAME:   SKIPPED: $PEER_SKIP"
    else
        echo "$PEER_NAME:   $(printf '%q ' "${PEER_CMD[@]}" \
                              "${PEER_NAMES[@]}")"
    fi
    local a
    for a in "${ADDED[@]}"; do
        echo "added:    $a"
    done
    echo "no peer:  $FLING_ONLY (fling only; compared with fling's own" \
         "figures)"
    echo "runs:     $RUNS per side, interleaved (FLING_BENCH_RUNS)"
    echo
}

# run_one SIDE RUN CMD...: runs one program, prints its raw output tagged
# with side and run, records its figures and its failure, if any.
run_one() {
    local side=$1 run=$2
    shift 2
    local t0 t1 rc
    t0=$(date +%s.%N)
    if [ -n "$HAVE_TIMEOUT" ]; then
        timeout -k 10 "$TIMEOUT" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
    else
        "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
    fi
    rc=$?
    t1=$(date +%s.%N)
    printf -- '-- %s run %d/%d: exit %d, %.1f s\n' "$side" "$run" "$RUNS" \
        "$rc" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')"
    sed "s/^/[$side $run] /" "$TMP/out"
    sed "s/^/[$side $run] # /" "$TMP/err"
    awk -v side="$side" -v run="$run" '
        NF == 3 && $1 ~ /^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+$/ &&
        $2 ~ /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/ {
            print side, run, $1, $2, $3; next
        }
        NF > 0 { printf "[%s %d] ? not a figure line: %s\n", side, run, $0 \
                 > "/dev/stderr" }
    ' "$TMP/out" >>"$TMP/data"
    if [ "$rc" -ne 0 ]; then
        local why="exit status $rc"
        [ -n "$HAVE_TIMEOUT" ] && [ "$rc" -eq 124 ] &&
            why="timed out after $TIMEOUT s"
        echo "$side run $run failed: $why" >>"$TMP/failures"
        echo "[$side $run] FAILED: $why"
    fi
}

# medians: "side key median unit runs spread%" for every side and key.
medians() {
    sort -k1,1 -k3,3 -k4,4g "$TMP/data" | awk '
        function flush(   m, lo, hi) {
            if (n == 0) return
            if (n % 2) m = v[(n + 1) / 2]
            else m = (v[n / 2] + v[n / 2 + 1]) / 2
            lo = v[1]; hi = v[n]
            printf "%s %s %.17g %s %d %.1f\n", side, key, m, unit, n,
                   (m != 0 ? 100 * (hi - lo) / (m < 0 ? -m : m) : 0)
        }
        $1 != side || $3 != key { flush(); side = $1; key = $3; n = 0 }
        { v[++n] = $4; unit = $5 }
        END { flush() }'
}

table() {
    local order
    order=$(awk '!seen[$3]++ {print $3}' "$TMP/data")
    {
        echo "#TARGETS"
        echo "$TARGETS"
        echo "#MEDIANS"
        medians
        echo "#ORDER"
        echo "$order"
    } | awk -v peer="$PEER_NAME" -v lower="$LOWER_IS_BETTER_UNITS" \
            -v peerskip="$PEER_SKIP" '
        function num(x) {
            return (x == int(x)) ? sprintf("%.0f", x) : sprintf("%.1f", x)
        }
        BEGIN { nl = split(lower, L, " "); for (i = 1; i <= nl; i++) low[L[i]] = 1 }
        /^#/ { sec = $1; next }
        NF == 0 { next }
        sec == "#TARGETS" { tkind[$1] = $2; tval[$1] = $3; tref[$1] = $4; next }
        sec == "#MEDIANS" {
            med[$1, $2] = $3; unit[$2] = $4; cnt[$1, $2] = $5
            spr[$1, $2] = $6; next
        }
        sec == "#ORDER" { order[++nk] = $1; next }
        END {
            fmt = "%-29s %-14s %12s %6s %12s %6s %10s  %-22s %s\n"
            printf fmt, "figure", "unit", "fling", "+-%", peer, "+-%",
                   "ratio", "target", "result"
            npass = nmiss = nna = nself = 0
            for (k = 1; k <= nk; k++) {
                key = order[k]
                hasf = (("fling", key) in med); hasp = ((peer, key) in med)
                f = hasf ? med["fling", key] : 0
                p = hasp ? med[peer, key] : 0
                lb = (unit[key] in low)
                ratio = "-"; r = ""
                if (hasf && hasp && f > 0 && p > 0) {
                    r = lb ? p / f : f / p
                    ratio = sprintf("%.2fx%s", r, lb ? "*" : "")
                }
                target = "-"; result = "-"
                if (key in tkind) {
                    if (tkind[key] == "ratio") {
                        target = sprintf(">= %sx %s", tval[key], peer)
                        if (r == "") { result = "n/a"; nna++ }
                        else if (r >= tval[key]) { result = "PASS"; npass++ }
                        else { result = "MISS"; nmiss++ }
                    } else if (tkind[key] == "self") {
                        # fling vs fling: this figure over the reference
                        # figure, both fling medians of this run.
                        ref = tref[key]
                        target = sprintf(">= %sx %s", tval[key],
                                         substr(ref, 1, length(ref) - 5))
                        hasr = (("fling", ref) in med)
                        g = hasr ? med["fling", ref] : 0
                        ratio = "-"; r = ""
                        if (hasf && f > 0 && g > 0) {
                            r = f / g; ratio = sprintf("%.2fx^", r)
                        }
                        if (r == "") { result = "n/a"; nna++ }
                        else if (r >= tval[key]) { result = "PASS"; npass++ }
                        else { result = "MISS"; nmiss++ }
                        selfline[++nself] = sprintf("  %s / %s = %s / %s" \
                            " = %s (target >= %sx): %s", key, ref,
                            hasf ? num(f) : "-", hasr ? num(g) : "-",
                            r == "" ? "-" : sprintf("%.2fx", r), tval[key],
                            result)
                    } else if (tkind[key] == "max") {
                        target = sprintf("<= %s %s", tval[key], unit[key])
                        if (!hasf) { result = "n/a"; nna++ }
                        else if (f <= tval[key]) { result = "PASS"; npass++ }
                        else { result = "MISS"; nmiss++ }
                    }
                }
                printf fmt, key, unit[key],
                       hasf ? num(f) : "-", hasf ? spr["fling", key] : "-",
                       hasp ? num(p) : "-", hasp ? spr[peer, key] : "-",
                       ratio, target, result
            }
            print ""
            print "fling and " peer ": median of the runs; +-%: (max - min) / median."
            print "ratio: fling/" peer "; * marks figures where less is better" \
                  " (" lower "):"
            print "  there the ratio is " peer "/fling, fling'"'"'s advantage" \
                  " (above 1 = fling better)."
            if (nself > 0) {
                print "^ a fling-vs-fling ratio (no " peer " figure): the" \
                      " fling median over the fling median"
                print "  of the reference figure, both from this run:"
                for (k = 1; k <= nself; k++)
                    print selfline[k]
            }
            if (peerskip != "")
                print peer " peer skipped: " peerskip
            printf "targets: %d PASS, %d MISS, %d n/a (speed is reported," \
                   " never asserted)\n", npass, nmiss, nna
        }'
}

report() {
    machine "$@"
    echo "== raw output of every run"
    local i
    for ((i = 1; i <= RUNS; i++)); do
        run_one fling "$i" "$BIN" "${FLING_ARGS[@]}" "${NAMES[@]}"
        if [ -z "$PEER_SKIP" ]; then
            run_one "$PEER_NAME" "$i" "${PEER_CMD[@]}" "${PEER_NAMES[@]}"
        fi
    done
    echo
    echo "== results"
    table
    if [ -s "$TMP/failures" ]; then
        echo
        echo "== FAILED program runs"
        cat "$TMP/failures"
        return 1
    fi
    return 0
}

report "$@" 2>&1 | tee "$REPORT"
status=${PIPESTATUS[0]}
echo "report written to $REPORT"
exit "$status"

#!/usr/bin/env bash
# scripts/bench.sh - run fling's benchmarks beside their peers.
#
#   scripts/bench.sh BUILD_DIR [name...]
#
# Runs, in one invocation and interleaved, each FLING_BENCH_RUNS times
# (default 3): fling run 1, erlang run 1, floor run 1, grpc run 1, fling
# run 2, ... The sides:
#
#   fling   BUILD_DIR/bench/fling_bench
#   erlang  bench/peers/erlang/run.sh: the same benchmark names and keys as
#           fling, except the ones in ERLANG_LACKS below
#   floor   BUILD_DIR/bench/peers/floor/floor_peer: raw TCP, plain C
#           (floor.pingpong, floor.pipelined)
#   grpc    BUILD_DIR/bench/peers/grpc/grpc_peer: gRPC C++ unary calls
#           (grpc.unary, grpc.unary64, and over mutual TLS grpc.unary_tls,
#           grpc.unary64_tls); built only when gRPC++ was found
#
# Every program prints lines "<benchmark>.<metric> <value> <unit>" and takes
# benchmark names (none = all). The names given here may be any side's
# (fling_bench --list, floor_peer --list, grpc_peer --list); each side runs
# the ones it knows, erlang the fling names it has, and a side left with
# none is not run. A target whose figure is selected pulls in the benchmark
# of its reference on the reference's side (rpc.remote_call brings
# floor.pingpong along). No names: every side runs everything.
#
# The report shows the machine and the commands, the raw output of every
# run, then the median of every figure: fling beside erlang (same keys,
# with their ratio), the other peers' figures, and one line per target. It
# is printed and written to BUILD_DIR/bench-report.txt.
#
# The _tls benchmarks (fling's rpc.remote_*_tls, gRPC's grpc.*_tls) get one
# set of test certificates per invocation, made with scripts/test-certs.sh
# into the scratch folder (removed at the end) and passed to every side as
# FLING_BENCH_CERTS, unless that is set already.
#
# Speed is never asserted: the exit status is 0 even when targets are
# missed, 1 when a benchmark program failed (non-zero exit or a hang), 2 for
# a bad command line. A peer that cannot run (no erl; floor_peer or
# grpc_peer not built) is skipped with a note, and its targets are "n/a".
#
# Environment:
#   FLING_BENCH_RUNS     runs per side (default 3)
#   FLING_BENCH_TIMEOUT  seconds one program run may take (default 1800)
#   FLING_BENCH_ARGS     extra options for fling_bench (e.g. "--workers 2")
#   FLING_BENCH_PEERS    the peers to run (default "erlang floor grpc")
#   FLING_BENCH_PEER     the Erlang peer script (default
#                        bench/peers/erlang/run.sh)
set -u
export LC_ALL=C

# Targets, one per line: figure, operator, value, reference. The figure is
# always fling's median. The value is a factor ("5x") of the reference's
# median, or an absolute number in the figure's unit (reference "-"). The
# reference is a side ("erlang": its median of the same key) or side:key
# (that side's median of that key; fling:key compares two fling figures).
# ">=": more is better; "<=": less is better. A figure may have several
# targets.
TARGETS='
actor.counting.rate          >= 5x   erlang
actor.fanin.rate             >= 5x   erlang
actor.pingpong.rate          >= 10x  erlang
actor.threadring.rate        >= 8x   erlang
actor.ask.rate               >= 10x  erlang
actor.spawn.rate             >= 10x  erlang
actor.spawn.bytes_per_actor  <= 128  -
actor.flood.peak_rss_mib     <= 64   -
actor.flood.rate             >= 0.9x fling:actor.flood.unbounded_rate
rpc.local_call.rate          >= 8x   erlang
rpc.local_tell.rate          >= 0.5x fling:actor.counting.rate
rpc.remote_call.p50_us       <= 1.2x floor:floor.pingpong.p50_us
rpc.remote_pipelined.rate    >= 10x  grpc:grpc.unary64.rate
rpc.remote_pipelined.rate    >= 0.5x floor:floor.pipelined.rate
rpc.remote_call_tls.p50_us   <= 1.3x fling:rpc.remote_call.p50_us
rpc.remote_pipelined_tls.rate >= 10x grpc:grpc.unary64_tls.rate
mem.idle_conn.live_bytes_per_conn         <= 16384 -
mem.idle_endpoint.live_bytes_per_endpoint <= 1024  -
mem.tell_flood.live_after                 <= 16    -
'
# fling benchmarks the Erlang peer does not have.
ERLANG_LACKS='actor.flood rpc.local_tell rpc.remote_call rpc.remote_pipelined
              rpc.remote_call_tls rpc.remote_pipelined_tls
              cluster.heartbeat cluster.register'
# Units where less is better: in the fling/erlang table the ratio column
# then shows erlang/fling, so a number above 1 is fling's advantage either
# way.
LOWER_IS_BETTER_UNITS='bytes ns us ms s'
ALL_PEERS='erlang floor grpc'

usage() {
    echo "usage: scripts/bench.sh BUILD_DIR [name...]" >&2
    echo "  env: FLING_BENCH_RUNS (default 3), FLING_BENCH_TIMEOUT," \
         "FLING_BENCH_ARGS, FLING_BENCH_PEERS (default '$ALL_PEERS')" >&2
    exit 2
}

[ $# -ge 1 ] || usage
case $1 in -h|--help) usage ;; esac
BUILD=$1
shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$BUILD/bench/fling_bench
RUNS=${FLING_BENCH_RUNS:-3}
TIMEOUT=${FLING_BENCH_TIMEOUT:-1800}
PEERS=${FLING_BENCH_PEERS-$ALL_PEERS}
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
for p in $PEERS; do
    if ! grep -qwF -- "$p" <<<"$ALL_PEERS"; then
        echo "bench.sh: FLING_BENCH_PEERS: unknown peer '$p'" \
             "(known: $ALL_PEERS)" >&2
        exit 2
    fi
done
# The table must parse; a typo here would silently drop a target.
if ! awk 'NF == 0 { next }
          NF != 4 || ($2 != ">=" && $2 != "<=") ||
          $3 !~ /^[0-9]+(\.[0-9]+)?x?$/ ||
          ($3 ~ /x$/ && $4 == "-") || ($3 !~ /x$/ && $4 != "-") {
              print "bench.sh: bad TARGETS line: " $0 > "/dev/stderr"; bad = 1
          }
          END { exit bad }' <<<"$TARGETS"; then
    exit 2
fi
if [ ! -d "$BUILD" ] || [ ! -x "$BIN" ]; then
    echo "bench.sh: $BIN not found; build it first:" >&2
    echo "  cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release" \
         "-DFLING_BUILD_BENCH=ON && cmake --build $BUILD --target" \
         "bench_programs" >&2
    exit 2
fi

# ---- the sides --------------------------------------------------------------
# SIDES: fling, then the peers asked for, in that order (the order of the
# interleaved runs). CMD_<side>: the command as an array; SKIP[side]: why it
# cannot run ("" = it can); KNOWN[side]: its benchmark names, one per line.
declare -A SKIP KNOWN SEL
SIDES=(fling)
# shellcheck disable=SC2034  # CMD_<side> are read through cmd_of
CMD_fling=("$BIN" "${FLING_ARGS[@]}")
if ! KNOWN[fling]=$("$BIN" --list | awk '{print $1}'); then
    echo "bench.sh: $BIN --list failed" >&2
    exit 1
fi
SKIP[fling]=""

for p in $PEERS; do
    SIDES+=("$p")
    SKIP[$p]=""
    KNOWN[$p]=""
    case $p in
    erlang)
        script=${FLING_BENCH_PEER:-$ROOT/bench/peers/erlang/run.sh}
        # shellcheck disable=SC2034  # read through cmd_of
        CMD_erlang=("$script")
        if [ -f "$script" ] && [ ! -x "$script" ]; then
            # shellcheck disable=SC2034  # read through cmd_of
            CMD_erlang=(bash "$script")
        fi
        if ! command -v erl >/dev/null 2>&1; then
            SKIP[$p]="erl not found in PATH (Debian erlang-base)"
        elif [ ! -f "$script" ]; then
            SKIP[$p]="$script does not exist"
        fi
        # The fling names it has.
        KNOWN[$p]=$(grep -vxF -f <(tr ' ' '\n' <<<"$ERLANG_LACKS" |
                                   grep .) <<<"${KNOWN[fling]}")
        ;;
    floor | grpc)
        bin=$BUILD/bench/peers/$p/${p}_peer
        eval "CMD_$p=(\"\$bin\")"
        if [ ! -x "$bin" ]; then
            SKIP[$p]="$bin not built (cmake --build $BUILD --target"
            SKIP[$p]+=" bench_programs)"
            [ "$p" = grpc ] && SKIP[$p]+="; CMake builds it only when it" &&
                SKIP[$p]+=" finds gRPC++: Debian g++ libgrpc++-dev" &&
                SKIP[$p]+=" libprotobuf-dev protobuf-compiler" &&
                SKIP[$p]+=" protobuf-compiler-grpc (scripts/deps.sh bench)"
        elif ! KNOWN[$p]=$("$bin" --list | awk '{print $1}'); then
            SKIP[$p]="$bin --list failed"
        fi
        ;;
    esac
done

# cmd_of SIDE: the side's command, one word per line (for printing).
cmd_of() {
    local -n c="CMD_$1"
    printf '%s\n' "${c[@]}"
}

# has SIDE NAME: true if SIDE knows benchmark NAME.
has() {
    grep -qxF -- "$2" <<<"${KNOWN[$1]}"
}

# add SIDE NAME: selects NAME on SIDE (once).
add() {
    case " ${SEL[$1]:-} " in *" $2 "*) return ;; esac
    SEL[$1]="${SEL[$1]:-}${SEL[$1]:+ }$2"
}

# ---- what each side runs ----------------------------------------------------
# ALL: no names given, every side runs everything. Otherwise SEL[side] is
# the side's names (space-separated); a side with none is not run.
ALL=yes
ADDED=()
if [ $# -gt 0 ]; then
    ALL=""
    for n in "$@"; do
        found=""
        for s in "${SIDES[@]}"; do
            [ "$s" = erlang ] && continue  # follows fling, below
            if has "$s" "$n"; then
                add "$s" "$n"
                found=yes
            fi
        done
        if [ -z "$found" ]; then
            echo "bench.sh: unknown benchmark '$n'; known:" \
                 "$(for s in "${SIDES[@]}"; do
                        [ "$s" = erlang ] || echo "${KNOWN[$s]}"
                    done | tr '\n' ' ')" >&2
            for s in "${SIDES[@]}"; do
                [ -n "${SKIP[$s]}" ] &&
                    echo "bench.sh: $s peer skipped: ${SKIP[$s]}" >&2
            done
            exit 2
        fi
    done
    # A target of a selected fling figure pulls in its reference.
    while read -r key _ _ ref; do
        if [ -z "$key" ] || [ "$ref" = - ]; then
            continue
        fi
        case " ${SEL[fling]:-} " in *" ${key%.*} "*) ;; *) continue ;; esac
        case $ref in
        *:*) rside=${ref%%:*} rkey=${ref#*:} ;;
        *) rside=$ref rkey=$key ;;
        esac
        # Not asked for (unset) or cannot run (a reason): nothing to add.
        [ "${SKIP[$rside]-x}" = "" ] || continue
        # erlang runs what fling runs: select it there.
        [ "$rside" = erlang ] && rside=fling
        case " ${SEL[$rside]:-} " in *" ${rkey%.*} "*) continue ;; esac
        if has "$rside" "${rkey%.*}"; then
            add "$rside" "${rkey%.*}"
            ADDED+=("$rside ${rkey%.*} (the reference of $key)")
        fi
    done <<<"$TARGETS"
    # erlang runs the selected fling benchmarks it has.
    if [ -n "${SKIP[erlang]+set}" ]; then
        for n in ${SEL[fling]:-}; do
            has erlang "$n" && add erlang "$n"
        done
    fi
fi

# runs SIDE: true if SIDE runs at all (asked for, able to, something to do).
runs() {
    [ "${SKIP[$1]-x}" = "" ] && { [ -n "$ALL" ] || [ -n "${SEL[$1]:-}" ]; }
}

REPORT=$BUILD/bench-report.txt
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fling-bench.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
: >"$TMP/data"      # side run key value unit, one line per figure
: >"$TMP/failures"  # one line per failed program run
HAVE_TIMEOUT=""
command -v timeout >/dev/null 2>&1 && HAVE_TIMEOUT=yes

# The test certificates of the _tls benchmarks: one set for every side,
# when one of them runs. CERTS says where they come from (the report's
# machine section).
CERTS="none: no _tls benchmark selected"
if [ -n "${FLING_BENCH_CERTS:-}" ]; then
    CERTS="$FLING_BENCH_CERTS (FLING_BENCH_CERTS)"
elif [ -n "$ALL" ] ||
    grep -q '_tls\b' <<<"${SEL[fling]:-} ${SEL[grpc]:-}"; then
    if "$ROOT/scripts/test-certs.sh" "$TMP/certs" >/dev/null \
        2>"$TMP/certs.err"; then
        export FLING_BENCH_CERTS=$TMP/certs
        CERTS="made by scripts/test-certs.sh for this run, removed after it"
    else
        # The sides try again themselves and fail their _tls benchmarks
        # with the same reason.
        CERTS="scripts/test-certs.sh failed: $(tr '\n' ' ' <"$TMP/certs.err")"
    fi
fi

machine() {
    local cpu rev
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
    echo "certs:    $CERTS"
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
    if runs erlang; then
        echo "erlang:   $(erl -noshell -eval 'io:format("OTP ~s, ERTS ~s, ~b schedulers online~n", [erlang:system_info(otp_release), erlang:system_info(version), erlang:system_info(schedulers_online)]), halt().' 2>&1 | head -1)"
    fi
    if runs grpc; then
        echo "grpc:     gRPC++ $(pkg-config --modversion grpc++ 2>/dev/null ||
                                 echo '?'), C++ compiler" \
             "$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' \
                "$BUILD/CMakeCache.txt" 2>/dev/null || echo '?')"
    fi
    echo
    echo "== command"
    echo "report:   $(printf '%q ' "$0" "$BUILD" "$@")"
    local s a
    for s in "${SIDES[@]}"; do
        if [ -n "${SKIP[$s]}" ]; then
            printf '%-9s SKIPPED: %s\n' "$s:" "${SKIP[$s]}"
        elif ! runs "$s"; then
            printf '%-9s not run: none of the benchmarks named is one of' \
                   "$s:"
            echo " its own"
        else
            # shellcheck disable=SC2086
            printf '%-9s %s\n' "$s:" \
                "$(mapfile -t c < <(cmd_of "$s"); printf '%q ' "${c[@]}" \
                   ${SEL[$s]:-})"
        fi
    done
    for a in $ALL_PEERS; do
        grep -qwF -- "$a" <<<"$PEERS" ||
            printf '%-9s not asked for (FLING_BENCH_PEERS)\n' "$a:"
    done
    for a in "${ADDED[@]}"; do
        echo "added:    $a"
    done
    echo "runs:     $RUNS per side, interleaved (FLING_BENCH_RUNS)"
    echo
}

# run_one SIDE RUN: runs one program, prints its raw output tagged with side
# and run, records its figures and its failure, if any.
run_one() {
    local side=$1 run=$2 t0 t1 rc
    local -a cmd
    mapfile -t cmd < <(cmd_of "$side")
    # shellcheck disable=SC2206
    [ -z "$ALL" ] && cmd+=(${SEL[$side]})
    t0=$(date +%s.%N)
    if [ -n "$HAVE_TIMEOUT" ]; then
        timeout -k 10 "$TIMEOUT" "${cmd[@]}" >"$TMP/out" 2>"$TMP/err" \
            </dev/null
    else
        "${cmd[@]}" >"$TMP/out" 2>"$TMP/err" </dev/null
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

# table: the results: fling beside erlang, the other peers, the targets.
table() {
    local s notes=""
    for s in "${SIDES[@]}"; do
        [ -n "${SKIP[$s]}" ] && notes+="$s peer skipped: ${SKIP[$s]}"$'\n'
    done
    {
        echo "#TARGETS"
        echo "$TARGETS"
        echo "#MEDIANS"
        medians
        echo "#ORDER"
        awk '!seen[$3]++ {print $3}' "$TMP/data"
        echo "#SIDES"
        printf '%s\n' "${SIDES[@]}"
        echo "#NOTES"
        printf '%s' "$notes"
    } | awk -v lower="$LOWER_IS_BETTER_UNITS" '
        function num(x) {
            return (x == int(x)) ? sprintf("%.0f", x) : sprintf("%.1f", x)
        }
        BEGIN {
            nl = split(lower, L, " ")
            for (i = 1; i <= nl; i++) low[L[i]] = 1
        }
        /^#/ { sec = $1; next }
        sec == "#NOTES" { if (NF > 0) notes[++nnotes] = $0; next }
        NF == 0 { next }
        sec == "#TARGETS" {
            nt++; tkey[nt] = $1; top[nt] = $2; tval[nt] = $3; tref[nt] = $4
            next
        }
        sec == "#MEDIANS" {
            med[$1, $2] = $3; unit[$2] = $4; spr[$1, $2] = $6; next
        }
        sec == "#ORDER" { order[++nk] = $1; next }
        sec == "#SIDES" { sides[++ns] = $1; next }
        END {
            # 1. fling beside erlang: every key either of them has.
            print "-- fling and erlang (same benchmark, same keys)"
            fmt = "%-29s %-14s %12s %6s %12s %6s %10s\n"
            printf fmt, "figure", "unit", "fling", "+-%", "erlang", "+-%",
                   "ratio"
            for (k = 1; k <= nk; k++) {
                key = order[k]
                hasf = (("fling", key) in med); hasp = (("erlang", key) in med)
                if (!hasf && !hasp) continue
                f = hasf ? med["fling", key] : 0
                p = hasp ? med["erlang", key] : 0
                lb = (unit[key] in low)
                ratio = "-"
                if (hasf && hasp && f > 0 && p > 0)
                    ratio = sprintf("%.2fx%s", lb ? p / f : f / p,
                                    lb ? "*" : "")
                printf fmt, key, unit[key],
                       hasf ? num(f) : "-", hasf ? spr["fling", key] : "-",
                       hasp ? num(p) : "-", hasp ? spr["erlang", key] : "-",
                       ratio
            }
            print "ratio: fling/erlang; * marks figures where less is better" \
                  " (" lower "): there"
            print "  the ratio is erlang/fling, fling'"'"'s advantage" \
                  " (above 1 = fling better)."
            # 2. the other peers, each with its own keys.
            other = 0
            for (i = 1; i <= ns; i++) {
                s = sides[i]
                if (s == "fling" || s == "erlang") continue
                for (k = 1; k <= nk; k++) {
                    key = order[k]
                    if (!((s, key) in med)) continue
                    if (!other++) {
                        print ""
                        print "-- the other peers"
                        pfmt = "%-8s %-29s %-14s %12s %6s\n"
                        printf pfmt, "peer", "figure", "unit", "median", "+-%"
                    }
                    printf pfmt, s, key, unit[key], num(med[s, key]),
                           spr[s, key]
                }
            }
            # 3. the targets: fling median against the reference.
            print ""
            print "-- targets (fling median against the reference median," \
                  " same run)"
            tfmt = "%-62s %10s %10s %8s  %s\n"
            printf tfmt, "target", "fling", "reference", "ratio", "result"
            npass = nmiss = nna = nhidden = nwide = 0
            for (t = 1; t <= nt; t++) {
                key = tkey[t]; v = tval[t]; ref = tref[t]
                # A figure that was not measured (not selected, or its
                # benchmark failed) is counted below, not listed.
                if (!(("fling", key) in med)) { nhidden++; continue }
                rel = (v ~ /x$/); fac = v; sub(/x$/, "", fac); fac += 0
                hasf = (("fling", key) in med); f = hasf ? med["fling", key] : 0
                u = (key in unit) ? unit[key] : ""
                g = ""; r = ""
                if (rel) {
                    rside = ref; rkey = key
                    if (index(ref, ":")) {
                        rside = substr(ref, 1, index(ref, ":") - 1)
                        rkey = substr(ref, index(ref, ":") + 1)
                    }
                    text = sprintf("%s %s %sx %s%s", key, top[t], fac, rside,
                                   rkey == key ? "" : " " rkey)
                    if ((rside, rkey) in med) g = med[rside, rkey]
                    if (hasf && g != "" && g > 0) r = f / g
                    cmpv = r
                } else {
                    text = sprintf("%s %s %s %s", key, top[t], v, u)
                    if (hasf) cmpv = f; else cmpv = ""
                    fac = v + 0
                }
                if (cmpv == "") { result = "n/a"; nna++ }
                else if (top[t] == ">=" ? cmpv >= fac : cmpv <= fac) {
                    result = "PASS"; npass++
                } else { result = "MISS"; nmiss++ }
                # Stable: the spread of the fling figure under 25%.
                if (hasf && (("fling", key) in spr) &&
                    spr["fling", key] + 0 >= 25) {
                    result = result ", spread " spr["fling", key] "%"
                    nwide++
                }
                printf tfmt, text, hasf ? num(f) : "-",
                       g == "" ? "-" : num(g),
                       r == "" ? "-" : sprintf("%.2fx", r), result
            }
            print ""
            print "medians of the runs; +-%: (max - min) / median; ratio:" \
                  " fling / reference."
            for (i = 1; i <= nnotes; i++)
                print notes[i]
            if (nhidden > 0)
                printf "%d target(s) not listed: their fling figure was not" \
                       " measured in this run\n", nhidden
            printf "targets: %d PASS, %d MISS, %d n/a (speed is reported," \
                   " never asserted)\n", npass, nmiss, nna
            if (nwide > 0)
                printf "%d figure(s) spread 25%% or more over their runs" \
                       " (target: under 25%%)\n", nwide
        }'
}

report() {
    machine "$@"
    echo "== raw output of every run"
    local i s
    for ((i = 1; i <= RUNS; i++)); do
        for s in "${SIDES[@]}"; do
            runs "$s" && run_one "$s" "$i"
        done
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

#!/usr/bin/env bash
# scripts/bench-ab.sh - two builds of fling_bench side by side, interleaved.
#
#   scripts/bench-ab.sh BENCH_A BENCH_B [name...]
#
# Runs BENCH_A and BENCH_B (two fling_bench programs: a change and what it
# changes, built the same way) alternately, FLING_BENCH_RUNS times each
# (default 5): A run 1, B run 1, A run 2, ... so that a slow or fast spell
# of the machine falls on both sides. Names are fling_bench's (none = all).
# Prints every run's raw output, then one line per figure: A's median and
# range, B's median and range, B/A of the medians, and the median of the
# per-run ratios B_i/A_i (each B run against the A run just before it: a
# spell of the machine that spans both cancels out). Speed is never
# asserted: exit 0 unless a program failed (1) or the command line is
# wrong (2).
#
# Environment: FLING_BENCH_RUNS (default 5), FLING_BENCH_ARGS (extra
# options for both programs, e.g. "--workers 2").
set -u
export LC_ALL=C

usage() {
    echo "usage: scripts/bench-ab.sh BENCH_A BENCH_B [name...]" >&2
    exit 2
}
[ $# -ge 2 ] || usage
A=$1 B=$2
shift 2
RUNS=${FLING_BENCH_RUNS:-5}
read -r -a ARGS <<<"${FLING_BENCH_ARGS:-}"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || usage
for bin in "$A" "$B"; do
    if [ ! -x "$bin" ]; then
        echo "bench-ab.sh: $bin is not an executable" >&2
        exit 2
    fi
done

out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# A = $A"
echo "# B = $B"
echo "# $(uname -srm), $(nproc) cores, $RUNS runs a side, names: ${*:-all}"
for ((run = 1; run <= RUNS; run++)); do
    for side in A B; do
        bin=$A
        [ "$side" = B ] && bin=$B
        echo "## $side run $run"
        if ! "$bin" "${ARGS[@]}" "$@" >"$out.run" 2>&1; then
            cat "$out.run"
            echo "bench-ab.sh: $side run $run failed" >&2
            rm -f "$out.run"
            exit 1
        fi
        cat "$out.run"
        awk -v s="$side" -v r="$run" 'NF == 3 && $2 ~ /^-?[0-9.]+$/ {
                              print s, $1, $2, $3, r }' "$out.run" >>"$out"
        rm -f "$out.run"
    done
done

echo "## medians (range) of $RUNS runs a side"
printf '%-34s %-30s %-30s %-6s %s\n' figure A B B/A 'pairs (range)'
# One line per figure: the values of each side sorted, then the median.
awk '{ v[$2 " " $1] = v[$2 " " $1] " " $3; unit[$2] = $4; keys[$2] = 1
       run[$2 " " $1 " " $5] = $3 }
     function stats(list,   n, a, i, j, t, med) {
         n = split(list, a, " ")
         for (i = 2; i <= n; i++)
             for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
                 t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
             }
         med = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
         lo = a[1]; hi = a[n]
         return med
     }
     function num(x) { return (x >= 1000) ? sprintf("%.0f", x) : sprintf("%.3g", x) }
     END {
         for (k in keys) {
             ma = stats(v[k " A"]); la = lo; ha = hi
             mb = stats(v[k " B"]); lb = lo; hb = hi
             r = (ma != 0) ? sprintf("%.3f", mb / ma) : "n/a"
             pr = ""
             for (i = 1; (k " A " i) in run; i++)
                 if (run[k " A " i] != 0 && (k " B " i) in run)
                     pr = pr " " run[k " B " i] / run[k " A " i]
             if (pr == "") {
                 p = "n/a"
             } else {
                 mp = stats(pr)
                 p = sprintf("%.3f (%.3f-%.3f)", mp, lo, hi)
             }
             printf "%-34s %-30s %-30s %-6s %s\n", k " (" unit[k] ")",
                    num(ma) " (" num(la) "-" num(ha) ")",
                    num(mb) " (" num(lb) "-" num(hb) ")", r, p
         }
     }' "$out" | sort

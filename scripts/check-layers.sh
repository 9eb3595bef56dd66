#!/usr/bin/env bash
# scripts/check-layers.sh - refuse includes that break the layer order:
# common <- sched <- actor <- remote <- rpc <- cluster (LAYERS below), then
# the programs (apps/, examples/, tools/, bench/) on the public headers.
#
#   scripts/check-layers.sh              check the repository it lives in
#   scripts/check-layers.sh --root DIR   check the tree under DIR instead
#   scripts/check-layers.sh --self-test  check this script on trees it makes
#
# It owns four rules and nothing else:
#   1. A file in src/X/ includes only src/X/ and the folders below X in
#      LAYERS (a lower layer never includes a higher one).
#   2. No include circle between the folders of src/, found on the real
#      include graph (so it holds for any folder, in the table or not).
#      A folder of src/ that LAYERS does not name is an offence too.
#   3. Outside src/, only tests/ and fuzz/ may include a private header
#      from src/; everything else (examples/, bench/, apps/, tools/ ...)
#      uses include/fling/ only.
#   4. Public headers (include/) include nothing from src/.
#
# An include reaches src/ when its path names a folder of src/ ("x/y.h" or
# <x/y.h>, found through -Isrc), or when the path relative to the including
# file lands in src/ ("../src/x/y.h"). Files checked: the C and C++ sources
# and headers git knows (tracked or new, not ignored); under --root, every
# such file under DIR.
#
# Prints one line per offence, "file:line: #include ...: why", and exits 1
# if there is any; exits 0 and prints nothing when the tree is clean.
# Needs bash, coreutils, awk (POSIX; mawk is enough) and git.
set -euo pipefail

# ---- the layer order ------------------------------------------------------
# Lowest first. A folder may include its own headers and those of the
# folders before it. Add a new folder of src/ here, in its place.
LAYERS="common sched actor remote rpc cluster"

# Folders outside src/ that may include private headers of src/.
PRIVATE_OK="tests fuzz"

# Which files are C or C++ sources and headers.
SOURCE_RE='\.(c|h|cc|cpp|cxx|hh|hpp|hxx|inc)$'

usage() {
    sed -n '6,8p' "$0" | sed 's/^# *//' >&2
    exit 2
}

# list_files ROOT: the source files under ROOT, one path a line, relative
# to ROOT.
list_files() {
    local root=$1
    if [[ -z "${FORCE_FIND:-}" ]] &&
        git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1 &&
        [[ "$(git -C "$root" rev-parse --show-toplevel)" -ef "$root" ]]; then
        git -C "$root" ls-files --cached --others --exclude-standard
    else
        (cd "$root" && find . -type f | sed 's|^\./||')
    fi | grep -E "$SOURCE_RE" | LC_ALL=C sort -u
}

# check ROOT: the check itself. Prints offences; returns 1 if any.
check() {
    local root=$1 files src_dirs
    files=$(list_files "$root")
    if ! grep -q '^src/' <<<"$files"; then
        echo "check-layers: no sources under $root/src: nothing to check" >&2
        return 1
    fi
    # Folders of src/ on disk, so that a folder missing from LAYERS is seen.
    src_dirs=$(cd "$root/src" && find . -mindepth 1 -maxdepth 1 -type d |
        sed 's|^\./||' | LC_ALL=C sort | tr '\n' ' ')
    # Files that are really gone (deleted but still in the index) are
    # skipped: awk would fail on them.
    (cd "$root" &&
        while IFS= read -r f; do
            if [[ -f "$f" ]]; then printf '%s\n' "$f"; fi
        done \
            <<<"$files" |
        awk -v layers="$LAYERS" -v private_ok="$PRIVATE_OK" \
            -v src_dirs="$src_dirs" "$AWK_PROG")
}

# The include scanner and the rules. Input: the file paths on stdin, one a
# line, relative to the current directory (the root).
# shellcheck disable=SC2016 # awk code, not shell.
AWK_PROG='
function norm(p,    n, i, parts, out, k, m) {
    n = split(p, parts, "/")
    m = 0
    for (i = 1; i <= n; i++) {
        if (parts[i] == "" || parts[i] == ".")
            continue
        if (parts[i] == ".." && m > 0 && out[m] != "..") {
            m--
            continue
        }
        out[++m] = parts[i]
    }
    p = ""
    for (k = 1; k <= m; k++)
        p = p (k > 1 ? "/" : "") out[k]
    return p
}
function dirname(p) {
    if (p !~ /\//)
        return "."
    sub(/\/[^\/]*$/, "", p)
    return p
}
function exists(p,    line, r) {
    r = (getline line < p)
    if (r >= 0)
        close(p)
    return r >= 0
}
function first(p) {
    sub(/\/.*/, "", p)
    return p
}
# resolve(file, path, quoted): the header in src/ the include reaches
# ("src/x/y.h"), or "" when it reaches none.
function resolve(file, path, quoted,    rel) {
    if (quoted) {
        rel = norm(dirname(file) "/" path)
        if (rel ~ /^src\// && (path ~ /\.\./ || exists(rel)))
            return rel
        if (exists(rel))
            return ""
    }
    path = norm(path)
    if (path ~ /\// && (first(path) in is_src_dir))
        return "src/" path
    return ""
}
function offence(msg) {
    print file ":" lineno ": " inc ": " msg
    bad = 1
}
BEGIN {
    n = split(layers, l, " ")
    for (i = 1; i <= n; i++) {
        rank[l[i]] = i
        is_src_dir[l[i]] = 1
    }
    n = split(src_dirs, l, " ")
    for (i = 1; i <= n; i++) {
        is_src_dir[l[i]] = 1
        if (!(l[i] in rank))
            unlisted[l[i]] = 1
    }
    n = split(private_ok, l, " ")
    for (i = 1; i <= n; i++)
        may_private[l[i]] = 1
    # The file list comes on stdin, one path a line; all files go through
    # one awk so that the folder graph is whole.
    while ((getline file < "-") > 0) {
        lineno = 0
        while ((getline text < file) > 0) {
            lineno++
            scan(text)
        }
        close(file)
    }
}
# scan(line): apply the rules to one line of file.
function scan(line,    quoted, path, target, t, to, top, f, from) {
    if (line !~ /^[ \t]*#[ \t]*include[ \t]*["<]/)
        return
    sub(/^[ \t]*#[ \t]*include[ \t]*/, "", line)
    quoted = (substr(line, 1, 1) == "\"")
    path = substr(line, 2)
    if (quoted)
        sub(/".*/, "", path)
    else
        sub(/>.*/, "", path)
    inc = "#include " (quoted ? "\"" path "\"" : "<" path ">")
    target = resolve(file, path, quoted)
    if (target == "")
        return
    split(target, t, "/")
    to = (target ~ /^src\/[^\/]+\//) ? t[2] : ""
    top = first(file)
    if (top == "src") {
        split(file, f, "/")
        from = (file ~ /^src\/[^\/]+\//) ? f[2] : ""
        if (from == "" || to == "") {
            offence("a file of src/ outside a layer folder")
            return
        }
        if (from == to)
            return
        if (!((from SUBSEP to) in edge)) {
            edge[from SUBSEP to] = file ":" lineno
            succ[from] = succ[from] " " to
            node[from] = 1
            node[to] = 1
        }
        if ((from in rank) && (to in rank) && rank[to] > rank[from])
            offence(from " may not include " to \
                    " (goes up the layer order: " layers ")")
    } else if (top == "include") {
        offence("a public header includes a private header of src/")
    } else if (!(top in may_private)) {
        offence("only tests/ and fuzz/ may include private headers of " \
                "src/; use <fling/...>")
    }
}
# dfs(u): depth-first search; a grey successor closes a circle.
function dfs(u,    k, n, s, v, path, j) {
    color[u] = 1
    stack[++depth] = u
    n = split(succ[u], s, " ")
    for (k = 1; k <= n; k++) {
        v = s[k]
        if (color[v] == 1) {
            for (j = depth; stack[j] != v; j--)
                ;
            path = ""
            for (; j <= depth; j++)
                path = path stack[j] " -> "
            where = ""
            for (j = depth; stack[j] != v; j--)
                ;
            for (; j < depth; j++)
                where = where " " edge[stack[j] SUBSEP stack[j + 1]]
            where = where " " edge[u SUBSEP v]
            print "src/: include circle between folders: " path v \
                  " (at" where ")"
            bad = 1
        } else if (color[v] == 0) {
            dfs(v)
        }
    }
    depth--
    color[u] = 2
}
END {
    for (d in unlisted) {
        print "src/" d "/: folder not in the layer table (LAYERS in " \
              "scripts/check-layers.sh)"
        bad = 1
    }
    # Visit folders in layer order, then the unlisted ones, so the output
    # is stable.
    n = split(layers, l, " ")
    for (i = 1; i <= n; i++)
        if ((l[i] in node) && color[l[i]] == 0)
            dfs(l[i])
    m = 0
    for (d in node)
        if (!(d in rank))
            other[++m] = d
    for (i = 2; i <= m; i++)
        for (j = i; j > 1 && other[j - 1] > other[j]; j--) {
            d = other[j]
            other[j] = other[j - 1]
            other[j - 1] = d
        }
    for (i = 1; i <= m; i++)
        if (color[other[i]] == 0)
            dfs(other[i])
    exit bad
}
'

# ---- the self-test --------------------------------------------------------
# Builds a clean tree and a broken one under a temporary folder and checks
# that the clean one passes with no output and the broken one fails with
# exactly the expected lines. Any difference fails the self-test.

# put ROOT FILE LINE...: write FILE under ROOT, one argument a line.
put() {
    local root=$1 file=$2
    shift 2
    mkdir -p "$root/$(dirname "$file")"
    printf '%s\n' "$@" >"$root/$file"
}

# make_clean ROOT: a tree that keeps every rule.
make_clean() {
    local r=$1
    put "$r" include/fling/common.h '#pragma once'
    put "$r" include/fling/rpc.h '#include "common.h"' '#include <stdint.h>'
    put "$r" src/common/internal.h '#include <fling/common.h>'
    put "$r" src/common/err.c '#include "common/internal.h"'
    put "$r" src/sched/runq.h '#include "common/internal.h"'
    put "$r" src/sched/sched.c '#include "sched/runq.h"' \
        '#include "common/internal.h"'
    put "$r" src/actor/internal.h '#include "sched/runq.h"'
    put "$r" src/actor/actor.c '#include "internal.h"' \
        '#include "../common/internal.h"'
    put "$r" src/remote/net.h '#include "actor/internal.h"'
    put "$r" src/rpc/internal.h '#include "remote/net.h"' \
        '#include <fling/rpc.h>'
    put "$r" src/cluster/cluster.c '#include "rpc/internal.h"'
    put "$r" tests/unit/rpc/call_test.c '#include "rpc/internal.h"'
    put "$r" fuzz/frame_fuzz.c '#include "remote/net.h"'
    put "$r" bench/latency.h '#include <stdint.h>'
    put "$r" bench/bench.c '#include <fling/fling.h>' '#include "latency.h"'
    put "$r" bench/peers/floor/floor.c '#include "../../latency.h"'
    put "$r" examples/hello/hello.c '#include <fling/rpc.h>' \
        '#include "hello.pb-c.h"'
    put "$r" apps/jobmanager/main.c '#include <fling/fling.h>'
    put "$r" README.md '#include "rpc/internal.h" (not a source file)'
}

# make_broken ROOT: the clean tree plus one offence of every kind.
make_broken() {
    local r=$1
    make_clean "$r"
    # 1 and 2: up the order; with actor -> sched it closes a circle.
    put "$r" src/sched/sched.c '#include "sched/runq.h"' \
        '#include "actor/internal.h"'
    # 1 by a relative path.
    put "$r" src/common/log.c '#include "../rpc/internal.h"'
    # 2: two folders the table does not know, in a circle.
    put "$r" src/alpha/a.h '#include "beta/b.h"'
    put "$r" src/beta/b.h '#include "alpha/a.h"'
    # 3: outside src/, by -Isrc and by a relative path.
    put "$r" bench/bench.c '#include <fling/fling.h>' \
        '#include "remote/net.h"'
    put "$r" apps/jobmanager/main.c '#include <fling/fling.h>' \
        '#include "../../src/rpc/internal.h"'
    put "$r" tools/dump.c '#include <sched/runq.h>'
    # 4: a public header.
    put "$r" include/fling/rpc.h '#include "common.h"' \
        '#include "rpc/internal.h"'
}

self_test() {
    local tmp out rc fails=0 expected
    tmp=$(mktemp -d /tmp/check-layers.XXXXXX)
    # shellcheck disable=SC2064 # expand now: tmp is local.
    trap "rm -rf '$tmp'" EXIT

    make_clean "$tmp/clean"
    rc=0
    out=$(FORCE_FIND=1 check "$tmp/clean" 2>&1) || rc=$?
    if [[ $rc -ne 0 || -n "$out" ]]; then
        echo "self-test: the clean tree failed (exit $rc):" >&2
        printf '%s\n' "$out" >&2
        fails=$((fails + 1))
    fi

    make_broken "$tmp/broken"
    expected=$(
        cat <<'EOF'
apps/jobmanager/main.c:2: #include "../../src/rpc/internal.h": only tests/ and fuzz/ may include private headers of src/; use <fling/...>
bench/bench.c:2: #include "remote/net.h": only tests/ and fuzz/ may include private headers of src/; use <fling/...>
include/fling/rpc.h:2: #include "rpc/internal.h": a public header includes a private header of src/
src/: include circle between folders: actor -> sched -> actor (at src/actor/internal.h:1 src/sched/sched.c:2)
src/: include circle between folders: alpha -> beta -> alpha (at src/alpha/a.h:1 src/beta/b.h:1)
src/: include circle between folders: common -> rpc -> remote -> actor -> common (at src/common/log.c:1 src/rpc/internal.h:1 src/remote/net.h:1 src/actor/actor.c:2)
src/: include circle between folders: common -> rpc -> remote -> actor -> sched -> common (at src/common/log.c:1 src/rpc/internal.h:1 src/remote/net.h:1 src/actor/internal.h:1 src/sched/runq.h:1)
src/alpha/: folder not in the layer table (LAYERS in scripts/check-layers.sh)
src/beta/: folder not in the layer table (LAYERS in scripts/check-layers.sh)
src/common/log.c:1: #include "../rpc/internal.h": common may not include rpc (goes up the layer order: common sched actor remote rpc cluster)
src/sched/sched.c:2: #include "actor/internal.h": sched may not include actor (goes up the layer order: common sched actor remote rpc cluster)
tools/dump.c:1: #include <sched/runq.h>: only tests/ and fuzz/ may include private headers of src/; use <fling/...>
EOF
    )
    rc=0
    out=$(FORCE_FIND=1 check "$tmp/broken" 2>&1) || rc=$?
    out=$(LC_ALL=C sort <<<"$out")
    if [[ $rc -ne 1 ]]; then
        echo "self-test: the broken tree exited $rc, not 1" >&2
        fails=$((fails + 1))
    fi
    if [[ "$out" != "$expected" ]]; then
        echo "self-test: the broken tree gave other lines (- expected, + got):" >&2
        diff <(printf '%s\n' "$expected") <(printf '%s\n' "$out") >&2 || true
        fails=$((fails + 1))
    fi

    if [[ $fails -ne 0 ]]; then
        echo "check-layers: self-test FAILED ($fails)" >&2
        return 1
    fi
    echo "check-layers: self-test passed (a clean tree and $(wc -l <<<"$expected") offences)"
}

# ---- main -----------------------------------------------------------------
root="$(cd "$(dirname "$0")/.." && pwd)"
case "${1:-}" in
"") ;;
--self-test)
    [[ $# -eq 1 ]] || usage
    self_test
    exit
    ;;
--root)
    [[ $# -eq 2 ]] || usage
    root=$2
    ;;
*) usage ;;
esac
check "$root"
